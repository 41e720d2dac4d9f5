"""Writing the staging file: atomic, the mode kept (or 0666 & ~umask), nothing half-written."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.lib.compose.files import diff, new_file_mode, read_existing, write_atomic
from tasks.lib.errors import ConfigError, TaskError


@pytest.fixture
def umask_027() -> Iterator[int]:
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_0666_minus_umask(tmp_path: Path, umask_027: int) -> None:
    target = tmp_path / "docker-compose.staging.yml"
    assert write_atomic(target, "a: 1\n") == 0o640
    assert _mode(target) == 0o640 == new_file_mode()
    assert target.read_text() == "a: 1\n"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o664])
def test_existing_mode_is_kept(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "docker-compose.staging.yml"
    target.write_text("old\n")
    target.chmod(mode)
    assert write_atomic(target, "new\n") == mode
    assert _mode(target) == mode
    assert target.read_text() == "new\n"


def test_no_temporary_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "s.yml"
    write_atomic(target, "x\n")
    write_atomic(target, "y\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yml"]


def test_failure_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TaskError) as info:
        write_atomic(tmp_path / "missing" / "s.yml", "x\n")
    assert info.value.exit_code == 1
    assert info.value.message.startswith(f"cannot write {tmp_path}/missing/s.yml: ")
    assert "nothing was written" in (info.value.hint or "")
    target = tmp_path / "dir.yml"
    target.mkdir()
    with pytest.raises(TaskError, match="cannot write"):
        write_atomic(target, "x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.yml"]


def test_read_existing(tmp_path: Path) -> None:
    target = tmp_path / "s.yml"
    assert read_existing(target) is None
    target.write_bytes(b"a: \xff\n")
    assert read_existing(target) == "a: \ufffd\n"
    with pytest.raises(ConfigError, match="is a directory"):
        read_existing(tmp_path)


def test_diff_names_both_sides(tmp_path: Path) -> None:
    text = diff("a\n", "b\n", tmp_path / "s.yml")
    assert f"--- {tmp_path}/s.yml (current)" in text
    assert "-a\n+b\n" in text
    assert diff("a\n", "a\n", tmp_path / "s.yml") == ""


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """SIGKILL between creating the temporary file and the rename leaves it beside the staging
    file; the next write removes it when its writer (this host, that pid) is gone, and leaves
    a live writer's, another host's and unrelated files alone."""
    import socket
    import subprocess
    import sys
    import time

    target = tmp_path / "docker-compose.staging.yml"
    host = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".{target.name}.{host}.{gone.pid}.0a1b2c3d.tmp"
    live = tmp_path / f".{target.name}.{host}.{os.getpid()}.0a1b2c3d.tmp"
    other_host = tmp_path / f".{target.name}.elsewhere.{gone.pid}.0a1b2c3d.tmp"
    unrelated = tmp_path / f".{target.name}.{host}.notapid.tmp"
    recent = tmp_path / f".{target.name}.{host}.{gone.pid}.9f8e7d6c.tmp"
    old = time.time() - 3600
    for p in (dead, live, other_host, unrelated, recent):
        p.write_text("half")
        if p is not recent:
            os.utime(p, (old, old))
    write_atomic(target, "x\n")
    assert not dead.exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
    # a dead-looking writer's fresh file may be a live one in another pid namespace
    assert recent.exists()
    assert target.read_text() == "x\n"
