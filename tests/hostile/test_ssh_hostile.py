"""The SSH link when the task is killed outright: SIGKILL leaves the ssh forward running (no
code runs in a killed process); the next task run removes it, and works."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.integration.ssh.sshd import ALIAS, PROJECT, SILENT, Sshd, inv, sshd

__all__ = ["sshd"]  # the fixture, imported explicitly

pytestmark = [pytest.mark.engine]


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
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        orphans = sshd.leftovers()
        assert any("ssh process" in x for x in orphans), "SIGKILL should leave the forward"
        r = inv(sshd, "volumes.size", "--context", ALIAS)
        assert r.code == 0, r
        assert sshd.wait_no_leftovers() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
