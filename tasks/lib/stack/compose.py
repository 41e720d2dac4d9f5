"""The compose CLI through python-on-whales, for one stack: a client per stack (file, project,
env file, profiles, and the engine of ``--context``), and the calls ``stack.*`` makes. Every
changing call takes a :class:`~tasks.lib.stack.plan.ComposeCall`, and :func:`argv` shows the
exact command the same client runs for it (what ``--dry-run`` prints)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from tasks.lib.engine import EngineTarget, translate
from tasks.lib.errors import CommandFailed, ConfigError, EngineUnavailable
from tasks.lib.stack.plan import ALL_PROFILES, ComposeCall, Stack

if TYPE_CHECKING:
    import python_on_whales

    from tasks.lib.stack.spec import ProjectSpec

# compose writes terminal control sequences (erase line) even with --no-color
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _options(stack: Stack, profiles: Sequence[str]) -> dict[str, Any]:
    """The stack's file, project, env file and ``profiles``, as the compose wrapper of
    :mod:`tasks.lib.compose.files` takes them."""
    return {
        "project": stack.project,
        "env_files": [stack.env_file] if stack.env_file else [],
        "profiles": list(profiles),
    }


def client(
    stack: Stack, target: EngineTarget, profiles: Sequence[str] = ()
) -> python_on_whales.DockerClient:
    """A python-on-whales client whose ``compose`` talks to this stack on ``target``: the
    engine flags of :func:`~tasks.lib.engine.whales_client` (``--context``, or ``--host`` of
    the task's SSH link) kept as they are, the stack's compose flags added."""
    from tasks.lib.compose.files import compose_client

    return compose_client([stack.file], target=target, **_options(stack, profiles))


def argv(stack: Stack, target: EngineTarget, call: ComposeCall) -> list[str]:
    """The exact argv python-on-whales runs for ``call`` (a unit test holds it to that).

    Over SSH the run's ``--host unix://<forward>`` is a socket that exists only while the task
    runs: a dry run shows the engine as a person would name it instead (``--context NAME``, or
    nothing when ``DOCKER_HOST`` names it), as the build's dry run does; it opens no link."""
    if target.is_ssh:
        from python_on_whales.client_config import ClientConfig

        from tasks.lib.compose.files import compose_settings

        options = compose_settings([stack.file], **_options(stack, call.profiles))
        prefix = ClientConfig(context=target.context or None, **options).docker_compose_cmd
        return [str(a) for a in prefix] + list(call.args)
    return run_argv(stack, target, call)


def run_argv(stack: Stack, target: EngineTarget, call: ComposeCall) -> list[str]:
    """The argv that runs ``call`` now: :func:`argv`, but over SSH through the run's link
    (``--host unix://<forward>``), as python-on-whales' client runs it."""
    prefix = client(stack, target, call.profiles).client_config.docker_compose_cmd
    return [str(a) for a in prefix] + list(call.args)


@contextmanager
def failures(stack: Stack, what: str, target: EngineTarget) -> Iterator[None]:
    """python-on-whales' DockerException -> CommandFailed naming the stack and the compose
    error's last line (EngineUnavailable when the engine went away)."""
    from python_on_whales.exceptions import DockerException

    try:
        yield
    except DockerException as exc:
        mapped = translate(exc, target)
        if isinstance(mapped, EngineUnavailable):
            raise mapped from exc
        text = str(exc.stderr or exc.stdout or "").strip()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        raise CommandFailed(
            f"`docker compose {what}` for {stack.project} failed: "
            + (lines[-1] if lines else f"exit {exc.return_code}"),
            # two networks of one name (two `up` at once, before the lock): only a down clears it
            hint=f"`inv stack.down --env {stack.name}` removes both, then rerun"
            if "is ambiguous" in text
            else None,
            argv=[str(a) for a in exc.docker_command or ()],
            return_code=exc.return_code,
            output=text,
        ) from None


def config(stack: Stack, target: EngineTarget, *, hint: str = "") -> dict[str, Any]:
    """``docker compose config --format json`` over every profile: the normalised project
    (interpolated with the stack's env file; needs no engine, but runs the CLI on the task's
    engine flags). The one wrapper, :func:`tasks.lib.compose.files.compose_config`: an unset
    ``${VAR:?}`` is a ConfigError naming the variable and where to set it; a file compose
    refuses (bad YAML, a service's missing ``env_file``, a ``depends_on`` cycle) is a
    ConfigError (exit 2, a bad file) naming the file and compose's reason, with ``hint``
    (default: fix it)."""
    from tasks.lib.compose.files import compose_config

    where = str(stack.env_file) if stack.env_file else str(stack.file.parent / ".env")
    try:
        return compose_config(
            [stack.file],
            what=f"the compose file of stack {stack.name} ({stack.file})",
            target=target,
            variables_hint=f"set it in the environment or in {where} (compose reads both)",
            **_options(stack, ALL_PROFILES),
        )
    except CommandFailed as exc:
        raise ConfigError(exc.message, hint=hint or "fix it") from None


def spec(stack: Stack, target: EngineTarget) -> ProjectSpec:
    """The stack's services, networks and volumes, from :func:`config`."""
    from tasks.lib.stack.spec import parse_config

    return parse_config(config(stack, target), stack.project)


def stream(stack: Stack, target: EngineTarget, call: ComposeCall) -> Iterator[str]:
    """Run down or pull through python-on-whales, yielding its output lines as they come;
    raises CommandFailed at the end when compose fails. (``up`` runs as a :class:`Running`,
    which the task can stop.)"""
    c = client(stack, target, call.profiles).compose
    with failures(stack, call.op, target):
        if call.op == "down":
            lines = c.down(remove_orphans=True, volumes="--volumes" in call.args, stream_logs=True)
        elif call.op == "pull":
            lines = c.pull(call.operands, stream_logs=True)
        else:  # pragma: no cover - a programming error
            raise ValueError(f"not a changing compose call: {call.op}")
        for _source, raw in lines:
            yield raw.decode("utf-8", "replace").rstrip("\n")


class Running:
    """``docker compose up`` as a process this task owns, in a process group of its own (the
    docker CLI and the compose plugin it runs): a task that gives up waiting, or is
    interrupted, stops it (:meth:`stop`) and waits for it, instead of leaving it to go on
    changing the stack behind it (and racing a rerun). python-on-whales runs the same argv
    (:func:`run_argv`, a unit test holds them equal) but gives no handle on its process.

    Started when constructed (in the caller's thread, so :meth:`stop` always has a process to
    stop); :meth:`lines` reads its output (stdout and stderr, in order) to the end."""

    def __init__(self, stack: Stack, target: EngineTarget, call: ComposeCall) -> None:
        self.stack, self.target, self.call = stack, target, call
        self.argv = run_argv(stack, target, call)
        self.stopped = False  # set by stop(): its end is ours, not a failure
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def lines(self) -> Iterator[str]:
        """Its output lines; CommandFailed (as python-on-whales' error would give) when it
        fails, nothing when :meth:`stop` ended it."""
        from python_on_whales.exceptions import DockerException
        from python_on_whales.utils import get_docker_exception_type

        assert self.proc.stdout is not None
        seen: list[bytes] = []
        with failures(self.stack, self.call.op, self.target):
            with self.proc.stdout as pipe:
                for raw in pipe:
                    seen.append(raw)
                    yield _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r\n")
            code = self.proc.wait()
            if code != 0 and not self.stopped:
                output = b"".join(seen)
                kind: type[DockerException] = get_docker_exception_type(output)
                raise kind(command_launched=self.argv, return_code=code, stderr=output)

    @property
    def done(self) -> bool:
        return self.proc.poll() is not None

    @property
    def completed(self) -> bool:
        """It ended by itself with exit 0: the stack is created (stopped or killed by a
        signal, it exits otherwise)."""
        return self.proc.poll() == 0 and not self.stopped

    def stop(self, timeout: float = 10.0) -> bool:
        """End it if it still runs: SIGTERM to its process group (compose stops where it is),
        SIGKILL to what is left after ``timeout``; returns once the whole group is gone.
        True when it was still running (it was stopped), False when it had ended."""
        if self.proc.poll() is not None:
            return False
        self.stopped = True
        pgid = self.proc.pid  # the leader of its own session, so of its group
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.proc.wait()
        # the plugin may outlive the CLI by a moment; a killed one is gone at once (bounded:
        # a zombie nobody reaps stays in the group)
        deadline = time.monotonic() + timeout
        while _group_alive(pgid) and time.monotonic() < deadline + 2:
            if time.monotonic() > deadline:
                _signal_group(pgid, signal.SIGKILL)
            time.sleep(0.05)
        return True


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - not ours any more
        return False
    return True


def logs(stack: Stack, target: EngineTarget, call: ComposeCall) -> Iterator[tuple[str, str]]:
    """``compose logs``: (stdout|stderr, line) as compose prints them."""
    c = client(stack, target, call.profiles).compose
    args = call.args[: len(call.args) - len(call.operands)]  # the flags: no service name
    tail = args[args.index("--tail") + 1] if "--tail" in args else None
    since = args[args.index("--since") + 1] if "--since" in args else None
    with failures(stack, "logs", target):
        for source, raw in c.logs(
            call.operands,
            tail=tail,
            follow="--follow" in args,
            no_log_prefix="--no-log-prefix" in args,
            since=since,
            stream=True,
        ):
            yield source, _ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\n"))


def last_lines(stack: Stack, target: EngineTarget, service: str, n: int = 20) -> list[str]:
    """A service's last ``n`` log lines (``compose logs --tail n SERVICE``); a failure to
    read them is one line in their place, never an error over the error being reported."""
    from tasks.lib.stack.plan import logs_call

    try:
        call = logs_call([service], tail=str(n), prefix=False)
        return [line for _, line in logs(stack, target, call)]
    except CommandFailed as exc:
        return [f"(could not read the logs: {exc.message})"]
