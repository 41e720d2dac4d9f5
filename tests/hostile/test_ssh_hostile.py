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
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert len([x for x in sshd.leftovers() if "ssh process" in x]) == 2
        r = inv(sshd, "volumes.size", "--context", ALIAS)
        assert r.code == 0, r
        assert sshd.wait_no_leftovers() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
