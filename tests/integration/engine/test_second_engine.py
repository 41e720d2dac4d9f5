"""Engines beyond one machine: a second dockerd on its own socket, reached through
``--context NAME`` and through ``DOCKER_HOST``; builds land there and not on the default engine;
``docker.ensure`` reports a stopped one unreachable, naming the host; an unknown context is one
clear line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from tasks import docker as docker_tasks
from tests.cli import run_inv
from tests.integration.engine.second_engine import (
    SecondEngine,
    require_second_engine,
    second_engine,
)

pytestmark = pytest.mark.engine

__all__ = ["second_engine"]  # the fixture, imported for this module

WEB = "meeshy-web"


@pytest.fixture(scope="module")
def default_sdk() -> Iterator[Any]:
    import docker

    client = docker.from_env()
    yield client
    client.close()


def _has_image(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def _drop(client: Any, namespace: str) -> None:
    for img in client.images.list():
        for tag in img.tags:
            if tag.startswith(f"{namespace}/"):
                client.images.remove(tag, force=True)


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, second_engine: SecondEngine, default_sdk: Any
) -> Iterator[str]:
    """The registry namespace of one test (t5ctx, t5host): absent from both engines before and
    removed from both afterwards."""
    ns = str(request.param)
    mine = second_engine.client()
    try:
        for client in (default_sdk, mine):
            _drop(client, ns)
        yield ns
        for client in (default_sdk, mine):
            _drop(client, ns)
    finally:
        mine.close()


def _assert_only_on_second(second: SecondEngine, default_sdk: Any, ref: str) -> None:
    mine = second.client()
    try:
        assert _has_image(mine, ref), f"{ref} is not on the second engine"
        labels = mine.images.get(ref).labels
        assert labels.get("org.opencontainers.image.title") == WEB
    finally:
        mine.close()
    assert not _has_image(default_sdk, ref), f"{ref} leaked onto the default engine"


@pytest.mark.parametrize("namespace", ["t5ctx"], indirect=True)
def test_build_with_context_lands_on_that_engine_only(
    second_engine: SecondEngine, default_sdk: Any, namespace: str, example_copy: Path
) -> None:
    r = run_inv(
        "build.web", "--context", second_engine.context, "--registry", namespace,
        "--progress", "plain", "--root", str(example_copy),
    )  # fmt: skip
    assert r.code == 0, r
    _assert_only_on_second(second_engine, default_sdk, f"{namespace}/{WEB}:latest")


@pytest.mark.parametrize("namespace", ["t5host"], indirect=True)
def test_build_with_docker_host_lands_on_that_engine_only(
    second_engine: SecondEngine, default_sdk: Any, namespace: str, example_copy: Path
) -> None:
    r = run_inv(
        "build.web", "--registry", namespace, "--progress", "plain", "--root", str(example_copy),
        env={"DOCKER_HOST": second_engine.host, "DOCKER_CONTEXT": ""},
    )  # fmt: skip
    assert r.code == 0, r
    _assert_only_on_second(second_engine, default_sdk, f"{namespace}/{WEB}:latest")


def test_ensure_sees_the_second_engine_through_its_context(
    second_engine: SecondEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    docker_tasks.ensure(Context(), context=second_engine.context, start=False, created_timeout=0)
    out = capsys.readouterr().out
    assert f"answers at {second_engine.host} (Docker context '{second_engine.context}')" in out


def test_sdk_and_whales_reach_the_same_engine_through_a_context(
    second_engine: SecondEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.lib.engine import EngineTarget, sdk_client, whales_client

    ref = f"t5only/{second_engine.context}:mark"
    mine = second_engine.client()
    try:
        mine.images.get("busybox:latest").tag(ref)
    finally:
        mine.close()
    # A Docker config dir as `docker context create` leaves it on a fresh machine: contexts,
    # no config.json.
    config = tmp_path / "docker-config"
    shutil.copytree(Path.home() / ".docker" / "contexts", config / "contexts")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    target = EngineTarget(context=second_engine.context)
    assert whales_client(target).image.exists(ref)
    client = sdk_client(target)
    try:
        assert _has_image(client, ref), "the docker SDK talks to another engine than the CLI"
    finally:
        client.close()


@pytest.fixture
def own_engine() -> Iterator[SecondEngine]:
    """A second engine of this test alone (the test stops it)."""
    require_second_engine()
    with SecondEngine(seed=()) as engine:
        yield engine


@pytest.mark.parametrize("start", [False, True], ids=["no-start", "start"])
def test_ensure_reports_a_stopped_engine_unreachable_with_the_host(
    own_engine: SecondEngine, capsys: pytest.CaptureFixture[str], start: bool
) -> None:
    own_engine.stop()
    assert not own_engine.answers()
    with pytest.raises(Exit) as ei:
        docker_tasks.ensure(Context(), context=own_engine.context, start=start)
    assert ei.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(
        f"ERROR: cannot reach the Docker engine at {own_engine.host} "
        f"(Docker context '{own_engine.context}'): it is not this machine's engine, "
        "so docker.ensure does not start it"
    )
    assert not own_engine.running  # --start did not bring it back either


def test_ensure_unknown_context_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit) as ei:
        docker_tasks.ensure(Context(), context="t5-nope")
    assert ei.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "ERROR: Docker context 't5-nope' does not exist: list them with `docker context ls`, "
        "create one with `docker context create`"
    ]


def test_build_unknown_context_is_one_clear_line(example_copy: Path) -> None:
    r = run_inv("build.web", "--context", "t5-nope", "--root", str(example_copy))
    assert r.code == 2, r
    assert r.err.strip().splitlines() == [
        "ERROR: Docker context 't5-nope' does not exist: list them with `docker context ls`, "
        "create one with `docker context create`"
    ]


def test_build_dry_run_with_unknown_context_still_fails(example_copy: Path) -> None:
    r = run_inv("build.web", "--context", "t5-nope", "--dry-run", "--root", str(example_copy))
    assert r.code == 2, r
    assert "Docker context 't5-nope' does not exist" in r.err


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_fixture_cleans_up_after_a_killed_engine() -> None:
    require_second_engine()
    engine = SecondEngine(seed=())
    with engine:
        assert engine.context_exists()
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)  # dockerd dies; its mount stays behind
        deadline = time.monotonic() + 10
        while engine.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not engine.running
        mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
        assert f" {engine.workdir}/" in mounts  # what a dead dockerd leaves behind
    assert not engine.workdir.exists()
    assert not engine.bridge_exists()
    assert not engine.context_exists()
    assert _processes_mentioning(str(engine.workdir)) == []


def test_fixture_removes_the_host_interfaces_of_the_networks_it_created() -> None:
    """A stopped dockerd keeps its networks: their br-<id> interfaces would outlive the
    engine and use up the main engine's address pools (seen: 29 left after many runs, and
    the main engine's `compose up` failed with "no available, non-overlapping address
    pool"). One network created and still there when the engine stops: gone afterwards."""
    require_second_engine()
    engine = SecondEngine(seed=())
    with engine:
        r = subprocess.run(
            ["docker", "--host", engine.host, "network", "create", "--driver", "bridge",
             f"t5net-{uuid.uuid4().hex[:6]}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        interface = f"br-{r.stdout.strip()[:12]}"
        assert Path(f"/sys/class/net/{interface}").exists()
    assert not Path(f"/sys/class/net/{interface}").exists()
    assert not engine.bridge_exists()


def test_fixture_cleans_up_after_a_failed_start() -> None:
    require_second_engine()
    engine = SecondEngine(seed=(), extra_args=["--no-such-flag"])
    with pytest.raises(RuntimeError, match="second dockerd exited"), engine:
        pass
    assert not engine.workdir.exists()
    assert not engine.bridge_exists()
    assert _processes_mentioning(str(engine.workdir)) == []
    r = subprocess.run(["docker", "context", "inspect", engine.context], capture_output=True,
                       check=False)  # fmt: skip
    assert r.returncode != 0
