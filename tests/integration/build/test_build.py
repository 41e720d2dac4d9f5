"""build.* on the real engine: tags, labels, variants, concurrency, failures kept apart,
and the schema gate refusing before anything is built."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import run_inv
from tests.integration.registry import LocalRegistry, own_namespace, registry

__all__ = ["registry"]  # the fixture, imported explicitly

pytestmark = pytest.mark.engine


@pytest.fixture
def namespace() -> Iterator[str]:
    """A registry namespace of this test's own; its images are removed afterwards."""
    with own_namespace("itb") as ns:
        yield ns


def _labels(sdk: object, ref: str) -> dict[str, str]:
    return dict(sdk.images.get(ref).labels)  # type: ignore[attr-defined]


def _tags(sdk: object, ns: str) -> set[str]:
    return {t for i in sdk.images.list() for t in i.tags if t.startswith(f"{ns}/")}  # type: ignore[attr-defined]


def test_build_all_tags_labels_and_summary(example_copy: Path, namespace: str, sdk: object) -> None:
    r = run_inv("build.all", "--root", str(example_copy), "--registry", namespace)
    assert r.code == 0, r
    assert _tags(sdk, namespace) == {
        f"{namespace}/meeshy-gateway:v1.0.40",
        f"{namespace}/meeshy-gateway:latest",
        f"{namespace}/meeshy-translator:v1.0.0-cpu",
        f"{namespace}/meeshy-translator:v1.0.0",
        f"{namespace}/meeshy-translator:latest",
        f"{namespace}/meeshy-translator:cpu",
        f"{namespace}/meeshy-web:v1.0.41",
        f"{namespace}/meeshy-web:latest",
    }
    schema = example_copy / "packages/shared/prisma/schema.prisma"
    sha = hashlib.sha256(schema.read_bytes()).hexdigest()
    for ref, version in (
        (f"{namespace}/meeshy-gateway:latest", "1.0.40"),
        (f"{namespace}/meeshy-translator:cpu", "1.0.0"),
        (f"{namespace}/meeshy-web:latest", "1.0.41"),
    ):
        labels = _labels(sdk, ref)
        assert labels["me.meeshy.schema.sha256"] == sha
        assert labels["me.meeshy.schema.path"] == "packages/shared/prisma/schema.prisma"
        assert labels["org.opencontainers.image.version"] == version
        assert labels["org.opencontainers.image.revision"] == "local"  # the copy is no git repo
        assert labels["org.opencontainers.image.created"].endswith("Z")
    # the plain summary: one row per image with its result
    assert "Build summary" in r.out
    for name in ("gateway", "translator:cpu", "web"):
        assert any(
            ln.startswith(name + " ") and ln.rstrip().endswith("built") for ln in r.out.splitlines()
        ), r.out
    # the schema gate ran first
    assert r.out.index("schema gate: gateway pass (generate) L19 builder: RUN npx prisma") < (
        r.out.index("building 3 image(s)")
    )


def test_gpu_builds_gpu_stages_only(example_copy: Path, namespace: str, sdk: object) -> None:
    r = run_inv(
        "build.translator",
        "--gpu",
        "--root",
        str(example_copy),
        "--registry",
        namespace,
        "--progress",
        "plain",
    )
    assert r.code == 0, r
    assert "[runtime-gpu " in r.out
    assert "[runtime-cpu " not in r.out
    assert _tags(sdk, namespace) == {
        f"{namespace}/meeshy-translator:v1.0.0-gpu",
        f"{namespace}/meeshy-translator:gpu",
    }
    out = sdk.containers.run(f"{namespace}/meeshy-translator:gpu", remove=True)  # type: ignore[attr-defined]
    assert out.decode().strip() == "torch==2.5.1+cu124"
    assert _labels(sdk, f"{namespace}/meeshy-translator:gpu")["me.meeshy.torch-backend"] == "gpu"


def test_one_failing_image_does_not_cancel_the_others(
    example_copy: Path, namespace: str, sdk: object
) -> None:
    df = example_copy / "apps/web/Dockerfile"
    df.write_text(df.read_text() + 'RUN echo "web is broken on purpose" && exit 3\n')
    r = run_inv("build.all", "--root", str(example_copy), "--registry", namespace)
    assert r.code != 0, r
    assert f"{namespace}/meeshy-gateway:v1.0.40" in _tags(sdk, namespace)
    assert f"{namespace}/meeshy-translator:cpu" in _tags(sdk, namespace)
    assert not any("meeshy-web" in t for t in _tags(sdk, namespace))
    assert "1 of 3 image(s) failed: web" in r.err
    assert "web is broken on purpose" in r.err  # the failing image's log tail


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        pytest.param("schema-missing", "packages/shared/prisma/schema.prisma", id="schema-missing"),
        pytest.param("dockerignored", ".dockerignore", id="schema-dockerignored"),
        pytest.param("broken-dockerfile", "services/gateway/Dockerfile:", id="broken-dockerfile"),
        pytest.param(
            "schema-path-unfilled",
            "services/translator/Dockerfile:12: prisma generate reads "
            "/workspace/other/schema.prisma but no COPY puts packages/shared/prisma/schema.prisma",
            id="schema-path-no-copy-fills",
        ),
        pytest.param(
            "generate-in-unused-stage",
            "prisma generate runs in stage 'builder', but the final stage 'runner' does not "
            "depend on it",
            id="generate-in-unused-stage",
        ),
    ],
)
def test_gate_refuses_and_nothing_is_built(
    example_copy: Path, namespace: str, sdk: object, breakage: str, message: str
) -> None:
    if breakage == "schema-missing":
        (example_copy / "packages/shared/prisma/schema.prisma").unlink()
    elif breakage == "dockerignored":
        with (example_copy / ".dockerignore").open("a") as f:
            f.write("packages/shared/prisma/*.prisma\n")
    elif breakage == "schema-path-unfilled":
        df = example_copy / "services/translator/Dockerfile"
        df.write_text(df.read_text().replace("--schema=./shared/prisma/", "--schema=./other/"))
    elif breakage == "generate-in-unused-stage":
        df = example_copy / "services/gateway/Dockerfile"
        df.write_text(df.read_text().replace("--from=builder", "--from=deps"))
    else:
        df = example_copy / "services/gateway/Dockerfile"
        df.write_text(df.read_text() + "FROBNICATE everything\n")
    r = run_inv("build.all", "--root", str(example_copy), "--registry", namespace)
    assert r.code == 4, r
    err = [ln for ln in r.err.splitlines() if ln.startswith("ERROR:")]
    assert len(err) == 1, r
    assert message in err[0]
    assert "nothing was built" in err[0]
    assert _tags(sdk, namespace) == set()


def test_skip_schema_check_is_loud(example_copy: Path, namespace: str, sdk: object) -> None:
    with (example_copy / ".dockerignore").open("a") as f:
        f.write("packages/shared/prisma/*.prisma\n")
    r = run_inv(
        "build.web", "--skip-schema-check", "--root", str(example_copy), "--registry", namespace
    )
    assert "WARNING: --skip-schema-check" in r.err
    assert r.code == 0, r  # web only copies the schema folder; the build itself still works
    labels = _labels(sdk, f"{namespace}/meeshy-web:latest")
    assert "me.meeshy.schema.sha256" not in labels  # no claim the gate did not prove
    # so staging refuses it as built from an unknown schema
    r = run_inv(
        "staging.tag", "--service", "web", "--root", str(example_copy), "--registry", namespace
    )
    assert r.code == 4, r
    assert f"{namespace}/meeshy-web:latest" in r.err


def test_push_builds_straight_into_a_registry(
    example_copy: Path, registry: LocalRegistry, sdk: object
) -> None:
    ns = f"{registry.host}/itpush"
    r = run_inv("build.web", "--push", "--root", str(example_copy), "--registry", ns)
    assert r.code == 0, r
    assert registry.tags("itpush/meeshy-web") == ["latest", "v1.0.41"]
    assert any(
        ln.startswith("web ") and ln.rstrip().endswith("pushed") for ln in r.out.splitlines()
    )
    for img in sdk.images.list():  # type: ignore[attr-defined]
        for tag in img.tags:
            if tag.startswith(f"{ns}/"):
                sdk.images.remove(tag, force=True)  # type: ignore[attr-defined]
