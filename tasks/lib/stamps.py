"""What lstat says of a build input, to tell later whether it changed: inode, mode, size,
nanosecond mtime and ctime (ctime moves on every write, chmod or rename into place, and user
space cannot set it). None: the path does not exist."""

from __future__ import annotations

import os
from pathlib import Path

FileStamp = tuple[int, ...] | None


def stamp_of(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_stamp(path: Path) -> FileStamp:
    try:
        return stamp_of(os.lstat(path))
    except FileNotFoundError:
        return None


def build_files(dockerfile: Path, context: Path) -> tuple[Path, ...]:
    """What every build reads besides its context entries: the Dockerfile and both places an
    ignore file may be (``<Dockerfile>.dockerignore`` wins over the context's)."""
    return (dockerfile, Path(f"{dockerfile}.dockerignore"), context / ".dockerignore")
