"""Core of ``docker.ensure`` (the Makefile's ``_ensure-docker-running``); never imports Invoke.

1. the ``docker`` CLI is installed (else: how to install it);
2. the engine answers (else: start it, when it is this machine's engine and ``start`` is on);
3. wait until it answers (up to ``timeout``), then while containers are still ``created``
   (up to ``created_timeout``).

The decisions are pure functions, unit-tested without an engine: :func:`engine_kind` (whose
engine is this host?) and :func:`start_plan` (which commands would start it here?). The loop
:func:`wait_for` takes a check callable and a :class:`Clock`, so tests need no sleeping.

An engine on another machine (``ssh://``, ``tcp://``) is checked, never started; over SSH the
check goes through the task's SSH link (:mod:`tasks.lib.ssh`), and when the link fails the
error is ssh's own reason. Nothing here prints: waiting is reported through the one Progress
protocol (the task passes ``out.progress``) and the result is an :class:`EnsureReport`.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from tasks.lib.engine import EngineTarget, context_host
from tasks.lib.errors import EngineUnavailable
from tasks.lib.progress import NullProgress, Progress, Status

T = TypeVar("T")

Kind = Literal["system", "rootless", "desktop", "other", "remote"]
Argv = tuple[str, ...]
Probe = Callable[[], str | None]
"""The server version when the engine answers, else None (never raises for "down")."""
CreatedProbe = Callable[[], list[str]]
"""Names of the containers in state ``created``."""
Runner = Callable[[Sequence[str]], tuple[int, str]]
"""Runs one start command: (exit code, last line of its output)."""
ProgressView = Callable[[str, Sequence[str]], AbstractContextManager[Progress]]
"""Opens the progress view of a wait (``Output.progress``): ``view(title, keys)``."""

ENGINE_KEY = "engine"
CREATED_KEY = "created containers"
NOT_STARTED_HERE = "docker.ensure does not start an engine on another machine"

DEFAULT_HOST = "unix:///var/run/docker.sock"
WINDOWS_HOST = "npipe:////./pipe/docker_engine"
START_TOOLS = ("docker", "systemctl", "service", "sudo", "open")
DIRECT_START = "sudo dockerd > /var/log/dockerd.log 2>&1 &"


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: monotonic time and real sleeping."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class HostFacts:
    """What this machine offers to start an engine; :meth:`detect` reads the real one."""

    system: str  # platform.system(): Linux, Darwin, Windows
    commands: frozenset[str] = frozenset()  # which of START_TOOLS are on PATH
    is_root: bool = False
    systemd: bool = False  # systemd is PID 1 (/run/systemd/system exists)
    home: str = ""
    uid: int = -1

    @classmethod
    def detect(cls) -> HostFacts:
        import platform
        import shutil

        geteuid = getattr(os, "geteuid", None)
        uid = geteuid() if geteuid else -1
        return cls(
            system=platform.system(),
            commands=frozenset(c for c in START_TOOLS if shutil.which(c)),
            is_root=uid == 0,
            systemd=Path("/run/systemd/system").is_dir(),
            home=str(Path.home()),
            uid=uid,
        )


@dataclass(frozen=True)
class StartPlan:
    """Commands tried in order until one exits 0, and what to tell a human when none works."""

    commands: tuple[Argv, ...]
    manual: str


@dataclass(frozen=True)
class EnsureOptions:
    start: bool = True
    dry_run: bool = False
    timeout: float = 60.0
    created_timeout: float = 30.0
    interval: float = 1.0  # seconds between probes


@dataclass
class EnsureReport:
    """What ``ensure`` found and did; the task renders it (text or JSON)."""

    host: str  # the endpoint tried
    context: str  # the Docker context name, "" for DOCKER_HOST / the default
    kind: Kind
    version: str | None = None  # server version once it answers
    was_running: bool = False
    started_with: Argv | None = None
    would_run: tuple[Argv, ...] = ()  # dry run: the start commands, in order
    waited: float = 0.0  # seconds waited for the engine
    created_waited: float = 0.0
    created_left: list[str] = field(default_factory=list)  # still `created` after the wait
    ssh: tuple[str, ...] = ()  # the ssh command of the link, for an ssh:// engine

    @property
    def where(self) -> str:
        return f"{self.host} (Docker context {self.context!r})" if self.context else self.host

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "context": self.context or None,
            "kind": self.kind,
            "answers": self.version is not None,
            "version": self.version,
            "was_running": self.was_running,
            "started_with": list(self.started_with) if self.started_with else None,
            "would_run": [list(a) for a in self.would_run],
            "waited_s": round(self.waited, 1),
            "created_waited_s": round(self.created_waited, 1),
            "created_left": self.created_left,
            "ssh": list(self.ssh) or None,
        }


# -- pure decisions ---------------------------------------------------------------------------


def engine_kind(host: str, facts: HostFacts) -> Kind:
    """Whose engine ``host`` is: this machine's system engine (systemd/service/Docker Desktop
    can start it), a rootless or Docker Desktop one, another local socket, or a remote one."""
    if host.startswith("npipe://"):
        return "desktop"
    if not host.startswith("unix://"):
        return "remote"  # tcp://, ssh://, http(s)://: never started from here
    path = host[len("unix://") :]
    if path in ("/var/run/docker.sock", "/run/docker.sock"):
        return "desktop" if facts.system == "Darwin" else "system"
    if facts.uid >= 0 and path in (
        f"/run/user/{facts.uid}/docker.sock",
        f"/var/run/user/{facts.uid}/docker.sock",
    ):
        return "rootless"
    if facts.home and path in (
        f"{facts.home}/.docker/run/docker.sock",
        f"{facts.home}/.docker/desktop/docker.sock",
    ):
        return "desktop"
    return "other"


def start_plan(kind: Kind, facts: HostFacts) -> StartPlan:
    """The commands that start the engine of ``kind`` on this host, in the order to try them
    (macOS ``open -a Docker``; Linux ``systemctl start docker``, then ``service docker start``),
    and the exact thing to run by hand when none exists or works."""
    have = facts.commands.__contains__
    if kind == "remote":
        return StartPlan((), "start it on that machine, or point --context/DOCKER_HOST elsewhere")
    if kind == "other":
        return StartPlan((), "start the dockerd that listens on that socket yourself")
    if facts.system == "Darwin":
        cmds: tuple[Argv, ...] = (("open", "-a", "Docker"),) if have("open") else ()
        return StartPlan(cmds, "start Docker Desktop: `open -a Docker`")
    if facts.system == "Windows":
        return StartPlan((), "start Docker Desktop from the Start menu")
    user_systemctl = have("systemctl") and facts.systemd
    if kind == "desktop":
        argv: Argv = ("systemctl", "--user", "start", "docker-desktop")
        return StartPlan(
            (argv,) if user_systemctl else (), f"start Docker Desktop, or run `{shlex.join(argv)}`"
        )
    if kind == "rootless":
        argv = ("systemctl", "--user", "start", "docker")
        return StartPlan(
            (argv,) if user_systemctl else (),
            f"run `{shlex.join(argv)}` (or `dockerd-rootless.sh &`)",
        )
    sudo: Argv = () if facts.is_root or not have("sudo") else ("sudo",)
    found: list[Argv] = []
    if have("systemctl") and facts.systemd:
        found.append((*sudo, "systemctl", "start", "docker"))
    if have("service"):
        found.append((*sudo, "service", "docker", "start"))
    direct = DIRECT_START if not facts.is_root else DIRECT_START.removeprefix("sudo ")
    if not found:
        return StartPlan((), f"no systemd or service here: run `{direct}`")
    first = shlex.join(found[0])
    logs = " and read `journalctl -u docker`" if facts.systemd else ""
    return StartPlan(tuple(found), f"run `{first}`{logs}, or start it directly: `{direct}`")


def install_hint(system: str) -> str:
    if system == "Darwin":
        return (
            "install Docker Desktop (`brew install --cask docker`, or "
            "https://docs.docker.com/desktop/setup/install/mac-install/), then open it once"
        )
    if system == "Windows":
        return (
            "install Docker Desktop: https://docs.docker.com/desktop/setup/install/windows-install/"
        )
    return (
        "install Docker Engine with buildx and compose: "
        "https://docs.docker.com/engine/install/ (Debian/Ubuntu: `sudo apt-get install "
        "docker.io`; this project's CI: `sudo bash .ci/install-engine.sh`)"
    )


def resolve_host(target: EngineTarget, system: str) -> tuple[str, str]:
    """(endpoint, context name) the way the CLI and the SDK pick it: ``--context``, else
    ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the current context. ConfigError for a
    context that does not exist."""
    ctx = target.effective_context  # already falls back to config.json's current context
    if ctx and ctx != "default":
        return context_host(ctx, target.env), ctx
    default = WINDOWS_HOST if system == "Windows" else DEFAULT_HOST
    return target.env.get("DOCKER_HOST") or default, ""


# -- waiting ----------------------------------------------------------------------------------


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    clock: Clock,
    interval: float = 1.0,
    tick: Callable[[float], None] = lambda _elapsed: None,
) -> tuple[T | None, float]:
    """Call ``check`` until it returns something other than None or ``timeout`` seconds pass.

    Returns (the result or None, seconds waited). ``check`` runs at least once; ``tick`` gets
    the elapsed time before each sleep (the spinner)."""
    start = clock.now()
    deadline = start + max(timeout, 0.0)
    while True:
        result = check()
        now = clock.now()
        if result is not None:
            return result, now - start
        if now >= deadline:
            return None, now - start
        tick(now - start)
        clock.sleep(min(interval, deadline - now))


# -- the real probes ----------------------------------------------------------------------------


def engine_probe(target: EngineTarget, host: str) -> Probe:
    """Probe with :func:`tasks.lib.engine.ping` (the same check every task does).

    A unix socket that refuses connections is "down" without asking the docker SDK: the SDK
    leaks the socket when ``connect`` fails (``docker/transport/unixconn.py``), one per probe.
    Over SSH the failure is raised, not "down": it carries ssh's reason (unknown host key,
    refused, timed out, ...) or says that nothing answers behind the link."""
    from tasks.lib.engine import ping

    def probe() -> str | None:
        if host.startswith("unix://") and not unix_socket_accepts(host[len("unix://") :]):
            return None
        try:
            return str(ping(target).get("Version") or "?")
        except EngineUnavailable:
            if host.startswith("ssh://"):
                raise
            return None

    return probe


def unix_socket_accepts(path: str, timeout: float = 5.0) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def created_probe(target: EngineTarget) -> CreatedProbe:
    """Names of containers in state ``created`` (docker SDK)."""
    from tasks.lib.engine import connect

    def probe() -> list[str]:
        with connect(target, timeout=10) as client:
            # one list call: containers.list() inspects each one afterwards, and fails when
            # another client removes one in between
            found = client.api.containers(all=True, filters={"status": "created"})
            return sorted(str((c.get("Names") or ["?"])[0]).lstrip("/") for c in found)

    return probe


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run a start command (a list, no shell); stdin stays attached so sudo can ask."""
    import subprocess

    try:
        proc = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=180,
            check=False,
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, "timed out after 180 s"
    lines = [ln.strip() for ln in (proc.stdout or "").splitlines() if ln.strip()]
    return proc.returncode, lines[-1] if lines else ""


# -- the flow ---------------------------------------------------------------------------------


def _no_view(_title: str, _keys: Sequence[str]) -> AbstractContextManager[Progress]:
    return NullProgress()


def ensure(
    target: EngineTarget,
    options: EnsureOptions,
    view: ProgressView = _no_view,
    *,
    facts: HostFacts | None = None,
    probe: Probe | None = None,
    created: CreatedProbe | None = None,
    run: Runner = run_command,
    clock: Clock | None = None,
) -> EnsureReport:
    """Make sure the engine of ``target`` answers; start it when allowed and local.

    Raises EngineUnavailable (CLI missing, engine down and not startable, start failed,
    timeout, the SSH link failed) or ConfigError (unknown context), each with the fix in its
    hint. ``view`` opens the progress view of a wait (``out.progress``)."""
    facts = facts or HostFacts.detect()
    clock = clock or SystemClock()
    if "docker" not in facts.commands:
        raise EngineUnavailable("the docker CLI is not installed", hint=install_hint(facts.system))
    host, ctx = resolve_host(target, facts.system)
    kind = engine_kind(host, facts)
    report = EnsureReport(host=host, context=ctx, kind=kind)
    probe = probe or engine_probe(target, host)

    report.version = _first_probe(probe, kind)
    if host.startswith("ssh://"):
        from tasks.lib.engine import link_argv

        report.ssh = tuple(link_argv(target))
    if report.version is not None:
        report.was_running = True
    else:
        plan = start_plan(kind, facts)
        _refuse_to_start(report, plan, options)
        if options.dry_run:
            report.would_run = plan.commands
            return report
        with view(f"the Docker engine at {report.where}", [ENGINE_KEY]) as progress:
            progress.start(ENGINE_KEY, text="does not answer")
            report.started_with = _start(plan, run, progress)
            report.version, report.waited = _wait(
                progress, ENGINE_KEY, "it to answer", probe, options, clock
            )
        if report.version is None:
            raise EngineUnavailable(
                f"the Docker engine at {report.where} did not answer within "
                f"{options.timeout:g}s after `{shlex.join(report.started_with)}`",
                hint=_slow_hint(kind, facts),
            )

    created = created or created_probe(target)
    if options.dry_run:
        report.created_left = created()
        return report

    def none_created() -> bool | None:
        report.created_left = created()
        return True if not report.created_left else None

    if none_created() is None and options.created_timeout > 0:
        title = f"{len(report.created_left)} container(s) in state `created`"
        with view(title, [CREATED_KEY]) as progress:
            progress.start(CREATED_KEY, text=", ".join(report.created_left))
            waits = EnsureOptions(timeout=options.created_timeout, interval=options.interval)
            _, report.created_waited = _wait(
                progress, CREATED_KEY, "them to start", none_created, waits, clock
            )
    return report


def _first_probe(probe: Probe, kind: Kind) -> str | None:
    """The first check. For an engine on another machine a failure of the link itself (ssh's
    reason) is the answer: it is never started from here."""
    try:
        return probe()
    except EngineUnavailable as exc:
        if kind != "remote":
            raise
        hint = exc.hint or "check the link to that machine"
        if "docker.ensure" not in hint:
            hint = f"{hint}; {NOT_STARTED_HERE}"
        raise EngineUnavailable(exc.message, hint=hint) from exc


def _wait(
    progress: Progress,
    key: str,
    what: str,
    check: Callable[[], T | None],
    options: EnsureOptions,
    clock: Clock,
    *,
    every: float = 5.0,
) -> tuple[T | None, float]:
    """:func:`wait_for` reported on ``progress``: a step every ``every`` seconds, then done
    or failed."""
    last = [-every]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= every:
            last[0] = elapsed
            progress.update(
                key,
                stage="wait",
                text=f"waiting for {what} ({elapsed:.0f}s of {options.timeout:g}s)",
            )

    result, waited = wait_for(
        check, timeout=options.timeout, clock=clock, interval=options.interval, tick=tick
    )
    if result is None:
        progress.finish(key, Status.FAILED, text=f"no change after {waited:.0f}s")
    else:
        progress.finish(key, Status.DONE, text=f"after {waited:.0f}s")
    return result, waited


def _refuse_to_start(report: EnsureReport, plan: StartPlan, options: EnsureOptions) -> None:
    """Raise when the engine is down and will not be started (not ours, --no-start, no way)."""
    down = f"cannot reach the Docker engine at {report.where}"
    if report.kind in ("remote", "other"):
        where = (
            f"check it with `docker --context {report.context} info`"
            if report.context
            else "check DOCKER_HOST"
        )
        raise EngineUnavailable(
            down,
            hint=f"it is not this machine's engine, so docker.ensure does not start it: "
            f"{plan.manual}; {where}",
        )
    if not options.start:
        how = f"`{shlex.join(plan.commands[0])}`" if plan.commands else plan.manual
        raise EngineUnavailable(
            down, hint=f"--no-start only checks: start it with `inv docker.ensure` or {how}"
        )
    if not plan.commands:
        raise EngineUnavailable(f"{down}, and nothing here can start it", hint=plan.manual)


def _start(plan: StartPlan, run: Runner, progress: Progress) -> Argv:
    """Run the start commands in order until one exits 0; that one is returned."""
    failures: list[str] = []
    for argv in plan.commands:
        progress.update(ENGINE_KEY, stage="start", text=f"starting it: {shlex.join(argv)}")
        code, last = run(argv)
        if code == 0:
            return argv
        failures.append(f"`{shlex.join(argv)}` exited {code}" + (f" ({last})" if last else ""))
    progress.finish(ENGINE_KEY, Status.FAILED, text="could not start it")
    raise EngineUnavailable(
        "could not start the Docker engine: " + "; ".join(failures), hint=plan.manual
    )


def _slow_hint(kind: Kind, facts: HostFacts) -> str:
    if facts.system == "Darwin" or kind == "desktop":
        return (
            "Docker Desktop may still be starting or waiting for you (terms, update): look "
            "at its window, then rerun with a longer --timeout"
        )
    if facts.systemd:
        return "read `journalctl -u docker` for why, or rerun with a longer --timeout"
    return "read the engine's log (/var/log/docker.log), or rerun with a longer --timeout"
