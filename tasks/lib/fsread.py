"""Reading a user's files without hanging on them: a FIFO opened for reading blocks until a
writer comes (forever, in a checkout), and a unix socket cannot be opened at all. Every file
the tasks read from a checkout (Dockerfiles, ignore files, the schema, VERSION files, compose
files) goes through :func:`read_bytes`, which refuses anything but a regular file (or a
symlink to one): a folder with ``IsADirectoryError``, as ``open`` would, anything else with
:class:`NotAFile`, an ``OSError`` whose ``strerror`` says what it is.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def kind_of(mode: int) -> str:
    """``a directory``, ``a socket``, …: what a ``st_mode`` that is not a regular file is."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


class NotAFile(OSError):
    """The path exists but is a FIFO, socket or device: nothing was read from it."""

    def __init__(self, path: Path | str, mode: int) -> None:
        super().__init__(errno.EINVAL, f"{kind_of(mode)}, not a regular file", str(path))


def _refuse(path: Path | str, mode: int) -> OSError:
    if stat.S_ISDIR(mode):  # as open() says it, so callers keep their IsADirectoryError
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    return NotAFile(path, mode)


def open_file(path: Path | str) -> BinaryIO:
    """The regular file at ``path`` open for reading (a symlink is followed); :class:`NotAFile`
    for a FIFO, socket, device or directory, without blocking on it."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode)
    # O_NONBLOCK: if a FIFO took the file's place since the stat, open does not wait for it
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    fh = open(fd, "rb", closefd=True)  # noqa: SIM115 (the caller closes it)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        fh.close()
        raise _refuse(path, mode)
    os.set_blocking(fd, True)
    return fh


def read_bytes(path: Path | str) -> bytes:
    """The bytes of the regular file at ``path``: :func:`open_file`, read whole."""
    with open_file(path) as fh:
        return fh.read()


def read_text(path: Path | str, encoding: str = "utf-8") -> str:
    """:func:`read_bytes`, decoded (``UnicodeDecodeError`` as ``Path.read_text`` raises it)."""
    return read_bytes(path).decode(encoding)
