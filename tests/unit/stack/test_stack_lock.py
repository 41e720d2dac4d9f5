"""One change to a stack at a time (stack.up, down, pull): a second run is refused at once,
naming the first; the kernel frees a killed run's lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError
from tasks.lib.stack.lock import changing, lock_path

ENGINE = EngineTarget(context="", env={"DOCKER_HOST": "unix:///var/run/docker.sock"})


def test_a_second_change_of_the_project_is_refused_naming_the_first(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    with changing(ENGINE, "meeshy-dev", "stack.up", env):
        with pytest.raises(ConfigError) as exc, changing(ENGINE, "meeshy-dev", "stack.down", env):
            pytest.fail("ran while another held the lock")
        assert exc.value.exit_code == 2
        assert exc.value.line() == (
            f"refused, nothing done: stack.up (pid {os.getpid()}) is changing meeshy-dev on "
            "this engine: wait for it to end (two at once break the project: compose would "
            "create its network twice), or stop it"
        )
        with changing(ENGINE, "meeshy-local", "stack.up", env):  # another project: fine
            pass
        other = EngineTarget(context="", env={"DOCKER_HOST": "tcp://10.0.0.1:2376"})
        with changing(other, "meeshy-dev", "stack.up", env):  # another engine: fine
            pass
    with changing(ENGINE, "meeshy-dev", "stack.down", env):  # free again
        pass


def test_a_relative_state_home_is_ignored_so_two_folders_share_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XDG_STATE_HOME=state (relative) named a lock folder per working directory: `inv
    stack.up` from the checkout and from its tasks/ folder ran at once. The XDG spec says to
    ignore a relative one: both use ~/.local/state."""
    env = {"XDG_STATE_HOME": "state", "HOME": str(tmp_path / "home")}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert lock_path(ENGINE, "meeshy-dev", env).startswith(f"{tmp_path}/home/.local/state/")
    with changing(ENGINE, "meeshy-dev", "stack.up", env):
        monkeypatch.chdir(tmp_path / "b")
        with pytest.raises(ConfigError), changing(ENGINE, "meeshy-dev", "stack.up", env):
            pytest.fail("ran while another held the lock")


def test_a_killed_run_leaves_the_lock_free(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    code = (
        "import sys, time; from tasks.lib.engine import EngineTarget; "
        "from tasks.lib.stack.lock import changing\n"
        f"with changing(EngineTarget(context=''), 'p', 'stack.up', {env!r}):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        held = rf"stack.up \(pid {child.pid}\) is changing p"
        with pytest.raises(ConfigError, match=held), changing(ENGINE, "p", "stack.up", env):
            pass
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        time.sleep(0.05)
        with changing(ENGINE, "p", "stack.up", env):  # the kernel freed it
            pass
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_an_unwritable_state_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {"XDG_STATE_HOME": str(blocker)}  # a file where a folder must be
    with pytest.raises(ConfigError) as exc, changing(ENGINE, "p", "stack.up", env):
        pytest.fail("ran without a lock")
    path = lock_path(ENGINE, "p", env)
    assert exc.value.line().startswith(f"cannot create {path} (the lock of stack changes): ")
    assert exc.value.line().endswith(
        "make that folder writable, or set XDG_STATE_HOME to a writable folder"
    )
