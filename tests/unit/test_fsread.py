"""tasks.lib.fsread: a checkout's FIFO, socket or device is refused at once, never read
(a FIFO would block the task forever); regular files and symlinks to them read as usual."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from tasks.lib import fsread
from tasks.lib.engine import _is_connection_error
from tasks.lib.errors import OutputClosed


def test_regular_files_and_symlinks_to_them_are_read(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x\xff")
    (tmp_path / "l").symlink_to("f")
    assert fsread.read_bytes(tmp_path / "f") == b"x\xff"
    assert fsread.read_bytes(tmp_path / "l") == b"x\xff"
    with fsread.open_file(tmp_path / "l") as fh:
        assert fh.read(1) == b"x"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    signal.alarm(10)  # a blocking open would hang here: fail the test instead
    os.mkfifo(tmp_path / "p")
    (tmp_path / "to-p").symlink_to("p")
    for name in ("p", "to-p"):
        with pytest.raises(fsread.NotAFile) as info:
            fsread.read_text(tmp_path / name)
        assert info.value.strerror == "a named pipe (FIFO), not a regular file"
        assert info.value.filename == str(tmp_path / name)
    signal.alarm(0)


def test_sockets_devices_and_folders_are_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
    with pytest.raises(fsread.NotAFile, match="a socket, not a regular file"):
        fsread.read_bytes(tmp_path / "s")
    with pytest.raises(fsread.NotAFile, match="a character device, not a regular file"):
        fsread.read_bytes("/dev/null")
    with pytest.raises(IsADirectoryError):  # as open() says it: callers keep their branch
        fsread.read_bytes(tmp_path)
    with pytest.raises(FileNotFoundError):
        fsread.read_bytes(tmp_path / "nothing")


def test_a_local_file_error_is_never_the_engine_going_away(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        try:
            open(tmp_path / "s", "rb")  # noqa: SIM115 (it raises)
        except OSError as exc:
            assert exc.filename is not None
            assert not _is_connection_error(exc)
    # what a dropped or missing engine socket raises names no file
    with socket.socket(socket.AF_UNIX) as sock, pytest.raises(OSError) as info:
        sock.connect(str(tmp_path / "no-engine.sock"))
    assert _is_connection_error(info.value)
    assert _is_connection_error(BrokenPipeError(32, "Broken pipe"))
    assert not _is_connection_error(OutputClosed())
