"""One change at a time to a thing on an engine: a run holds a lock (``flock`` on a file in
the user's state folder, one per engine and thing) for as long as it changes it; a second
run is refused at once, naming the first. The kernel frees the lock of a killed run, so a
SIGKILL never leaves it taken. Runs on other machines are not seen (the lock is this
machine's): what an engine holds has no lock a task could take.

Used by ``stack.up``/``down``/``pull`` (a compose project: :mod:`tasks.lib.stack.lock`) and
``staging.tag`` (a registry's staging tags)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping

from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError
from tasks.lib.images.journal import state_dir, state_refusal


def lock_path(kind: str, target: EngineTarget, thing: str, env: Mapping[str, str]) -> str:
    key = hashlib.sha256(f"{target.identity}\0{thing}".encode()).hexdigest()[:16]
    return str(state_dir(env) / f"{kind}-{key}.lock")


@contextlib.contextmanager
def holding(path: str, task: str, *, what: str, refused: str, hint: str) -> Iterator[None]:
    """Hold the lock at ``path`` while the block runs; when another run holds it,
    ConfigError (nothing done): ``refused, nothing done: <holder> <refused>``. ``what``
    names the lock in a state-folder error."""
    import fcntl

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise state_refusal(exc, "create", path, what) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another run"
            raise ConfigError(f"refused, nothing done: {holder} {refused}", hint=hint) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{task} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing frees the lock
