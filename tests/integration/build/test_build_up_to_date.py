"""Content-addressed builds on the real engine: change one input of each kind and exactly the
affected images rebuild; the key's file list equals what Docker actually sends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.cli import run_inv
from tests.integration.registry import build_image, build_other_image, own_base, own_namespace

pytestmark = pytest.mark.engine

ALL = ("gateway", "translator:cpu", "web")


@pytest.fixture
def namespace() -> Iterator[str]:
    with own_namespace("t8up") as ns:
        yield ns


@pytest.fixture
def base(sdk: Any, example_copy: Path) -> Iterator[str]:
    """The example's Dockerfiles on a base image of this test's own (a tag of busybox), so
    the test can retag it without touching the shared busybox."""
    with own_base(sdk, list(example_copy.rglob("Dockerfile")), "t8base") as name:
        yield name


def _statuses(root: Path, ns: str, *extra: str) -> dict[str, str]:
    r = run_inv("build.all", "--root", str(root), "--registry", ns, "--json", *extra)
    assert r.code == 0, r
    return {d["image"]: d["result"] for d in json.loads(r.out)}


def _only(*built: str) -> dict[str, str]:
    return {n: ("built" if n in built else "up to date") for n in ALL}


def test_exactly_the_affected_images_rebuild(
    example_copy: Path, namespace: str, base: str, sdk: Any
) -> None:
    root = example_copy
    assert _statuses(root, namespace) == _only(*ALL)
    assert _statuses(root, namespace) == _only()

    # a file under a COPY source of gateway only
    src = root / "services/gateway/src/server.ts"
    src.write_text(src.read_text() + "\n// changed\n")
    assert _statuses(root, namespace) == _only("gateway")

    # a file .dockerignore excludes, inside a COPY source: nothing rebuilds
    (root / "services/gateway/src/NOTES.md").write_text("not sent\n")
    (root / "apps/web/build.sh").write_text("echo not sent\n")
    assert _statuses(root, namespace) == _only()

    # a re-included file (!services/translator/entrypoint.sh): translator rebuilds
    ep = root / "services/translator/entrypoint.sh"
    ep.write_text(ep.read_text() + "\n# changed\n")
    assert _statuses(root, namespace) == _only("translator:cpu")

    # a file's mode is an input too
    ep.chmod(0o700)
    assert _statuses(root, namespace) == _only("translator:cpu")

    # an empty folder under a COPY source (BuildKit copies it): that image rebuilds
    (root / "services/translator/src/empty").mkdir()
    assert _statuses(root, namespace) == _only("translator:cpu")

    # a FIFO and a socket under a COPY source are inputs too, never opened (a read would
    # wait for a writer forever)
    os.mkfifo(root / "services/gateway/src/pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "services/gateway/src/sock"))
    assert _statuses(root, namespace) == _only("gateway")

    # the Dockerfile
    df = root / "apps/web/Dockerfile"
    df.write_text(df.read_text() + "\n# a comment is a change of the Dockerfile\n")
    assert _statuses(root, namespace) == _only("web")

    # the schema: every image
    schema = root / "packages/shared/prisma/schema.prisma"
    schema.write_text(schema.read_text() + "\n// changed\n")
    assert _statuses(root, namespace) == _only(*ALL)

    # the base image retagged to another image: every image
    build_other_image(root / "marker-context", f"{base}:latest")
    assert _statuses(root, namespace) == _only(*ALL)
    assert _statuses(root, namespace) == _only()

    # --force / --no-cache build anyway
    assert _statuses(root, namespace, "--force") == _only(*ALL)


def test_without_the_gate_a_base_image_retagged_still_rebuilds(
    example_copy: Path, namespace: str, base: str, tmp_path: Path
) -> None:
    """--skip-schema-check skips the gate's verdict, not the key's reading of the Dockerfile:
    the base images' IDs and the copied files stay inputs (with no reading, a base retagged
    to another image left the image "up to date")."""
    skip = "--skip-schema-check"
    assert _statuses(example_copy, namespace, skip) == _only(*ALL)
    assert _statuses(example_copy, namespace, skip) == _only()
    build_other_image(tmp_path / "other", f"{base}:latest")  # outside the build context
    assert _statuses(example_copy, namespace, skip) == _only(*ALL)
    src = example_copy / "services/gateway/src/server.ts"
    src.write_text(src.read_text() + "\n// changed\n")
    assert _statuses(example_copy, namespace, skip) == _only("gateway")
    # a Dockerfile our reader refuses (the gate would): built, never "up to date"
    df = example_copy / "apps/web/Dockerfile"
    df.write_text(df.read_text() + "\nCOPY --from= /x /y\n")
    r = run_inv(
        "build.all", "--root", str(example_copy), "--registry", namespace, skip, "--dry-run"
    )
    assert r.code == 0, r
    assert "web: its inputs cannot be read from the Dockerfile (" in r.out + r.err, r


def test_a_base_image_s_env_names_what_copy_takes(
    example_copy: Path, namespace: str, base: str, tmp_path: Path
) -> None:
    """BuildKit expands the base image's own ENV in a stage FROM it: with ``ENV SRC=envdir1``
    in the base, ``COPY ${SRC:-envdir2}/`` copies envdir1, which the key then names (read
    without the base's ENV, it named envdir2: a change to envdir1 was "up to date")."""
    build_image(tmp_path / "env-base", f"{base}:latest", "FROM busybox\nENV SRC=envdir1\n")
    for name in ("envdir1", "envdir2"):
        (example_copy / name).mkdir()
        (example_copy / name / "f").write_text(name)
    web = example_copy / "apps/web/Dockerfile"
    web.write_text(web.read_text() + "\nCOPY ${SRC:-envdir2}/ /envsrc/\n")
    assert _statuses(example_copy, namespace) == _only(*ALL)
    (example_copy / "envdir1/f").write_text("changed")
    assert _statuses(example_copy, namespace) == _only("web")
    (example_copy / "envdir2/f").write_text("changed")  # not what BuildKit copies
    assert _statuses(example_copy, namespace) == _only()


def test_a_build_arg_change_rebuilds_that_image(
    example_copy: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoke import Config, Context

    from tasks import build
    from tasks.lib.config import defaults

    monkeypatch.setenv("NO_COLOR", "1")

    def run(**extra: str) -> None:
        cfg = defaults()
        cfg["services"]["web"]["build_args"] = {"PACKAGE_MANAGER": "bun", **extra}
        ctx = Context(config=Config(overrides={"meeshy": cfg}))
        build.all_(ctx, root=str(example_copy), registry=namespace, json=False)

    assert _statuses(example_copy, namespace) == _only(*ALL)
    run()  # same args as the defaults: nothing to do
    r = run_inv(
        "build.all", "--root", str(example_copy), "--registry", namespace, "--dry-run", "--json"
    )
    assert all(d["up_to_date"] for d in json.loads(r.out)), r
    run(NODE_ENV="staging")  # one more build arg for web: web rebuilds, in-process
    r = run_inv(
        "build.all", "--root", str(example_copy), "--registry", namespace, "--dry-run", "--json"
    )
    assert {d["image"]: d["up_to_date"] for d in json.loads(r.out)} == {
        "gateway": True,
        "translator:cpu": True,
        "web": False,  # the default args again differ from the last build's
    }
    assert _statuses(example_copy, namespace) == _only("web")


def test_dry_run_says_what_would_be_skipped_and_why(example_copy: Path, namespace: str) -> None:
    assert _statuses(example_copy, namespace) == _only(*ALL)
    src = example_copy / "apps/web/src/page.tsx"
    src.write_text(src.read_text() + "\n// changed\n")
    r = run_inv("build.all", "--root", str(example_copy), "--registry", namespace, "--dry-run")
    assert r.code == 0, r
    assert "up to date, would skip gateway: every tag carries this input key" in r.out
    assert "# web: " in r.out and "was built from other inputs" in r.out
    assert r.out.count("docker buildx build") == 1


def test_key_files_are_what_docker_sends(tmp_path: Path, sdk: Any) -> None:
    """A build whose last stage is ``COPY . /ctx``: the entries in /ctx are exactly those
    the input key hashes (ignore file with excludes, ``**``, ``!`` re-includes; empty
    folders, a FIFO, a socket)."""
    from tasks.lib.gate import context_files

    ctx = tmp_path / "ctx"
    for rel in (
        "a.txt",
        "keep/x.md",
        "docs/readme.md",
        "docs/deep/notes.md",
        "src/app.py",
        "src/tmp/cache.bin",
        "src/tmp/keep.bin",
        "node_modules/pkg/index.js",
        "sub/node_modules/pkg/index.js",
        "weird name [1].txt",
    ):
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(rel)
    (ctx / "link").symlink_to("a.txt")
    (ctx / "empty").mkdir()
    (ctx / "src/empty-too").mkdir()
    os.mkfifo(ctx / "src/fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ctx / "src/sock"))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx\n")
    (ctx / ".dockerignore").write_text(
        "**/node_modules/\n**/*.md\n!keep/x.md\nsrc/tmp\n!src/tmp/keep.bin\nDockerfile\n"
    )
    tag = f"t8ctx{uuid.uuid4().hex[:8]}:latest"
    try:
        build_image(ctx, tag)
        listing = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "find", tag, "/ctx", "-mindepth", "1"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        in_image = sorted(p.removeprefix("/ctx/") for p in listing if p.startswith("/ctx/"))
        expected = context_files(ctx, ctx / "Dockerfile", [""])
        # BuildKit 0.8 sends no FIFO (a socket arrives as an empty file); the key keeps the
        # FIFO all the same: an input too many can only cost a rebuild, never a wrong skip
        assert in_image == [e for e in expected if e != "src/fifo"]
        assert "keep/x.md" in expected and "src/tmp/keep.bin" in expected
        assert "docs/readme.md" not in expected and "src/tmp/cache.bin" not in expected
        assert {"empty", "src/empty-too", "src/fifo", "src/tmp"} <= set(expected)
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_the_key_follows_the_platform_built_for(
    example_copy: Path, namespace: str, tmp_path: Path
) -> None:
    """``COPY bin/${TARGETARCH}/``: with ``--platform linux/arm64`` BuildKit copies the arm64
    folder, so a change there rebuilds (the key once read the amd64 one and said "up to
    date" over an image holding the old arm64 file)."""
    arch = example_copy / "arch"
    for name in ("amd64", "arm64"):
        (arch / "bin" / name).mkdir(parents=True)
        (arch / "bin" / name / "x").write_text(f"{name} 1\n")
    (arch / "Dockerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY arch/bin/${TARGETARCH}/ /app/\n"
    )
    config = tmp_path / "arch.yaml"
    config.write_text(
        "meeshy:\n  all: arch\n  services:\n    arch:\n      dockerfile: arch/Dockerfile\n"
        "      image: meeshy-arch\n      tags: [latest]\n      schema_policy: none\n"
    )

    def status(*extra: str) -> str:
        r = run_inv(
            "-f", str(config), "build.all", "--root", str(example_copy), "--registry",
            namespace, "--json", *extra,
        )  # fmt: skip
        assert r.code == 0, r
        return str(json.loads(r.out)[0]["result"])

    assert status("--platform", "linux/arm64") == "built"
    assert status("--platform", "linux/arm64") == "up to date"
    (arch / "bin/arm64/x").write_text("arm64 2\n")
    assert status("--platform", "linux/arm64") == "built"
    (arch / "bin/amd64/x").write_text("amd64 2\n")  # not what an arm64 build copies
    assert status("--platform", "linux/arm64") == "up to date"


def test_a_base_image_s_onbuild_triggers_make_the_context_an_input(
    example_copy: Path, namespace: str, tmp_path: Path
) -> None:
    """``FROM <an image with ONBUILD COPY arch/ /onb/>``: the Dockerfile copies nothing, the
    trigger does, so a change under arch/ rebuilds (it was "up to date" over the old file)."""
    base = f"t8onb{uuid.uuid4().hex[:8]}:latest"
    (tmp_path / "base").mkdir()
    (tmp_path / "base/Dockerfile").write_text("FROM busybox\nONBUILD COPY arch/ /onb/\n")
    arch = example_copy / "arch"
    arch.mkdir()
    (arch / "x").write_text("1\n")
    (arch / "Dockerfile").write_text(f"FROM {base}\n")
    config = tmp_path / "arch.yaml"
    config.write_text(
        "meeshy:\n  all: arch\n  services:\n    arch:\n      dockerfile: arch/Dockerfile\n"
        "      image: meeshy-arch\n      tags: [latest]\n      schema_policy: none\n"
    )

    def status() -> str:
        r = run_inv(
            "-f", str(config), "build.all", "--root", str(example_copy), "--registry",
            namespace, "--json",
        )  # fmt: skip
        assert r.code == 0, r
        return str(json.loads(r.out)[0]["result"])

    try:
        build_image(tmp_path / "base", base)
        assert status() == "built"
        assert status() == "up to date"
        (arch / "x").write_text("2\n")
        assert status() == "built"
    finally:
        subprocess.run(["docker", "image", "rm", base], capture_output=True, check=False)


class _VersionCounted(docker.DockerClient):
    """The real engine's client, counting its ``/version`` requests."""

    versions = 0

    def version(self, *args: Any, **kwargs: Any) -> Any:
        self.versions += 1
        return super().version(*args, **kwargs)


def test_the_engine_s_platform_is_asked_only_when_it_changes_the_inputs(
    example_copy: Path,
) -> None:
    """The example reads the same files on any platform: the key asks the engine nothing
    more than its one list call and its bases' inspects; a ``COPY bin/${TARGETARCH}/`` asks
    its platform once, and is keyed by the engine's folder."""
    from tasks.lib.build import flow
    from tasks.lib.build.plan import BuildOptions, Target
    from tasks.lib.config import resolve

    client = _VersionCounted.from_env()
    assert isinstance(client, _VersionCounted)
    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    flow.freshness(flow.plan(s, [Target(n) for n in s.all], BuildOptions()), client)
    assert client.versions == 0
    arch = client.version()["Arch"]
    client.versions = 0
    (example_copy / f"bin/{arch}").mkdir(parents=True)
    (example_copy / f"bin/{arch}/x").write_text(arch)
    web = example_copy / "apps/web/Dockerfile"
    web.write_text(web.read_text() + "\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/ /bin-arch/\n")
    fresh = flow.freshness(flow.plan(s, [Target("web")], BuildOptions()), client)
    assert client.versions == 1
    assert f"bin/{arch}/x" in fresh.keys["web"].files
    client.close()
