"""The SSH link when the task is killed outright (no code runs in a killed process): on Linux
with util-linux's setpriv the kernel ends the task's ssh processes with it (parent-death
signal); without, they run on. Either way the killed run's folder stays, and the next task
run removes what is left, and works."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.integration.ssh.sshd import ALIAS, PROJECT, SILENT, Sshd, inv, sshd

__all__ = ["sshd"]  # the fixture, imported explicitly

pytestmark = [pytest.mark.engine]


def _after_sigkill(sshd: Sshd, *, processes: int) -> None:
    """Right after the task was SIGKILLed: its folder is left; its ssh processes end with it
    where setpriv ties them to the task, else ``processes`` of them run on."""
    left = sshd.leftovers()
    assert any("left behind" in x for x in left), left
    ssh = [x for x in left if "ssh process" in x]
    if shutil.which("setpriv") and sys.platform.startswith("linux"):
        deadline = time.monotonic() + 10
        while ssh and time.monotonic() < deadline:
            time.sleep(0.05)
            ssh = [x for x in sshd.leftovers() if "ssh process" in x]
        assert ssh == [], "the task's ssh outlived its SIGKILL"
    else:
        assert len(ssh) == processes, left


def _kill_then_rerun(sshd: Sshd, proc: subprocess.Popen[Any], *, processes: int) -> None:
    """SIGKILL the run, check what it left (:func:`_after_sigkill`), then the next SSH task
    works and nothing is left after it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    _after_sigkill(sshd, processes=processes)
    r = inv(sshd, "volumes.size", "--context", ALIAS)
    assert r.code == 0, r
    assert sshd.wait_no_leftovers() == []


def test_sigkill_then_rerun_removes_the_orphaned_forward(sshd: Sshd) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "images.list", "--context", SILENT],
        cwd=PROJECT,
        env=sshd.env(INVOKE_MEESHY_SSH_CONNECT_TIMEOUT="60"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not sshd.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        _kill_then_rerun(sshd, proc, processes=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigkill_with_the_link_up_then_rerun_removes_forward_and_session(sshd: Sshd) -> None:
    """A run killed while its link is up leaves two ssh processes (the forward and its pty
    session) and the temp dir; the next run stops both and removes the dir."""
    code = (
        "import sys, time\n"
        "from tasks.lib.config import SshOptions\n"
        "from tasks.lib.ssh import Forward\n"
        f"fw = Forward('ssh://{ALIAS}', SshOptions(config=sys.argv[1])).open()\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sshd.ssh_config)],
        cwd=PROJECT,
        env={**sshd.env(), "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        deadline = time.monotonic() + 10
        while len([x for x in sshd.leftovers() if "ssh process" in x]) < 2:
            assert time.monotonic() < deadline, sshd.leftovers()
            time.sleep(0.05)
        _kill_then_rerun(sshd, proc, processes=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
