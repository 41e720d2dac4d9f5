"""The processes a task started (docker CLI, ssh): stopped together when a signal ends the
task, so nothing keeps running after it (a signal to the task process alone does not reach
them). psutil: a kept library for process trees on Linux and macOS."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

# Set once this process stops its children on purpose (a signal): a worker thread whose
# docker CLI dies then knows it was stopped, not failed. Who waits on children clears it.
stopping = threading.Event()


def stop_children(timeout: float = 5.0) -> list[int]:
    """Terminate the processes this one started (docker CLI, ssh) and reap them; what a
    signal to this process alone would otherwise leave running. Returns their pids."""
    stopping.set()
    try:
        import psutil
    except ImportError:  # pragma: no cover - a dependency; keep stopping safe without it
        return []
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    for p in kids:
        with suppress(psutil.Error):
            p.terminate()
    if timeout <= 0:  # from a signal handler: do not wait here
        return [p.pid for p in kids]
    _, alive = psutil.wait_procs(kids, timeout=timeout)
    for p in alive:
        with suppress(psutil.Error):
            p.kill()
    return [p.pid for p in kids]


def stop_processes(procs: Sequence[subprocess.Popen[Any]], timeout: float = 5.0) -> None:
    """Stop these processes this one started (an SSH link's ssh): SIGTERM to every one at
    once (one waiting on another, a session on its master, is freed when that one goes),
    then wait for each and reap it; SIGKILL what has not ended within ``timeout``."""
    for p in procs:
        if p.poll() is None:
            with suppress(ProcessLookupError):
                p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=timeout)
