"""stack.* under hostile conditions: a signal while stack.up waits (the stack stays up, one
line says so and how to take it down), malformed stack config from the environment, and
output closed early."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import PROJECT, reaped
from tests.integration.stack.stack_world import compose_ps, docker_sdk

DEV_FILE = "infrastructure/docker/compose/docker-compose.dev.yml"
PROJECT_PREFIX = "stacktest"  # of every project these tests create
# a signal to the task process alone, as CI runners and `timeout` send, and its exit code
SIGNALS = pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)


def _slow(check: str) -> str:
    """A service ``slow`` whose healthcheck (``check``: true or false) first runs after 60 s."""
    return f"""\
services:
  slow:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "exec sleep 600"]
    healthcheck:
      test: ["CMD", "{check}"]
      interval: 60s
      start_period: 60s
"""


SLOW = _slow("true")


def _inv(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT,
        env={**os.environ, "NO_COLOR": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_one_running(proc: subprocess.Popen[str], project: str, timeout: float = 60) -> None:
    """Until one of the project's containers runs (stack.up is past compose's first start),
    while the task itself still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [r for r in compose_ps(project) if r.get("State") == "running"]:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)


@pytest.fixture
def slow_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    uid = uuid.uuid4().hex[:8]
    project = f"{PROJECT_PREFIX}-{uid}-dev"
    (tmp_path / DEV_FILE).parent.mkdir(parents=True)
    (tmp_path / DEV_FILE).write_text(SLOW, encoding="utf-8")
    env_file = tmp_path / "infrastructure/envs/.env.example"  # stack.up refuses without it
    env_file.parent.mkdir(parents=True)
    env_file.write_text("", encoding="utf-8")
    try:
        yield {
            "MEESHY_ROOT": str(tmp_path),
            "INVOKE_MEESHY_STACKS_DEV_PROJECT": project,
            "PROJECT": project,
        }
    finally:
        with docker_sdk() as client:
            for c in client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={project}"}
            ):
                c.remove(force=True)
            for n in client.networks.list(filters={"name": project}):
                n.remove()


@pytest.mark.engine
@SIGNALS
def test_signal_while_waiting_leaves_the_stack_up_and_says_so(
    slow_stack: dict[str, str], sig: signal.Signals, code: int
) -> None:
    project = slow_stack["PROJECT"]
    with reaped(_inv("stack.up", "--timeout", "120", env=slow_stack)) as proc:
        _wait_one_running(proc, project)
        time.sleep(1.0)  # inside the waiting loop
        os.kill(proc.pid, sig)  # the main process only, as CI runners and `timeout` do
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, (out, err)
    lines = err.strip().splitlines()
    assert lines[-1] == (
        f"ERROR: interrupted by {sig.name}: stopped waiting for {project}; what started "
        "stays up (take it down with `inv stack.down --env dev`)"
    ), err
    assert "Traceback" not in err
    assert [r["State"] for r in compose_ps(project)] == ["running"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"INVOKE_MEESHY_STACKS_DEV_PROJECT": "Not A Project"},
            "ERROR: meeshy.stacks.dev.project 'Not A Project' is not a compose project name",
        ),
        ({"INVOKE_MEESHY_STACKS_PROD_FILE": ""}, "ERROR: meeshy.stacks.prod.file is not set"),
    ],
)
def test_malformed_stack_config_from_env_is_one_line(env: dict[str, str], message: str) -> None:
    proc = _inv("stack.urls", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(message), err


def test_output_closed_early_is_quiet() -> None:
    proc = _inv("stack.urls", "--env", "prod", env={})
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err


def _follow_logs(stack: dict[str, str], root: Path, script: str) -> subprocess.Popen[str]:
    """The slow stack up with ``script`` as its service's command; `stack.logs --follow`
    started on it."""
    (root / DEV_FILE).write_text(SLOW.replace('"exec sleep 600"', f'"{script}"'))
    up = _inv("stack.up", "--no-wait", env=stack)
    out, err = up.communicate(timeout=120)
    assert up.returncode == 0, (out, err)
    return _inv("stack.logs", "--follow", "--tail", "1", env=stack)


@pytest.mark.engine
def test_logs_follow_stops_on_sigint(slow_stack: dict[str, str], tmp_path: Path) -> None:
    with reaped(
        _follow_logs(slow_stack, tmp_path, "while :; do echo tick; sleep 0.2; done")
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "tick" in first
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "ERROR: interrupted by SIGINT"
    assert "Traceback" not in err


@pytest.mark.engine
def test_logs_follow_with_its_output_closed_leaves_no_compose_behind(
    slow_stack: dict[str, str], tmp_path: Path
) -> None:
    """`inv stack.logs --follow | head -1`: the task exits 141 at the next line, and the
    `docker compose logs --follow` it started goes with it (it would otherwise wait, under
    init, for a log line to meet the closed pipe: forever on a quiet stack)."""

    # one line, a second one later (the task meets the closed pipe there), then silence
    script = "echo tick; sleep 4; echo tock; exec sleep 600"
    with reaped(_follow_logs(slow_stack, tmp_path, script)) as proc:
        assert proc.stdout is not None
        assert "tick" in proc.stdout.readline()
        proc.stdout.close()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 141, err
    assert err == ""
    time.sleep(0.5)
    assert _naming(slow_stack["PROJECT"]) == []


SLOW_THEN_B = (
    _slow("false")
    + """\
  b:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "exec sleep 600"]
    depends_on:
      slow:
        condition: service_healthy
"""
)


def _naming(project: str) -> list[list[str]]:
    """The command lines of the processes that name ``project``."""
    import psutil

    return [
        cmd
        for p in psutil.process_iter(["cmdline"])
        if project in " ".join(cmd := p.info["cmdline"] or [])
    ]


def _compose_left(project: str) -> list[list[str]]:
    return [cmd for cmd in _naming(project) if "compose" in cmd]


@pytest.mark.engine
def test_up_that_gives_up_leaves_no_compose_behind(
    slow_stack: dict[str, str], tmp_path: Path
) -> None:
    """`stack.up --timeout 4` while compose up still waits for `slow` to turn healthy (it
    never does) before starting `b`: the task stops compose up and waits for it, so nothing
    goes on changing the stack after it exits, and says what state it left."""
    project = slow_stack["PROJECT"]
    (tmp_path / DEV_FILE).write_text(SLOW_THEN_B, encoding="utf-8")
    with reaped(_inv("stack.up", "--timeout", "4", env=slow_stack)) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert _compose_left(project) == []
    last = err.strip().splitlines()[-1]
    assert last == (
        "ERROR: stack dev: not ready after 4s: b (created, not started); slow (health: "
        "starting): `docker compose up` was still starting the stack and was stopped: what it "
        "started stays up, the rest is not started (`inv stack.status --env dev`; "
        "`inv stack.down --env dev` takes it down)"
    ), err
    states = {r["Service"]: r["State"] for r in compose_ps(project)}
    assert states == {"slow": "running", "b": "created"}
    time.sleep(2)  # nothing goes on behind the task
    assert {r["Service"]: r["State"] for r in compose_ps(project)} == states


def _chain(n: int) -> str:
    """``n`` services, each started once the one before is healthy (about a second each):
    compose up takes a while to create them all."""
    out = ["services:"]
    for i in range(n):
        out += [
            f"  s{i:02d}:",
            "    image: busybox:latest",
            "    init: true",
            '    command: ["sh", "-c", "sleep 1; touch /ready; exec sleep 600"]',
            "    healthcheck:",
            '      test: ["CMD", "test", "-f", "/ready"]',
            "      interval: 1s",
            "      retries: 30",
        ]
        if i:
            out += ["    depends_on:", f"      s{i - 1:02d}:", "        condition: service_healthy"]
    return "\n".join(out) + "\n"


@pytest.mark.engine
@SIGNALS
def test_signal_during_compose_up_says_the_stack_is_partly_created(
    slow_stack: dict[str, str], tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    project = slow_stack["PROJECT"]
    (tmp_path / DEV_FILE).write_text(_chain(12), encoding="utf-8")
    with reaped(_inv("stack.up", "--timeout", "120", env=slow_stack)) as proc:
        _wait_one_running(proc, project)
        time.sleep(1.5)  # compose up is still creating the chain
        os.kill(proc.pid, sig)  # the main process only, as CI runners and `timeout` do
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in err
    assert _compose_left(project) == []
    states = [r["State"] for r in compose_ps(project)]
    running = states.count("running")
    created = states.count("created")
    assert 0 < running < 12, states
    how_far = f"{running} of 12 services running"
    if created:
        how_far += f", {created} created but not started"
    if len(states) < 12:
        how_far += f", {12 - len(states)} not created"
    assert err.strip().splitlines()[-1] == (
        f"ERROR: interrupted by {sig.name}: `docker compose up` of {project} was interrupted "
        f"and the stack is only partly created ({how_far}): rerun `inv stack.up --env dev` "
        "to finish it, or take it down with `inv stack.down --env dev`"
    ), err


@pytest.mark.engine
def test_two_ups_at_once_one_is_refused_and_the_stack_is_fine(
    slow_stack: dict[str, str], tmp_path: Path
) -> None:
    """Two `stack.up` of one project at once made compose create its network twice: both
    failed, and so did every later up until a down. The second is now refused at once."""
    project = slow_stack["PROJECT"]
    (tmp_path / DEV_FILE).write_text(_chain(3), encoding="utf-8")
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    with reaped(_inv("stack.up", "--timeout", "120", env={**slow_stack, **state})) as first:
        deadline = time.monotonic() + 60
        while not compose_ps(project) and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.2)
        with reaped(_inv("stack.up", "--timeout", "120", env={**slow_stack, **state})) as second:
            out2, err2 = second.communicate(timeout=60)
        out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, (out1, err1)
    assert second.returncode == 2, (out2, err2)
    assert err2.strip().splitlines()[-1] == (
        f"ERROR: refused, nothing done: stack.up (pid {first.pid}) is changing {project} on "
        "this engine: wait for it to end (two at once break the project: compose would "
        "create its network twice), or stop it"
    ), err2
    with docker_sdk() as client:
        assert len(client.networks.list(filters={"name": f"{project}_default"})) == 1
    assert [r["State"] for r in compose_ps(project)] == ["running"] * 3
    # and once the first is done, the next up goes through
    r = subprocess.run(
        [sys.executable, "-m", "invoke", "stack.up"],
        cwd=PROJECT,
        env={**os.environ, "NO_COLOR": "1", **slow_stack, **state},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r


# PID 1 without init ignores SIGTERM: each stop waits out its grace period
STUBBORN = "services:\n" + "".join(
    f"  s{i}:\n    image: busybox:latest\n    command: [sleep, '600']\n    stop_grace_period: 20s\n"
    for i in range(3)
)


@pytest.mark.engine
@SIGNALS
def test_signal_during_down_says_the_stack_may_be_partly_down(
    slow_stack: dict[str, str], tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """A signal while `docker compose down` stops the containers ended with the bare
    "interrupted by SIGINT": nothing said that the stack was left partly down (its containers
    stopping, not removed; with --volumes, the volumes kept), nor how to finish."""
    project = slow_stack["PROJECT"]
    (tmp_path / DEV_FILE).write_text(STUBBORN, encoding="utf-8")
    up = _inv("stack.up", "--no-wait", env=slow_stack)
    out, err = up.communicate(timeout=120)
    assert up.returncode == 0, (out, err)
    with reaped(_inv("stack.down", "--volumes", env=slow_stack)) as proc:
        assert proc.stdout is not None
        while "Stopping" not in (line := proc.stdout.readline()):
            assert line, proc.communicate()
        os.kill(proc.pid, sig)  # the main process only, as CI runners and `timeout` do
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"ERROR: interrupted by {sig.name}: `docker compose down` of {project} was stopped "
        "before it ended: the stack may be partly down, its volumes maybe not removed (rerun "
        "`inv stack.down --env dev --volumes` to finish it)"
    ), err
    assert len(compose_ps(project)) == 3  # not removed: partly down indeed
