"""Signals to a running build, as CI runners and `timeout` send them: to the task process
alone (SIGINT, SIGTERM) or to its process group; SIGKILL then a rerun. The children stop at
once, the message says what was and was not built, and no tag of an unfinished image moves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.registry import own_namespace

pytestmark = pytest.mark.engine

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_web(example_copy: Path) -> Path:
    """The example with a web image whose build waits 60 s (gateway/translator stay fast)."""
    df = example_copy / "apps/web/Dockerfile"
    text = df.read_text()
    marker = uuid.uuid4().hex
    df.write_text(
        text.replace(
            "FROM base AS builder\n", f"FROM base AS builder\nRUN echo {marker} && sleep 60\n", 1
        )
    )
    return example_copy


@pytest.fixture
def namespace() -> Iterator[str]:
    with own_namespace("t10sig") as ns:
        yield ns


def _start(root: Path, ns: str, *, group: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "build.all", "--root", str(root), "--registry", ns],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=group,
    )


def _wait_for_web_step(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until web's slow step runs (a docker buildx child exists and 60 s are not over)."""
    deadline = time.monotonic() + timeout
    me = psutil.Process(proc.pid)
    while time.monotonic() < deadline:
        kids = [p for p in me.children(recursive=True) if "buildx" in " ".join(_cmd(p))]
        if kids and time.monotonic() > deadline - timeout + 6:
            return
        time.sleep(0.3)
    raise AssertionError("the build never started")


def _cmd(p: Any) -> list[str]:
    try:
        return list(p.cmdline())
    except psutil.Error:
        return []


def _buildx_of(root: Path) -> list[int]:
    """The buildx processes building from ``root`` (their context: the last argument; the
    tags are not on their command line, the images are tagged after the build)."""
    return [
        p.pid for p in psutil.process_iter() if "buildx" in _cmd(p) and _cmd(p)[-1:] == [str(root)]
    ]


def _tags(ns: str) -> set[str]:
    import docker

    client = docker.from_env()
    try:
        return {
            t
            for i in client.api.images(filters={"reference": [f"{ns}/*:*"]})
            for t in i.get("RepoTags") or []
        }
    finally:
        client.close()


@pytest.mark.parametrize(
    ("sig", "code", "group"),
    [
        pytest.param(signal.SIGINT, 130, False, id="SIGINT-process"),
        pytest.param(signal.SIGTERM, 143, False, id="SIGTERM-process"),
        pytest.param(signal.SIGINT, 130, True, id="SIGINT-group"),
    ],
)
def test_a_signal_stops_the_builds_at_once(
    slow_web: Path, namespace: str, sig: signal.Signals, code: int, group: bool
) -> None:
    proc = _start(slow_web, namespace, group=group)
    try:
        _wait_for_web_step(proc)
        assert _buildx_of(slow_web), "the finder of buildx processes finds none"
        sent = time.monotonic()
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, (out, err)
    assert took < 15, f"took {took:.1f}s to stop"
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("ERROR:")][-1]
    assert f"interrupted by {sig.name}" in line
    assert "not built (stopped, tags unchanged): web" in line, line
    assert "built: gateway, translator:cpu" in line, line
    # the stopped build is cancelled, never first reported FAILED (its buildx was killed)
    # nor built (buildx may exit 0 when stopped: its image gets no tag)
    assert "FAILED" not in out + err, out + err
    assert "[web] built" not in out + err, out + err
    assert not _buildx_of(slow_web), "docker buildx processes left running"
    tags = _tags(namespace)
    assert f"{namespace}/meeshy-gateway:latest" in tags
    assert not any("meeshy-web" in t for t in tags), tags


def test_sigkill_then_a_rerun_completes(slow_web: Path, namespace: str) -> None:
    proc = _start(slow_web, namespace)
    try:
        _wait_for_web_step(proc)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the orphaned buildx client may still run: BuildKit finishes or cancels it; a rerun
    # must work regardless and leave every image built
    df = slow_web / "apps/web/Dockerfile"
    df.write_text(
        "\n".join(ln for ln in df.read_text().splitlines() if "sleep 60" not in ln) + "\n"
    )
    for pid in _buildx_of(slow_web):
        with __import__("contextlib").suppress(psutil.Error):
            psutil.Process(pid).kill()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "build.all",
            "--root",
            str(slow_web),
            "--registry",
            namespace,
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert f"{namespace}/meeshy-web:latest" in _tags(namespace)
