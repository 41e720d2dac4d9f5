"""docker.ensure without an engine: the start decision as a pure function, the waiting loop on a
fake clock, the whole flow with fake probes and runner, and the task's wiring."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
from invoke import Config, Context, Exit, MockContext

from tasks import docker as docker_tasks
from tasks.lib import ensure as core
from tasks.lib.engine import EngineTarget
from tasks.lib.ensure import EnsureOptions, HostFacts, engine_kind, start_plan, wait_for
from tasks.lib.errors import ConfigError, EngineUnavailable
from tasks.lib.output import Output
from tasks.lib.progress import Progress, Status

LINUX_ROOT = HostFacts(
    "Linux",
    frozenset({"docker", "systemctl", "service"}),
    is_root=True,
    systemd=True,
    home="/root",
    uid=0,
)


def linux(*commands: str, root: bool = False, systemd: bool = True) -> HostFacts:
    return HostFacts(
        "Linux",
        frozenset(commands),
        is_root=root,
        systemd=systemd,
        home="/home/ann",
        uid=0 if root else 1000,
    )


def mac(*commands: str) -> HostFacts:
    return HostFacts("Darwin", frozenset(commands), home="/Users/ann", uid=501)


# -- engine_kind ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "facts", "kind"),
    [
        pytest.param("unix:///var/run/docker.sock", linux(), "system", id="linux-default"),
        pytest.param("unix:///run/docker.sock", linux(), "system", id="linux-run"),
        pytest.param("unix:///var/run/docker.sock", mac(), "desktop", id="mac-default-is-desktop"),
        pytest.param(
            "unix:///Users/ann/.docker/run/docker.sock", mac(), "desktop", id="mac-desktop-context"
        ),
        pytest.param(
            "unix:///home/ann/.docker/desktop/docker.sock", linux(), "desktop", id="linux-desktop"
        ),
        pytest.param("unix:///run/user/1000/docker.sock", linux(), "rootless", id="rootless"),
        pytest.param(
            "unix:///run/user/1001/docker.sock", linux(), "other", id="someone-elses-rootless"
        ),
        pytest.param("unix:///tmp/d2-x/docker.sock", linux(root=True), "other", id="other-socket"),
        pytest.param("tcp://10.0.0.5:2376", linux(), "remote", id="tcp"),
        pytest.param("ssh://ann@build-box", linux(), "remote", id="ssh"),
        pytest.param(
            "npipe:////./pipe/docker_engine", HostFacts("Windows"), "desktop", id="windows-pipe"
        ),
    ],
)
def test_engine_kind(host: str, facts: HostFacts, kind: str) -> None:
    assert engine_kind(host, facts) == kind


# -- start_plan: exact argv -------------------------------------------------------------------

SUDO_SYSTEMCTL = ("sudo", "systemctl", "start", "docker")
SUDO_SERVICE = ("sudo", "service", "docker", "start")


@pytest.mark.parametrize(
    ("kind", "facts", "commands"),
    [
        pytest.param(
            "system",
            LINUX_ROOT,
            [("systemctl", "start", "docker"), ("service", "docker", "start")],
            id="linux-root-systemctl-then-service",
        ),
        pytest.param(
            "system",
            linux("systemctl", "service", "sudo"),
            [SUDO_SYSTEMCTL, SUDO_SERVICE],
            id="linux-user-with-sudo",
        ),
        pytest.param(
            "system",
            linux("systemctl", "service"),
            [("systemctl", "start", "docker"), ("service", "docker", "start")],
            id="linux-user-without-sudo-tries-anyway",
        ),
        pytest.param(
            "system",
            linux("systemctl", "service", "sudo", systemd=False),
            [SUDO_SERVICE],
            id="systemctl-without-systemd-is-skipped",
        ),
        pytest.param(
            "system",
            linux("service", root=True),
            [("service", "docker", "start")],
            id="service-only",
        ),
        pytest.param("system", linux("sudo", systemd=False), [], id="no-init-system"),
        pytest.param(
            "rootless",
            linux("systemctl", "sudo"),
            [("systemctl", "--user", "start", "docker")],
            id="rootless-user-unit",
        ),
        pytest.param(
            "desktop",
            linux("systemctl"),
            [("systemctl", "--user", "start", "docker-desktop")],
            id="linux-desktop",
        ),
        pytest.param("desktop", mac("open"), [("open", "-a", "Docker")], id="mac-open"),
        pytest.param("desktop", mac(), [], id="mac-without-open"),
        pytest.param("desktop", HostFacts("Windows", frozenset({"docker"})), [], id="windows"),
        pytest.param("remote", LINUX_ROOT, [], id="remote-never-started"),
        pytest.param("other", LINUX_ROOT, [], id="other-socket-never-started"),
    ],
)
def test_start_plan_commands(
    kind: core.Kind, facts: HostFacts, commands: list[tuple[str, ...]]
) -> None:
    assert list(start_plan(kind, facts).commands) == commands


@pytest.mark.parametrize(
    ("kind", "facts", "manual"),
    [
        pytest.param(
            "system",
            linux("sudo", systemd=False),
            "no systemd or service here: run `sudo dockerd > /var/log/dockerd.log 2>&1 &`",
            id="no-init-system-user",
        ),
        pytest.param(
            "system",
            linux(root=True, systemd=False),
            "no systemd or service here: run `dockerd > /var/log/dockerd.log 2>&1 &`",
            id="no-init-system-root",
        ),
        pytest.param(
            "system",
            linux("systemctl", "service", "sudo"),
            "run `sudo systemctl start docker` and read `journalctl -u docker`, or start "
            "it directly: `sudo dockerd > /var/log/dockerd.log 2>&1 &`",
            id="systemd",
        ),
        pytest.param("desktop", mac(), "start Docker Desktop: `open -a Docker`", id="mac"),
    ],
)
def test_start_plan_says_exactly_what_to_run(
    kind: core.Kind, facts: HostFacts, manual: str
) -> None:
    assert start_plan(kind, facts).manual == manual


def test_install_hint_per_system() -> None:
    assert "brew install --cask docker" in core.install_hint("Darwin")
    assert "apt-get install docker.io" in core.install_hint("Linux")


# -- resolve_host ---------------------------------------------------------------------------


def _context_store(tmp_path: Path, name: str, host: str) -> dict[str, str]:
    meta = tmp_path / "contexts" / "meta" / "abc"
    meta.mkdir(parents=True)
    data = {"Name": name, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(data), encoding="utf-8")
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_resolve_host_order(tmp_path: Path) -> None:
    env = _context_store(tmp_path, "far", "tcp://10.0.0.5:2376")
    assert core.resolve_host(EngineTarget(env=env), "Linux") == ("unix:///var/run/docker.sock", "")
    assert core.resolve_host(EngineTarget("far", env=env), "Linux") == (
        "tcp://10.0.0.5:2376",
        "far",
    )
    with_host = {**env, "DOCKER_HOST": "unix:///x.sock", "DOCKER_CONTEXT": "far"}
    assert core.resolve_host(EngineTarget(env=with_host), "Linux") == ("unix:///x.sock", "")
    assert core.resolve_host(EngineTarget("far", env=with_host), "Linux")[1] == "far"
    assert (
        core.resolve_host(EngineTarget(env={**env, "DOCKER_CONTEXT": "far"}), "Linux")[1] == "far"
    )
    (tmp_path / "config.json").write_text('{"currentContext": "far"}', encoding="utf-8")
    assert core.resolve_host(EngineTarget(env=env), "Linux") == ("tcp://10.0.0.5:2376", "far")
    assert core.resolve_host(EngineTarget(env={}), "Windows")[0] == core.WINDOWS_HOST


def test_resolve_host_unknown_context_is_a_config_error(tmp_path: Path) -> None:
    env = _context_store(tmp_path, "far", "tcp://10.0.0.5:2376")
    with pytest.raises(ConfigError, match="Docker context 'nope' does not exist"):
        core.resolve_host(EngineTarget("nope", env=env), "Linux")


# -- wait_for on a fake clock -----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def answers_after(n: int, value: str = "20.10") -> core.Probe:
    calls = iter(range(10_000))

    def probe() -> str | None:
        return value if next(calls) >= n else None

    return probe


def test_wait_for_returns_first_answer_and_time_waited() -> None:
    clock = FakeClock()
    ticks: list[float] = []
    result, waited = wait_for(answers_after(3), timeout=60, clock=clock, tick=ticks.append)
    assert (result, waited) == ("20.10", 3.0)
    assert ticks == [0.0, 1.0, 2.0]


def test_wait_for_gives_up_at_the_deadline_without_oversleeping() -> None:
    clock = FakeClock()
    result, waited = wait_for(lambda: None, timeout=2.5, clock=clock)
    assert (result, waited) == (None, 2.5)
    assert clock.sleeps == [1.0, 1.0, 0.5]


def test_wait_for_checks_once_with_zero_timeout() -> None:
    clock = FakeClock()
    assert wait_for(lambda: "x", timeout=0, clock=clock) == ("x", 0.0)
    assert wait_for(lambda: None, timeout=0, clock=clock) == (None, 0.0)
    assert clock.sleeps == []


class Recorder:
    """A Progress that records every call, and the view factory handing it out."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.titles: list[str] = []

    def view(self, title: str, keys: Sequence[str]) -> AbstractContextManager[Progress]:
        self.titles.append(title)
        return nullcontext(self)

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        self.calls.append(("start", key, text))

    def update(
        self,
        key: str,
        *,
        text: str | None = None,
        stage: str | None = None,
        done: int | None = None,
        total: int | None = None,
        line: str | None = None,
    ) -> None:
        self.calls.append(("update", key, stage or "", text or ""))

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        self.calls.append(("finish", key, str(status), text))


def test_plain_progress_of_a_wait_prints_a_line_every_few_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Output(plain=True).progress("engine", ["engine"]) as progress:
        result, waited = core._wait(
            progress, "engine", "it", answers_after(12), EnsureOptions(), FakeClock()
        )
    assert (result, waited) == ("20.10", 12.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "[engine] [wait] waiting for it (0s of 60s)",
        "[engine] [wait] waiting for it (5s of 60s)",
        "[engine] [wait] waiting for it (10s of 60s)",
    ]
    # the plain view's own clock is the real one: "done in 0.0s" on a quiet machine, "0.1s"
    # on a loaded one (a CI run once); the fake clock's 12 s is what the line reports
    assert re.fullmatch(r"\[engine\] done in \d+\.\ds: after 12s", lines[3]), lines
    assert len(lines) == 4


def test_terminal_progress_of_a_wait_is_a_live_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from rich.console import Console

    # A terminal, whatever the caller's TERM: rich draws no status on TERM=dumb (where Output
    # would have chosen plain mode anyway).
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Output(plain=False)
    buf = StringIO()
    out._out = Console(file=buf, force_terminal=True, width=100)
    with out.progress("the engine", ["engine"]) as progress:
        progress.start("engine", text="does not answer")
        core._wait(progress, "engine", "it", answers_after(3), EnsureOptions(), FakeClock())
    assert "the engine" in buf.getvalue() and "done" in buf.getvalue()


# -- the flow with fakes ----------------------------------------------------------------------


class FakeRunner:
    def __init__(self, codes: dict[tuple[str, ...], int] | None = None) -> None:
        self.codes = codes or {}
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(tuple(argv))
        code = self.codes.get(tuple(argv), 0)
        return code, "" if code == 0 else "Failed to start docker.service: Unit not found."


LOCAL = EngineTarget(env={"DOCKER_HOST": "unix:///var/run/docker.sock"})


def run_ensure(
    *,
    target: EngineTarget = LOCAL,
    facts: HostFacts = LINUX_ROOT,
    probe: core.Probe | None = None,
    created: core.CreatedProbe | None = None,
    runner: FakeRunner | None = None,
    clock: FakeClock | None = None,
    recorder: Recorder | None = None,
    **options: object,
) -> core.EnsureReport:
    return core.ensure(
        target,
        EnsureOptions(**options),  # type: ignore[arg-type]
        recorder.view if recorder is not None else Output(plain=True).progress,
        facts=facts,
        probe=probe or answers_after(0),
        created=created or list,
        run=runner or FakeRunner(),
        clock=clock or FakeClock(),
    )


def test_engine_already_answering_starts_nothing() -> None:
    runner = FakeRunner()
    report = run_ensure(runner=runner)
    assert report.was_running and report.version == "20.10"
    assert runner.calls == []
    assert (report.host, report.kind) == ("unix:///var/run/docker.sock", "system")


def test_missing_cli_says_how_to_install() -> None:
    facts = HostFacts("Darwin", frozenset({"open"}))
    with pytest.raises(EngineUnavailable, match=r"docker CLI is not installed.*brew install"):
        run_ensure(facts=facts)


def test_starts_waits_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    runner, clock, recorder = FakeRunner(), FakeClock(), Recorder()
    report = run_ensure(probe=answers_after(4), runner=runner, clock=clock, recorder=recorder)
    assert runner.calls == [("systemctl", "start", "docker")]
    assert report.started_with == ("systemctl", "start", "docker")
    assert (report.version, report.waited, report.was_running) == ("20.10", 3.0, False)
    assert recorder.titles == ["the Docker engine at unix:///var/run/docker.sock"]
    assert recorder.calls == [
        ("start", "engine", "does not answer"),
        ("update", "engine", "start", "starting it: systemctl start docker"),
        ("update", "engine", "wait", "waiting for it to answer (0s of 60s)"),
        ("finish", "engine", "done", "after 3s"),
    ]
    assert capsys.readouterr().out == ""  # the core prints nothing


def test_plain_output_of_a_start(capsys: pytest.CaptureFixture[str]) -> None:
    run_ensure(probe=answers_after(4))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "[engine] does not answer",
        "[engine] [start] starting it: systemctl start docker",
        "[engine] [wait] waiting for it to answer (0s of 60s)",
    ]
    assert re.fullmatch(r"\[engine\] done in \d+\.\ds: after 3s", lines[3]), lines  # real clock
    assert len(lines) == 4


def test_falls_back_to_service_when_systemctl_fails() -> None:
    runner = FakeRunner({("systemctl", "start", "docker"): 5})
    report = run_ensure(probe=answers_after(2), runner=runner)
    assert runner.calls == [("systemctl", "start", "docker"), ("service", "docker", "start")]
    assert report.started_with == ("service", "docker", "start")


def test_every_start_command_failing_says_exactly_what_to_run() -> None:
    runner = FakeRunner({("systemctl", "start", "docker"): 5, ("service", "docker", "start"): 1})
    with pytest.raises(EngineUnavailable) as err:
        run_ensure(probe=lambda: None, runner=runner)
    line = err.value.line()
    assert "`systemctl start docker` exited 5 (Failed to start docker.service" in line
    assert "`service docker start` exited 1" in line
    assert line.endswith("or start it directly: `dockerd > /var/log/dockerd.log 2>&1 &`")
    assert err.value.exit_code == 3


def test_no_way_to_start_here() -> None:
    with pytest.raises(EngineUnavailable, match=r"nothing here can start it.*run `sudo dockerd"):
        run_ensure(facts=linux("docker", "sudo", systemd=False), probe=lambda: None)


def test_timeout_after_start_names_the_command_and_what_next() -> None:
    clock = FakeClock()
    with pytest.raises(EngineUnavailable) as err:
        run_ensure(probe=lambda: None, clock=clock, timeout=10)
    assert err.value.line() == (
        "the Docker engine at unix:///var/run/docker.sock did not answer within 10s after "
        "`systemctl start docker`: read `journalctl -u docker` for why, or rerun with a longer "
        "--timeout"
    )
    assert clock.t - 1000.0 == 10.0


def test_no_start_only_checks() -> None:
    runner = FakeRunner()
    with pytest.raises(EngineUnavailable) as err:
        run_ensure(probe=lambda: None, runner=runner, start=False)
    assert runner.calls == []
    assert err.value.line() == (
        "cannot reach the Docker engine at unix:///var/run/docker.sock: --no-start only checks: "
        "start it with `inv docker.ensure` or `systemctl start docker`"
    )


@pytest.mark.parametrize("start", [True, False], ids=["start", "no-start"])
def test_remote_context_is_never_started(tmp_path: Path, start: bool) -> None:
    env = _context_store(tmp_path, "far", "tcp://10.0.0.5:2376")
    runner = FakeRunner()
    with pytest.raises(EngineUnavailable) as err:
        run_ensure(
            target=EngineTarget("far", env=env), probe=lambda: None, runner=runner, start=start
        )
    assert runner.calls == []
    line = err.value.line()
    assert line.startswith(
        "cannot reach the Docker engine at tcp://10.0.0.5:2376 (Docker context 'far'): it is "
        "not this machine's engine, so docker.ensure does not start it"
    )
    assert line.endswith("check it with `docker --context far info`")


def test_other_local_socket_from_docker_host_is_not_started() -> None:
    target = EngineTarget(env={"DOCKER_HOST": "unix:///tmp/d2-x/docker.sock"})
    with pytest.raises(EngineUnavailable, match="yourself; check DOCKER_HOST"):
        run_ensure(target=target, probe=lambda: None)


def test_dry_run_lists_the_commands_and_runs_none() -> None:
    runner = FakeRunner()
    report = run_ensure(
        facts=linux("docker", "systemctl", "service", "sudo"),
        probe=lambda: None,
        runner=runner,
        dry_run=True,
    )
    assert runner.calls == []
    assert report.would_run == (SUDO_SYSTEMCTL, SUDO_SERVICE)
    assert report.version is None


def test_waits_while_containers_are_created() -> None:
    states = iter([["web"], ["web"], ["web"], []])
    clock = FakeClock()
    report = run_ensure(created=lambda: next(states), clock=clock)
    assert (report.created_left, report.created_waited) == ([], 2.0)


def test_created_wait_gives_up_and_reports_the_names() -> None:
    clock = FakeClock()
    report = run_ensure(created=lambda: ["a", "b"], clock=clock, created_timeout=30)
    assert (report.created_left, report.created_waited) == (["a", "b"], 30.0)


def test_created_timeout_zero_does_not_wait() -> None:
    clock = FakeClock()
    report = run_ensure(created=lambda: ["a"], clock=clock, created_timeout=0)
    assert report.created_left == ["a"] and clock.sleeps == []


# -- the task's wiring ------------------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    seen: dict[str, object] = {}

    def fake(target: EngineTarget, options: EnsureOptions, view: object) -> core.EnsureReport:
        seen.update(target=target, options=options)
        if seen.get("raise"):
            raise seen["raise"]  # type: ignore[misc]
        return core.EnsureReport(
            host="unix:///var/run/docker.sock",
            context="",
            kind="system",
            version="27.0",
            was_running=True,
        )

    monkeypatch.setattr(core, "ensure", fake)
    yield seen


def test_task_passes_flags_and_prints_one_line(
    captured: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    docker_tasks.ensure(MockContext(), context="far", timeout=5, created_timeout=0, start=False)
    assert captured["target"] == EngineTarget(context="far")
    assert captured["options"] == EnsureOptions(start=False, timeout=5.0, created_timeout=0.0)
    assert "Docker engine 27.0 answers at unix:///var/run/docker.sock" in capsys.readouterr().out


def test_task_context_from_config(captured: dict[str, object]) -> None:
    config = Config(overrides={"meeshy": {"docker_context": "from-config"}})
    docker_tasks.ensure(Context(config=config))
    assert captured["target"] == EngineTarget(context="from-config")


def test_task_maps_errors_to_one_line_and_exit_code(
    captured: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    captured["raise"] = EngineUnavailable("cannot reach X", hint="do Y")
    with pytest.raises(Exit) as ei:
        docker_tasks.ensure(MockContext())
    assert ei.value.code == 3
    assert capsys.readouterr().err.strip().splitlines() == ["ERROR: cannot reach X: do Y"]


def test_task_rejects_negative_timeouts(captured: dict[str, object]) -> None:
    with pytest.raises(Exit) as ei:
        docker_tasks.ensure(MockContext(), timeout=-1)
    assert ei.value.code == 2


def test_task_dry_run_renders_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    report = core.EnsureReport(
        host="unix:///var/run/docker.sock",
        context="",
        kind="system",
        would_run=(SUDO_SYSTEMCTL, SUDO_SERVICE),
    )
    docker_tasks.render(Output(plain=True), report, EnsureOptions(dry_run=True))
    out = capsys.readouterr().out.splitlines()
    assert out[1:3] == ["sudo systemctl start docker", "sudo service docker start"]
    assert "does not answer" in out[0]
