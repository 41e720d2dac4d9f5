"""Stopping the processes a task started: SIGTERM to all at once, reaped, SIGKILL after the
timeout for one that ignores SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import time

from tasks.lib.processes import stop_processes

IGNORES_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)


def test_stop_processes_terminates_reaps_and_kills_the_stubborn() -> None:
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    stubborn = subprocess.Popen([sys.executable, "-c", IGNORES_TERM], stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == b"ready"
        started = time.monotonic()
        stop_processes([stubborn, polite], timeout=1.0)
        took = time.monotonic() - started
        assert polite.returncode == -15  # SIGTERM, reaped
        assert stubborn.returncode == -9  # SIGKILL once the timeout passed
        assert took < 5, "the polite one waited behind the stubborn one's whole timeout"
    finally:
        for p in (polite, stubborn):
            if p.poll() is None:
                p.kill()
                p.wait()
        if stubborn.stdout is not None:
            stubborn.stdout.close()


def test_stop_processes_leaves_ended_ones_alone() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stop_processes([done])
    assert done.returncode == 0
