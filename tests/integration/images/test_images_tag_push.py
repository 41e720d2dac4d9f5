"""staging.tag, staging.push, images.push and release on the real engine and a real registry."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import images, release, staging
from tests.cli import Call
from tests.integration.registry import (
    EXAMPLE,
    LocalRegistry,
    example_images,
    registry,
    remove_namespace,
)

__all__ = ["example_images", "registry"]  # the fixtures, imported explicitly

pytestmark = [pytest.mark.engine, pytest.mark.registry]
PROJECT = Path(__file__).resolve().parents[3]
SERVICES = ("gateway", "translator", "web")
SCHEMA = "packages/shared/prisma/schema.prisma"


def image_id(sdk: Any, ref: str) -> str | None:
    import docker

    try:
        return str(sdk.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def refs_under(sdk: Any, prefix: str) -> list[str]:
    """Every local tag and digest reference starting with ``prefix``."""
    found = []
    for entry in sdk.api.images():
        for ref in (entry.get("RepoTags") or []) + (entry.get("RepoDigests") or []):
            if ref.startswith(prefix):
                found.append(ref)
    return sorted(found)


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record of temporary push tags goes to this test's own folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def reg(registry: LocalRegistry, sdk: Any) -> Iterator[LocalRegistry]:
    """The loopback registry; afterwards no local reference to it is left on the engine
    (removed here also when a test fails, so the engine is left as it was found)."""
    yield registry
    for ref in refs_under(sdk, f"{registry.host}/"):
        with contextlib.suppress(Exception):
            sdk.images.remove(ref)


@pytest.fixture
def tags_cleanup(sdk: Any) -> Iterator[list[str]]:
    """Refs a test creates; removed afterwards."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        if image_id(sdk, ref):
            sdk.images.remove(ref, force=True)


# ------------------------------------------------------------------ staging.tag


def test_tag_success_shows_the_images(
    call: Call, example_images: str, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-{s}:t4ok" for s in SERVICES]
    code, out, err = call(staging.tag, to="t4ok", root=str(EXAMPLE), registry=ns)
    assert code == 0, err
    for svc in SERVICES:
        assert image_id(sdk, f"{ns}/meeshy-{svc}:t4ok") == image_id(
            sdk, f"{ns}/meeshy-{svc}:latest"
        )
        assert f"tagged {ns}/meeshy-{svc}:latest -> {ns}/meeshy-{svc}:t4ok" in out
    shown = [x for x in out.splitlines() if x.startswith(f"{ns}/meeshy-web ") and " t4ok " in x]
    assert shown
    assert shown[0].rstrip().endswith("match")


def test_tag_shows_the_images_of_the_registry_in_use(
    call: Call, example_images: str, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    other = f"t4other{uuid.uuid4().hex[:8]}/meeshy-web:latest"
    sdk.images.get("busybox:latest").tag(other)
    tags_cleanup += [other, *(f"{ns}/meeshy-{s}:t4reg" for s in SERVICES)]
    code, out, err = call(staging.tag, to="t4reg", root=str(EXAMPLE), registry=ns)
    assert code == 0, err
    lines = out.splitlines()
    header = next(i for i, x in enumerate(lines) if x.startswith("REPOSITORY"))
    listed = [x.split()[0] for x in lines[header + 1 :] if x.strip()]
    assert f"{ns}/meeshy-web" in listed
    assert all(r.startswith(f"{ns}/") for r in listed), listed


def test_tag_dry_run_changes_nothing(
    call: Call, example_images: str, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-{s}:t4dry" for s in SERVICES]
    code, out, err = call(staging.tag, to="t4dry", dry_run=True, root=str(EXAMPLE), registry=ns)
    assert code == 0, err
    assert f"{ns}/meeshy-gateway:latest -> {ns}/meeshy-gateway:t4dry" in out
    assert all(image_id(sdk, f"{ns}/meeshy-{s}:t4dry") is None for s in SERVICES)


def test_tag_partial_sources_change_nothing(
    call: Call, example_images: str, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    for svc in ("gateway", "web"):  # the translator has no :t4part
        sdk.images.get(f"{ns}/meeshy-{svc}:latest").tag(f"{ns}/meeshy-{svc}", "t4part")
        tags_cleanup.append(f"{ns}/meeshy-{svc}:t4part")
    tags_cleanup += [f"{ns}/meeshy-{s}:t4partdst" for s in SERVICES]
    code, _, err = call(staging.tag, from_="t4part", to="t4partdst", root=str(EXAMPLE), registry=ns)
    assert code == 1
    assert f"missing source image(s): {ns}/meeshy-translator:t4part" in err
    assert len(err.strip().splitlines()) == 1
    assert all(image_id(sdk, f"{ns}/meeshy-{s}:t4partdst") is None for s in SERVICES)
    # --only the two that exist works
    code, _, err = call(
        staging.tag,
        from_="t4part",
        to="t4partdst",
        service=["gateway", "web"],
        root=str(EXAMPLE),
        registry=ns,
    )
    assert code == 0, err
    assert image_id(sdk, f"{ns}/meeshy-web:t4partdst") is not None
    assert image_id(sdk, f"{ns}/meeshy-translator:t4partdst") is None


def test_tag_refuses_stale_images(
    call: Call, example_images: str, example_copy: Path, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    schema = example_copy / SCHEMA
    schema.write_text(schema.read_text() + "\n// changed\n")
    tags_cleanup += [f"{ns}/meeshy-{s}:t4stale" for s in SERVICES]
    code, _, err = call(staging.tag, to="t4stale", root=str(example_copy), registry=ns)
    assert code == 4
    assert "not built from the current schema" in err
    assert f"{ns}/meeshy-gateway:latest" in err
    assert "inv build.all" in err
    assert all(image_id(sdk, f"{ns}/meeshy-{s}:t4stale") is None for s in SERVICES)
    code, _, err = call(
        staging.tag, to="t4stale", allow_stale=True, root=str(example_copy), registry=ns
    )
    assert code == 0, err
    assert "--allow-stale" in err
    assert all(image_id(sdk, f"{ns}/meeshy-{s}:t4stale") for s in SERVICES)


def test_build_all_then_staging_tag_on_one_command_line(
    tmp_path: Path, example_copy: Path, sdk: Any
) -> None:
    """``inv build.all staging.tag``: Invoke runs both, in order, in one process."""
    (tmp_path / "t4ns.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(PROJECT)!r})\n"
        "import tasks\n"
        "from invoke import Collection\n"
        "from tasks import build, staging\n"
        "ns = Collection()\n"
        "ns.add_collection(build.ns)\n"
        "ns.add_collection(Collection('staging', staging.tag))\n"
        "ns.configure(tasks.ns.configuration())\n"
    )
    ns = "t4chain"
    remove_namespace(ns)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "invoke",
                "--search-root",
                str(tmp_path),
                "-c",
                "t4ns",
                "build.all",
                "--root",
                str(example_copy),
                "--registry",
                ns,
                "staging.tag",
                "--root",
                str(example_copy),
                "--registry",
                ns,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert proc.stdout.index("Build summary") < proc.stdout.index("tagged ")
        for svc in SERVICES:
            assert image_id(sdk, f"{ns}/meeshy-{svc}:staging") == image_id(
                sdk, f"{ns}/meeshy-{svc}:latest"
            )
    finally:
        remove_namespace(ns)


# ------------------------------------------------------------------ pushes


def test_staging_push_to_registry(
    call: Call, example_images: str, reg: LocalRegistry, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-{s}:t4push" for s in SERVICES]
    assert call(staging.tag, to="t4push", root=str(EXAMPLE), registry=ns)[0] == 0
    code, out, err = call(
        staging.push,
        to="t4push",
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=ns,
    )
    assert code == 0, err
    for svc in SERVICES:
        assert reg.tags(f"{ns}/meeshy-{svc}") == ["t4push"]
        row = next(x for x in out.splitlines() if x.startswith(f"{reg.host}/{ns}/meeshy-{svc}:"))
        assert row.split()[1:4][1] == "pushed"
        assert "sha256:" in row
    assert "pushed 3 tag(s)" in out
    # neither the temporary tags nor the digest references the push made are left
    assert refs_under(sdk, f"{reg.host}/") == []


def test_staging_push_dry_run(call: Call, example_images: str, reg: LocalRegistry) -> None:
    code, out, _ = call(
        staging.push,
        registry_url=reg.host,
        dry_run=True,
        root=str(EXAMPLE),
        registry=example_images,
    )
    assert code == 0
    assert f"push {reg.host}/{example_images}/meeshy-web:staging -> {reg.host}" in out
    assert reg.tags(f"{example_images}/meeshy-web") == []


def test_push_to_stopped_registry_fails_then_rerun_completes(
    call: Call, example_images: str, reg: LocalRegistry, sdk: Any, tags_cleanup: list[str]
) -> None:
    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-{s}:t4down" for s in SERVICES]
    assert call(staging.tag, to="t4down", root=str(EXAMPLE), registry=ns)[0] == 0
    reg.stop()
    code, _, err = call(
        staging.push,
        to="t4down",
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=ns,
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"push of {reg.host}/{ns}/meeshy-gateway:t4down" in lines[0]
    assert f"to registry {reg.host} failed" in lines[0]
    assert "connection refused" in lines[0]
    assert "nothing was pushed" in lines[0]  # not "the images before it were pushed"
    # the temporary tags for the registry are gone again
    assert image_id(sdk, f"{reg.host}/{ns}/meeshy-gateway:t4down") is None
    reg.start()
    code, _, err = call(
        staging.push,
        to="t4down",
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=ns,
    )
    assert code == 0, err
    assert all(reg.tags(f"{ns}/meeshy-{s}") == ["t4down"] for s in SERVICES)


def test_push_missing_image_pushes_nothing(
    call: Call, example_images: str, reg: LocalRegistry
) -> None:
    code, _, err = call(
        staging.push,
        to="t4-none",
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=example_images,
    )
    assert code == 1
    assert f"{example_images}/meeshy-gateway:t4-none" in err
    assert "nothing was pushed" in err
    assert reg.get_json("_catalog") == {"repositories": []}


def test_images_push_tag_sets(call: Call, example_images: str, reg: LocalRegistry) -> None:
    ns = example_images
    code, out, err = call(
        images.push,
        service=["translator", "web"],
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=ns,
    )
    assert code == 0, err
    assert reg.tags(f"{ns}/meeshy-translator") == ["cpu", "latest", "v1.0.0"]
    assert reg.tags(f"{ns}/meeshy-web") == ["latest", "v1.0.41"]
    assert reg.tags(f"{ns}/meeshy-gateway") == []
    assert " layer " in out  # per-layer progress lines (plain output)


def test_release_builds_then_pushes(call: Call, example_copy: Path, reg: LocalRegistry) -> None:
    ns = "t4rel"
    remove_namespace(ns)
    try:
        code, out, err = call(
            release.release,
            dry_run=True,
            registry_url=reg.host,
            root=str(example_copy),
            registry=ns,
        )
        assert code == 0, err
        assert "buildx build" in out
        assert f"push {reg.host}/{ns}/meeshy-translator:cpu" in out
        assert reg.get_json("_catalog") == {"repositories": []}

        code, out, err = call(
            release.release, registry_url=reg.host, root=str(example_copy), registry=ns
        )
        assert code == 0, err
        assert out.index("Build summary") < out.index("pushed ")
        assert reg.tags(f"{ns}/meeshy-gateway") == ["latest", "v1.0.40"]
        assert reg.tags(f"{ns}/meeshy-translator") == ["cpu", "latest", "v1.0.0"]
        assert reg.tags(f"{ns}/meeshy-web") == ["latest", "v1.0.41"]
    finally:
        remove_namespace(ns)


def test_release_stops_before_pushing_when_the_gate_refuses(
    call: Call, example_copy: Path, reg: LocalRegistry
) -> None:
    ns = "t4relbad"
    dockerfile = example_copy / "services/translator/Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("COPY packages/shared/prisma ./shared/prisma/\n", "")
    )
    remove_namespace(ns)
    try:
        code, _, err = call(
            release.release, registry_url=reg.host, root=str(example_copy), registry=ns
        )
        assert code != 0
        assert "schema gate" in err
        assert reg.get_json("_catalog") == {"repositories": []}
    finally:
        remove_namespace(ns)


def test_push_retags_over_a_stale_registry_tag_and_restores_it(
    call: Call, example_images: str, reg: LocalRegistry, sdk: Any, tags_cleanup: list[str]
) -> None:
    """A leftover local <registry>/…:tag of another image must not be what gets pushed."""
    import urllib.request

    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-web:t4stale", f"{reg.host}/{ns}/meeshy-web:t4stale"]
    assert call(staging.tag, service=["web"], to="t4stale", root=str(EXAMPLE), registry=ns)[0] == 0
    leftover = f"{reg.host}/{ns}/meeshy-web:t4stale"
    busybox = sdk.images.get("busybox:latest")
    busybox.tag(leftover)
    code, _, err = call(
        staging.push,
        service=["web"],
        to="t4stale",
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=ns,
    )
    assert code == 0, err
    req = urllib.request.Request(
        f"{reg.url}/v2/{ns}/meeshy-web/manifests/t4stale",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        manifest = json.load(resp)
    assert manifest["config"]["digest"] == sdk.images.get(f"{ns}/meeshy-web:t4stale").id
    assert sdk.images.get(leftover).id == busybox.id  # the leftover tag was put back
    # and the web image keeps no digest reference to the registry (a dangling image later)
    assert refs_under(sdk, f"{reg.host}/") == [leftover]


def test_tag_and_push_json(
    call: Call, example_images: str, reg: LocalRegistry, tags_cleanup: list[str]
) -> None:
    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-{s}:t4json" for s in SERVICES]
    code, out, err = call(staging.tag, to="t4json", root=str(EXAMPLE), registry=ns, json=True)
    assert code == 0, err
    data = json.loads(out)
    assert [t["target"] for t in data["tags"]] == [f"{ns}/meeshy-{s}:t4json" for s in SERVICES]
    listed = {f"{r['repository']}:{t}" for r in data["images"] for t in r["tags"]}
    assert listed >= {f"{ns}/meeshy-{s}:t4json" for s in SERVICES}
    code, out, err = call(
        staging.push,
        to="t4json",
        registry_url=reg.host,
        root=str(EXAMPLE),
        registry=ns,
        json=True,
    )
    assert code == 0, err
    pushes = json.loads(out)["pushes"]
    assert [p["ref"] for p in pushes] == [f"{reg.host}/{ns}/meeshy-{s}:t4json" for s in SERVICES]
    assert all(p["digest"].startswith("sha256:") for p in pushes)
    assert {p["status"] for p in pushes} == {"pushed"}


def test_push_dry_run_says_which_sources_are_missing(
    call: Call, example_images: str, reg: LocalRegistry
) -> None:
    code, _, err = call(
        staging.push,
        service=["web"],
        to="t4none",
        registry_url=reg.host,
        dry_run=True,
        root=str(EXAMPLE),
        registry=example_images,
    )
    assert code == 0, err
    assert f"{example_images}/meeshy-web:t4none does not exist here" in err
    assert reg.tags(f"{example_images}/meeshy-web") == []


def test_a_second_staging_tag_at_once_is_refused_and_changes_nothing(
    call: Call, example_images: str, sdk: Any, tags_cleanup: list[str]
) -> None:
    """Two staging.tag at once on one engine (one of them interrupted) left a mix of old and
    new tags: the registry's staging tags are locked from reading them to writing them, and
    a second run is refused at once, naming the first; a dry run changes nothing and is
    not refused."""
    import os

    from tasks.lib.engine import EngineTarget
    from tasks.lib.images import tags

    ns = example_images
    tags_cleanup += [f"{ns}/meeshy-{s}:t4lock" for s in SERVICES]
    with tags.staging_lock(EngineTarget(context=""), ns):  # "the first run", held here
        code, _, err = call(staging.tag, to="t4lock", root=str(EXAMPLE), registry=ns)
        assert code == 2, err
        assert err.strip().splitlines()[-1] == (
            f"ERROR: refused, nothing done: staging.tag (pid {os.getpid()}) is tagging "
            f"{ns}'s staging images on this engine: wait for it to end (two at once can "
            "leave a mix of old and new tags), or stop it"
        )
        assert all(image_id(sdk, f"{ns}/meeshy-{s}:t4lock") is None for s in SERVICES)
        code, _, err = call(staging.tag, to="t4lock", dry_run=True, root=str(EXAMPLE), registry=ns)
        assert code == 0, err
    code, _, err = call(staging.tag, to="t4lock", root=str(EXAMPLE), registry=ns)  # free again
    assert code == 0, err


def test_release_refuses_to_push_an_image_another_run_tagged_after_its_build(
    call: Call, example_copy: Path, reg: LocalRegistry, sdk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """release pushes what it built: a name another run (a build.all, a release) moved
    between the build and the push is refused before anything is pushed. The other run is
    played here by a retag right after the build, through the real engine."""
    import tasks.build

    ns = "t4relrace"
    remove_namespace(ns)
    real = tasks.build.run_plan

    def build_then_another_run_tags(*args: Any, **kwargs: Any) -> dict[str, str]:
        built = real(*args, **kwargs)
        sdk.images.get("busybox:latest").tag(f"{ns}/meeshy-web", "latest")
        return built

    monkeypatch.setattr(tasks.build, "run_plan", build_then_another_run_tags)
    try:
        code, _, err = call(
            release.release, registry_url=reg.host, root=str(example_copy), registry=ns
        )
        assert code == 1, err
        busybox = sdk.images.get("busybox:latest").short_id.removeprefix("sha256:")
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"ERROR: {ns}/meeshy-web:latest names {busybox}, not the image ")
        assert "another run tagged it since; nothing was pushed" in line
        assert reg.get_json("_catalog") == {"repositories": []}
        assert refs_under(sdk, f"{reg.host}/") == []  # no temporary tag left either
    finally:
        remove_namespace(ns)


def test_release_fails_an_image_retagged_during_its_own_push(
    call: Call, example_copy: Path, reg: LocalRegistry, sdk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushed by its own name (the registry is in the repository name, no --registry-url),
    the engine sends what the name holds when the push starts: a retag by another run just
    before that sends the other image. The digest the engine records says which image went:
    that push fails, saying so, and nothing after it is pushed."""
    from tasks.lib.images import push as push_core

    ns = f"{reg.host}/t4reldur"
    real = push_core.push_one
    moved = f"{ns}/meeshy-gateway:v1.0.40"

    def another_run_tags_first(client: Any, t: Any, *args: Any, **kwargs: Any) -> Any:
        if t.source == moved:
            sdk.images.get("busybox:latest").tag(f"{ns}/meeshy-gateway", "v1.0.40")
        return real(client, t, *args, **kwargs)

    monkeypatch.setattr(push_core, "push_one", another_run_tags_first)
    code, _, err = call(release.release, root=str(example_copy), registry=ns)
    assert code == 1, err
    busybox = sdk.images.get("busybox:latest").short_id.removeprefix("sha256:")
    assert f"the registry got {busybox}, not the image this run built" in err
    assert f"{moved} was tagged by another run during the push" in err
    assert reg.tags("t4reldur/meeshy-web") == []  # nothing after it
