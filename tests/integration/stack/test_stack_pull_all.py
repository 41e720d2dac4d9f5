"""stack.pull --all against a real registry on loopback (nothing can be pulled from the
internet here): stand-in images under a namespace unique to the run, pushed to the registry,
then made older, missing or local-only on the engine. Without --all only the missing image is
pulled; with --all every image a registry gives is pulled (an older local one replaced, a
current one left as it is), an app image no registry has is a kept local build with the line
that builds it, and an image compose builds is never pulled."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks import stack as stack_tasks
from tests.integration.registry import LocalRegistry, registry, remove_namespace
from tests.integration.stack.stack_world import FixtureStack, docker_sdk

__all__ = ["registry"]  # the fixture, imported explicitly

pytestmark = pytest.mark.engine

LABEL = "me.meeshy.stacktest.pull"


@dataclass
class World(FixtureStack):
    registry: LocalRegistry
    ids: dict[str, str]  # "v1"/"v2" -> image id

    @property
    def ns(self) -> str:
        return f"stacktest{self.uid}"

    @property
    def repo(self) -> str:
        """Where the stack's images live: ``127.0.0.1:PORT/stacktest<uid>``."""
        return f"{self.registry.host}/{self.ns}"

    def pull(self, **flags: Any) -> tuple[int, str, str]:
        return self.run(stack_tasks.pull, env="fx", **flags)

    def local_id(self, client: Any, ref: str) -> str | None:
        import docker

        try:
            return str(client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None


def _build(client: Any, uid: str, version: str) -> str:
    dockerfile = f'FROM busybox:latest\nLABEL {LABEL}="{uid}" version="{version}"\n'
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    return str(image.id)


def _remove_uid_images(client: Any, uid: str) -> None:
    import docker

    for img in client.images.list(filters={"label": f"{LABEL}={uid}"}):
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(img.id, force=True)


@pytest.fixture
def world(tmp_path: Path, registry: LocalRegistry) -> Iterator[World]:
    uid = uuid.uuid4().hex[:8]
    with docker_sdk() as client:
        try:
            w = World(tmp_path, uid, registry, {})
            w.ids = {v: _build(client, uid, v) for v in ("v1", "v2")}
            repo = w.repo

            def tag(version: str, ref: str) -> None:
                name, _, t = ref.rpartition(":")
                client.images.get(w.ids[version]).tag(name, t)

            def push(ref: str) -> None:
                name, _, t = ref.rpartition(":")
                for line in client.images.push(name, t, stream=True, decode=True):
                    assert "error" not in line, line

            # the registry: thing at v2, same at v1, other at v1; never the app image
            for version, ref in (("v2", "thing:1"), ("v1", "same:1"), ("v1", "other:1")):
                tag(version, f"{repo}/{ref}")
                push(f"{repo}/{ref}")
            # the engine: thing older (v1), same current, other missing, the app image a
            # local build, the image compose builds present
            tag("v1", f"{repo}/thing:1")
            client.images.remove(f"{repo}/other:1")
            tag("v1", f"{repo}/meeshy-web:latest")
            tag("v1", f"{w.ns}/built:1")
            w.file.write_text(
                "services:\n"
                f"  thing:\n    image: {repo}/thing:1\n"
                f"  other:\n    image: {repo}/other:1\n"
                f"  same:\n    image: {repo}/same:1\n"
                f"  web:\n    image: {repo}/meeshy-web:latest\n"
                f"  built:\n    image: {w.ns}/built:1\n    build: {{context: .}}\n",
                encoding="utf-8",
            )
            yield w
        finally:
            remove_namespace(f"stacktest{uid}")
            _remove_uid_images(client, uid)
            assert client.images.list(filters={"label": f"{LABEL}={uid}"}) == []


def _by_service(out: str) -> dict[str, dict[str, Any]]:
    return {i["service"]: i for i in json.loads(out)["images"]}


def test_dry_run_all_shows_every_pull_and_what_is_not_pulled(world: World) -> None:
    code, out, err = world.pull(all_=True, dry_run=True)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"==> dry run: {world.project} would pull every image"
    docker = shutil.which("docker")
    argv = [str(docker), "compose", "--file", str(world.file), "--profile", "*"]
    argv += ["--project-name", world.project, "pull", "--"]
    shown = " ".join(shlex.quote(a) for a in argv)
    # in the order of `compose config` (by name)
    assert [ln for ln in lines if ln.startswith(str(docker))] == [
        f"{shown} {svc}" for svc in ("other", "same", "thing", "web")
    ]
    assert (
        f"# web: if no registry has {world.repo}/meeshy-web:latest, a local build: "
        f"`inv build.web --registry {world.repo}`"
    ) in lines
    assert (
        f"# built: {world.ns}/built:1 is built by compose, not pulled: "
        f"`docker compose -f {world.file} build built`"
    ) in lines
    # without --all: only the missing one
    code, out, err = world.pull(dry_run=True, json=True)
    assert code == 0, out + err
    report = json.loads(out)
    assert report["all"] is False
    pulls = {i["service"]: i["argv"] for i in report["items"] if i["action"] == "pull"}
    assert pulls == {"other": [*argv, "other"]}


def test_pull_all_against_a_registry(world: World) -> None:
    v1, v2 = world.ids["v1"], world.ids["v2"]
    repo = world.repo
    # without --all: the missing image only; the older local one stays
    code, out, err = world.pull(json=True)
    assert code == 0, out + err
    images = _by_service(out)
    assert {s: (i["status"], i["detail"]) for s, i in images.items()} == {
        "thing": ("up to date", "present"),
        "other": ("done", "pulled"),
        "same": ("up to date", "present"),
        "web": ("up to date", "present"),
        "built": ("up to date", "present"),
    }
    with docker_sdk() as client:
        assert world.local_id(client, f"{repo}/thing:1") == v1
        assert world.local_id(client, f"{repo}/other:1") == v1
        client.images.remove(f"{repo}/other:1")

    code, out, err = world.pull(all_=True, json=True)
    assert code == 0, out + err
    images = _by_service(out)
    short_v1 = v1.removeprefix("sha256:")[:12]
    assert {s: (i["status"], i["detail"]) for s, i in images.items()} == {
        "thing": ("done", f"pulled (replaced {short_v1})"),
        "other": ("done", "pulled"),
        "same": ("up to date", "pulled: no newer image"),
        "web": ("skipped", images["web"]["detail"]),
        "built": ("up to date", "present"),
    }
    assert images["web"]["detail"].startswith("no registry has it (")
    assert images["web"]["detail"].endswith("): local build kept")
    assert images["web"]["hint"] == f"a local build: `inv build.web --registry {repo}`"
    assert images["built"]["hint"] == (
        f"built by compose: `docker compose -f {world.file} build built`"
    )
    with docker_sdk() as client:
        assert world.local_id(client, f"{repo}/thing:1") == v2
        assert world.local_id(client, f"{repo}/other:1") == v1
        assert world.local_id(client, f"{repo}/meeshy-web:latest") == v1

    # the table says the same in words
    code, out, err = world.pull(all_=True)
    assert code == 0, out + err
    assert "no registry has it" in out and f"inv build.web --registry {repo}" in out


def test_pull_all_fails_when_a_registry_image_cannot_be_pulled(world: World) -> None:
    """A registry that went away: the present images are kept, the run fails in one line."""
    world.registry.stop()
    code, out, err = world.pull(all_=True, json=True)
    assert code == 1, out + err
    images = _by_service(out)
    assert images["thing"]["status"] == "failed" and images["thing"]["present"] is True
    assert images["other"]["status"] == "failed" and images["other"]["present"] is False
    assert images["same"]["status"] == "failed" and images["same"]["present"] is True
    assert images["web"]["status"] == "skipped"  # a local build, kept
    [line] = err.strip().splitlines()
    assert line.startswith(
        f"ERROR: stack fx: 1 image(s) still missing: other ({world.repo}/other:1); "
        f"2 pull(s) failed, the local image kept: same ({world.repo}/same:1: "
    ), err
    assert f"), thing ({world.repo}/thing:1: " in line
    assert "connection refused" in line
