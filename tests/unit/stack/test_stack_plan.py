"""Stack resolution and the compose calls: the argv a dry run prints is the argv
python-on-whales runs (its runner is captured here, nothing is started)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.config import resolve
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError
from tasks.lib.stack import compose
from tasks.lib.stack.plan import (
    ComposeCall,
    Stack,
    check_since,
    check_tail,
    down_call,
    env_file_check,
    logs_call,
    pull_call,
    resolve_stack,
    up_call,
)

COMPOSE_DIR = "infrastructure/docker/compose"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / COMPOSE_DIR).mkdir(parents=True)
    for env in ("dev", "prod"):
        (tmp_path / COMPOSE_DIR / f"docker-compose.{env}.yml").write_text("services: {}\n")
    (tmp_path / "infrastructure/envs").mkdir(parents=True)
    (tmp_path / "infrastructure/envs/.env.example").write_text("DOMAIN=x\n")
    return tmp_path


def _settings(root: Path, raw: dict[str, Any] | None = None) -> Any:
    return resolve({"root": str(root), **(raw or {})}, env={}, project_dir=root)


def test_resolve_stack_paths(root: Path) -> None:
    st = resolve_stack(_settings(root), "dev")
    assert st == Stack(
        "dev",
        root / COMPOSE_DIR / "docker-compose.dev.yml",
        "meeshy-dev",
        root / "infrastructure/envs/.env.example",
    )
    assert not st.is_prod
    assert resolve_stack(_settings(root), "prod").is_prod


def test_missing_staging_file_says_how_to_make_it(root: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_stack(_settings(root), "staging")
    line = err.value.line()
    assert "stack staging: no compose file" in line
    assert "docker-compose.staging.yml" in line
    assert "inv staging.compose" in line


def test_missing_local_file_names_the_config_key(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"meeshy\.stacks\.local\.file"):
        resolve_stack(_settings(root), "local")


def test_missing_env_file_is_noted_not_fatal(root: Path) -> None:
    (root / "infrastructure/envs/.env.example").unlink()
    st = resolve_stack(_settings(root), "dev")
    assert st.env_file is None
    assert st.env_file_missing == "infrastructure/envs/.env.example"


def test_env_file_there_or_unset_says_nothing(root: Path) -> None:
    st = resolve_stack(_settings(root), "dev")
    assert env_file_check(st, root, task="stack.up") == ""
    (root / "infrastructure/envs/.env.example").unlink()
    unset = resolve_stack(_settings(root, {"stacks": {"dev": {"env_file": ""}}}), "dev")
    assert unset.env_file is None and unset.env_file_missing == ""
    assert env_file_check(unset, root, task="stack.up") == ""


@pytest.mark.parametrize("task", ["stack.up", "stack.pull", "stack.down --volumes"])
def test_a_missing_env_file_refuses_what_changes_something(root: Path, task: str) -> None:
    (root / "infrastructure/envs/.env.example").unlink()
    st = resolve_stack(_settings(root), "dev")
    with pytest.raises(ConfigError) as err:
        env_file_check(st, root, task=task)
    assert err.value.exit_code == 2
    assert err.value.line() == (
        "refused, nothing done: env file infrastructure/envs/.env.example of stack dev not "
        f"found under {root} (`{task}` needs its variables): create it, or set "
        'meeshy.stacks.dev.env_file to "" in invoke.yaml to run without one'
    )
    assert "\n" not in err.value.line()


def test_a_missing_env_file_is_a_warning_for_reads_and_dry_runs(root: Path) -> None:
    (root / "infrastructure/envs/.env.example").unlink()
    st = resolve_stack(_settings(root), "dev")
    where = f"env file infrastructure/envs/.env.example not found under {root}"
    assert env_file_check(st, root) == (
        f"{where}: running compose without --env-file (variables fall back to their defaults)"
    )
    assert env_file_check(st, root, task="stack.up", dry_run=True) == (
        f"{where}: without --dry-run `stack.up` refuses (create it, or set "
        'meeshy.stacks.dev.env_file to "" in invoke.yaml to run without one)'
    )


@pytest.mark.parametrize(
    ("call", "args"),
    [
        pytest.param(up_call(), ("up", "--detach"), id="up"),
        pytest.param(
            up_call(["gateway"], ["full"]), ("up", "--detach", "--", "gateway"), id="up-svc"
        ),
        pytest.param(down_call(volumes=False), ("down", "--remove-orphans"), id="down"),
        pytest.param(
            down_call(volumes=True), ("down", "--remove-orphans", "--volumes"), id="down-v"
        ),
        pytest.param(logs_call(), ("logs", "--no-color"), id="logs"),
        pytest.param(
            logs_call(["web", "gateway"], follow=True, since="10m", tail="5"),
            (
                "logs",
                "--no-color",
                "--tail",
                "5",
                "--follow",
                "--since",
                "10m",
                "--",
                "web",
                "gateway",
            ),
            id="logs-all",
        ),
        pytest.param(
            logs_call(["web"], tail="20", prefix=False),
            ("logs", "--no-color", "--tail", "20", "--no-log-prefix", "--", "web"),
            id="logs-no-prefix",
        ),
        pytest.param(pull_call("web"), ("pull", "--", "web"), id="pull"),
    ],
)
def test_call_args(call: ComposeCall, args: tuple[str, ...]) -> None:
    assert call.args == args


def test_down_and_reads_see_every_profile() -> None:
    assert down_call(volumes=False).profiles == ("*",)
    assert logs_call().profiles == ("*",)
    assert up_call().profiles == ()
    assert up_call(profiles=["full"]).profiles == ("full",)


@pytest.mark.parametrize("value", ["", "all", "20"])
def test_tail_ok(value: str) -> None:
    assert check_tail(value) == value


def test_tail_bad() -> None:
    with pytest.raises(ConfigError, match="--tail 'x'"):
        check_tail("x")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """python-on-whales' compose runners, replaced by a recorder (no docker runs)."""
    from python_on_whales.components.compose import cli_wrapper

    seen: list[list[str]] = []

    def record_stream(full_cmd: list[Any], *a: Any, **k: Any) -> Iterator[tuple[str, bytes]]:
        seen.append([str(x) for x in full_cmd])
        return iter(())

    def record_run(full_cmd: list[Any], *a: Any, **k: Any) -> str:
        seen.append([str(x) for x in full_cmd])
        return ""

    monkeypatch.setattr(cli_wrapper, "stream_stdout_and_stderr", record_stream)
    monkeypatch.setattr(cli_wrapper, "run", record_run)
    return seen


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(up_call(), id="up"),
        pytest.param(up_call(["gateway", "web"], ["full"]), id="up-svc-profile"),
        pytest.param(down_call(volumes=False), id="down"),
        pytest.param(down_call(volumes=True), id="down-volumes"),
        pytest.param(pull_call("web"), id="pull"),
        pytest.param(up_call(["--volumes", "-q"]), id="up-dash-names"),
        pytest.param(pull_call("-q"), id="pull-dash-name"),
    ],
)
def test_dry_run_argv_is_what_whales_runs(
    root: Path, captured: list[list[str]], call: ComposeCall
) -> None:
    st = resolve_stack(_settings(root), "dev")
    target = EngineTarget(env={})
    shown = compose.argv(st, target, call)
    if call.op == "up":  # run by compose.Running: held to what python-on-whales would run
        compose.client(st, target, call.profiles).compose.up(
            call.operands or None, detach=True, stream_logs=True
        )
    else:
        list(compose.stream(st, target, call))
    assert captured == [shown]
    assert shown[1:3] == ["compose", "--file"]
    assert "--project-name" in shown and "meeshy-dev" in shown
    assert shown[shown.index("--env-file") + 1].endswith(".env.example")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(logs_call(), id="logs"),
        pytest.param(logs_call(["web"], follow=True, since="10m", tail="20"), id="logs-all"),
        pytest.param(logs_call(["web"], tail="20", prefix=False), id="logs-no-prefix"),
        pytest.param(logs_call(["--follow"]), id="logs-dash-name"),
    ],
)
def test_logs_argv_is_what_whales_runs(
    root: Path, captured: list[list[str]], call: ComposeCall
) -> None:
    st = resolve_stack(_settings(root), "dev")
    target = EngineTarget(env={})
    list(compose.logs(st, target, call))
    assert captured == [compose.argv(st, target, call)]


def test_no_env_file_no_flag(root: Path) -> None:
    (root / "infrastructure/envs/.env.example").unlink()
    st = resolve_stack(_settings(root), "dev")
    assert "--env-file" not in compose.argv(st, EngineTarget(env={}), up_call())


@pytest.mark.parametrize(
    "value",
    [
        "",
        "10m",
        "1h30m",
        "1.5h",
        "42s",
        "1732440000",
        "2026-11-24",
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00.5+01:00",
    ],
)
def test_since_takes_what_compose_logs_takes(value: str) -> None:
    assert check_since(value) == value


@pytest.mark.parametrize("value", ["garbage", "10 m", "m10", "-5m", "2026-11-24Tnoon", "10m;x"])
def test_since_refuses_the_rest_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match=r"is not a time: a duration \(10m, 1h30m\)"):
        check_since(value)


def test_up_runs_its_argv_in_a_process_group_of_its_own(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose.Running starts exactly the dry run's argv (here recorded; `true` runs in its
    place), as the leader of its own session, so that stopping it stops the plugin too."""
    import subprocess

    seen: list[tuple[list[str], dict[str, Any]]] = []
    real = subprocess.Popen

    def record(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        seen.append((list(args), kwargs))
        return real(["true"], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", record)
    st = resolve_stack(_settings(root), "dev")
    target = EngineTarget(env={})
    call = up_call(["web"], ["full"])
    run = compose.Running(st, target, call)
    assert list(run.lines()) == []
    assert run.stop() is False  # it had ended
    assert [a for a, _ in seen] == [compose.argv(st, target, call)]
    assert seen[0][1]["start_new_session"] is True


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param(
            {"a": "running", "b": "running", "c": "created", "d": None},
            "2 of 4 services running, 1 created but not started, 1 not created",
            id="partly",
        ),
        pytest.param({"a": None, "b": None, "c": None, "d": None}, "4 of 4 services not created"),
        pytest.param({"a": "running", "b": "running", "c": "running", "d": "running"}, ""),
        pytest.param(
            {"a": "running", "b": "exited", "c": "running", "d": "running"},
            "3 of 4 services running, 1 exited",
            id="exited",
        ),
    ],
)
def test_partly_created_counts_what_a_stopped_up_left(
    states: dict[str, str | None], expected: str
) -> None:
    from tasks.lib.stack.containers import ContainerState
    from tasks.lib.stack.up import partly_created

    containers = [
        ContainerState(id=s, name=f"p-{s}-1", service=s, state=st)
        for s, st in states.items()
        if st is not None
    ]
    assert partly_created(list(states), containers) == expected
