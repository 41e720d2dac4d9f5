"""Shared fixtures. Engine tests are marked ``engine``: they skip when no Docker engine answers
on a laptop, and fail when ``CI`` is set (CI must prove them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import Call, run_inv, task_context

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "example"


def _engine_answers() -> str | None:
    """None when a Docker engine with buildx answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        r = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker version timed out"
    if r.returncode != 0:
        return "no Docker engine answers (start it: sudo bash .ci/install-engine.sh --start)"
    r = subprocess.run(
        ["docker", "buildx", "version"], capture_output=True, text=True, timeout=20, check=False
    )
    if r.returncode != 0:
        return "docker buildx is not installed"
    return None


_ENGINE_PROBLEM: str | None = None
_PROBED = False


def engine_problem() -> str | None:
    global _ENGINE_PROBLEM, _PROBED
    if not _PROBED:
        _ENGINE_PROBLEM, _PROBED = _engine_answers(), True
    return _ENGINE_PROBLEM


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("engine") for item in items):
        return
    problem = engine_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        # In CI an engine is required: make every engine test fail loudly instead of skipping.
        for item in items:
            if item.get_closest_marker("engine"):
                # first of the test's fixtures, so the reason is the one reported
                item.fixturenames.insert(0, "_require_engine_in_ci")  # type: ignore[attr-defined]
        return
    skip = pytest.mark.skip(reason=f"needs a Docker engine: {problem}")
    for item in items:
        if item.get_closest_marker("engine"):
            item.add_marker(skip)


@pytest.fixture
def _require_engine_in_ci() -> None:
    pytest.fail(f"CI=true but the Docker engine is not usable: {engine_problem()}")


@pytest.fixture(scope="session")
def sdk() -> Iterator[Any]:
    """A docker SDK client on the real engine, one for the whole session (closed at its end)."""
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled example monorepo (tests may break it)."""
    dest = tmp_path / "meeshy"
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    return dest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("MEESHY_ROOT", "DOCKER_REGISTRY", "DOCKER_HOST", "DOCKER_CONTEXT", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def inv() -> object:
    """The project's CLI as a callable: ``inv("build.web", "--dry-run")``."""
    return run_inv


@pytest.fixture
def call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Call:
    """Run a task function in-process: ``call(task, **flags) -> (exit code, out, err)``."""
    from invoke import Exit

    monkeypatch.setenv("NO_COLOR", "1")
    for var in ("DOCKER_REGISTRY", "MEESHY_ROOT"):
        monkeypatch.delenv(var, raising=False)

    def run(fn: Callable[..., None], **kwargs: Any) -> tuple[int, str, str]:
        capsys.readouterr()
        code = 0
        try:
            fn(task_context(), **kwargs)
        except Exit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


# -- the suite leaves the engine as it found it --------------------------------------------------

_ENGINE_BEFORE: dict[str, set[str]] = {}


def _engine_objects() -> dict[str, set[str]] | None:
    """Images (id and tags), containers, volumes and networks on the default engine."""
    if engine_problem() is not None:
        return None
    import docker

    client = docker.from_env()
    try:
        return {
            "images": {
                f"{i['Id']} {','.join(sorted(i.get('RepoTags') or []))}"
                for i in client.api.images(all=False)
            },
            "containers": {c["Id"] for c in client.api.containers(all=True)},
            "volumes": {v["Name"] for v in client.api.volumes().get("Volumes") or []},
            "networks": {n["Name"] for n in client.api.networks()},
        }
    finally:
        client.close()


def _check_leftovers() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("MEESHY_CHECK_LEFTOVERS"))


_STATE = tempfile.mkdtemp(prefix="meeshy-tests-state-")


def pytest_sessionstart(session: pytest.Session) -> None:
    # the tasks' locks and push records go to a folder of the run's own, never the user's
    # ~/.local/state (tests that check the state folder set their own)
    os.environ["XDG_STATE_HOME"] = _STATE
    if _check_leftovers():
        _ENGINE_BEFORE.update(_engine_objects() or {})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI (or MEESHY_CHECK_LEFTOVERS=1) the run fails when the engine holds other
    images, containers, volumes or networks than when it started."""
    shutil.rmtree(_STATE, ignore_errors=True)
    if not _ENGINE_BEFORE or not _check_leftovers():
        return
    after = _engine_objects()
    if after is None:
        return
    problems, notes = [], []
    for kind, before in _ENGINE_BEFORE.items():
        added, removed = after[kind] - before, before - after[kind]
        if added:
            problems.append(f"{kind} left behind: {sorted(added)}")
        if removed:  # an earlier session's helper that removes itself, or a real removal
            notes.append(f"{kind} gone since the start: {sorted(removed)}")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and notes:
        reporter.write_line("note: " + "; ".join(notes), yellow=True)
    if problems:
        text = "the suite changed the engine:\n  " + "\n  ".join(problems)
        if reporter is not None:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
