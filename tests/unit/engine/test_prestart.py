"""Which runs start their SSH link as tasks.py loads (tasks.invoke_adapter.prestart_link): only
a run whose first task talks to its engine, never a dry run, a help screen or a core flag.
Over a real sshd, tests/integration/ssh checks that every task then logs in exactly once."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from tasks import invoke_adapter
from tasks.invoke_adapter import first_engine_context, runs_a_task


@pytest.fixture(scope="module")
def ns() -> Any:
    return importlib.import_module("tasks").ns


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["images.list"], "", id="engine-task"),
        pytest.param(["images.list", "--context", "prod"], "prod", id="context"),
        pytest.param(["images.list", "--context=prod"], "prod", id="context-equals"),
        pytest.param(["volumes.size", "--json", "--context", "p"], "p", id="after-flag"),
        pytest.param(["build.all", "staging.tag", "--context", "p"], "", id="next-task"),
        pytest.param(["staging.tag", "--dry-run", "--context", "p"], None, id="dry-run"),
        pytest.param(["images.list", "--help"], None, id="help"),
        pytest.param(["images.list", "-h"], None, id="short-help"),
        pytest.param(["images.list", "--context"], None, id="context-without-value"),
        pytest.param(["staging.compose"], None, id="task-without-engine"),
        pytest.param(["--list"], None, id="core-flag"),
        pytest.param(["-f", "x.yaml", "images.list"], None, id="core-flag-first"),
        pytest.param(["no.such-task"], None, id="unknown-task"),
        pytest.param([], None, id="nothing"),
    ],
)
def test_first_engine_context(ns: Any, argv: list[str], expected: str | None) -> None:
    assert first_engine_context(ns, argv) == expected


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "INVOKE_MEESHY_DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setattr(invoke_adapter, "PROJECT_DIR", project)
    return tmp_path


def _context(base: Path, name: str, host: str) -> None:
    """A Docker context as the docker CLI stores it (meta/<sha256 of the name>/meta.json)."""
    import hashlib
    import json

    meta = base / "docker" / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}})
    )


def test_a_local_engine_is_not_remote(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = _clean_env(monkeypatch, tmp_path)
    assert invoke_adapter._may_be_remote() is False
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert invoke_adapter._may_be_remote() is False
    monkeypatch.delenv("DOCKER_HOST")
    _context(base, "local-tcp", "tcp://127.0.0.1:2375")
    monkeypatch.setenv("DOCKER_CONTEXT", "local-tcp")
    assert invoke_adapter._may_be_remote() is False
    monkeypatch.setenv("DOCKER_CONTEXT", "no-such-context")  # the task will say so
    assert invoke_adapter._may_be_remote() is False


@pytest.mark.parametrize(
    ("how", "value"),
    [
        pytest.param("DOCKER_HOST", "ssh://root@meeshy.me", id="docker-host-ssh"),
        pytest.param("DOCKER_CONTEXT", "meeshy-prod", id="docker-context"),
        pytest.param("INVOKE_MEESHY_DOCKER_CONTEXT", "meeshy-prod", id="invoke-env"),
        pytest.param("config.json", '{"currentContext": "meeshy-prod"}', id="current-context"),
        pytest.param("invoke.yaml", "meeshy:\n  docker_context: meeshy-prod\n", id="project"),
    ],
)
def test_what_may_name_a_remote_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str, value: str
) -> None:
    base = _clean_env(monkeypatch, tmp_path)
    _context(base, "meeshy-prod", "ssh://root@meeshy.me")
    if how == "config.json":
        (base / "docker" / "config.json").write_text(value)
    elif how == "invoke.yaml":
        (base / "project" / "invoke.yaml").write_text(value)
    else:
        monkeypatch.setenv(how, value)
    assert invoke_adapter._may_be_remote() is True


def test_nothing_starts_for_a_local_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ns: Any
) -> None:
    _clean_env(monkeypatch, tmp_path)
    started: list[Any] = []
    monkeypatch.setattr("tasks.lib.engine.start_link", started.append)
    invoke_adapter.prestart_link(ns, ["images.list"])
    invoke_adapter.prestart_link(ns, ["staging.tag", "--dry-run", "--context", "x"])
    assert started == []


def test_a_context_that_does_not_exist_starts_nothing_and_says_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ns: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The task itself resolves its target and reports the unknown context, in one line."""
    _clean_env(monkeypatch, tmp_path)
    invoke_adapter.prestart_link(ns, ["images.list", "--context", "no-such-context"])
    from tasks.lib.engine import _LINKS

    assert _LINKS.open == {}
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("argv", "runs"),
    [
        pytest.param(["--list"], False, id="list"),
        pytest.param(["-l", "build"], False, id="list-namespace"),
        pytest.param(["--complete", "--", "inv", "build."], False, id="completion"),
        pytest.param(["build.all", "--help"], False, id="task-help"),
        pytest.param(["-h"], False, id="help"),
        pytest.param(["--version"], False, id="version"),
        pytest.param(["--list=build"], False, id="list-equals"),
        pytest.param(["build.all"], True, id="task"),
        pytest.param(["images.list", "--json", "--context", "prod"], True, id="task-flags"),
        pytest.param([], True, id="nothing"),  # Invoke's default task / its own message
    ],
)
def test_only_a_run_that_may_run_a_task_loads_the_config_defaults(
    argv: list[str], runs: bool
) -> None:
    assert runs_a_task(argv) is runs
