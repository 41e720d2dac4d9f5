"""Run the project's real CLI from tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


class InvResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self) -> str:
        return f"<inv exit={self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


def run_inv(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> InvResult:
    """Run the real CLI (``python -m invoke``) from the project root, plain output."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return InvResult(proc)


Call = Callable[..., tuple[int, str, str]]
"""``call(task_function, **flags) -> (exit code, stdout, stderr)``: the ``call`` fixture."""


def task_context() -> object:
    """An Invoke Context with the project's defaults, as ``inv`` would give a task."""
    from invoke import Config, Context

    from tasks.lib.config import defaults

    return Context(config=Config(overrides={"meeshy": defaults()}))


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``with reaped(Popen(...)) as proc:``: killed and reaped if the block ends first (a
    check failed), so no task outlives its test; with its children too (compose, ssh) when
    it leads a session of its own (``start_new_session=True``)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.communicate()
