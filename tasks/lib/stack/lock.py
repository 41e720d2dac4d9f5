"""One change to a stack at a time: ``stack.up``, ``stack.down`` and ``stack.pull`` of a
project on an engine hold a lock (``flock`` on a file in the user's state folder, one per
engine and project) for as long as they change it. Two ``stack.up`` at once made compose
create the project's network twice; every later ``up`` then failed with "network ... is
ambiguous" until a ``down``. A second run is refused at once, naming the one that holds the
lock; the kernel frees the lock of a killed run, so a SIGKILL never leaves it taken.

Runs on other machines are not seen (the lock is this machine's); the engine has no lock a
compose project could take."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping

from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError
from tasks.lib.images.journal import state_dir, state_refusal


def lock_path(target: EngineTarget, project: str, env: Mapping[str, str]) -> str:
    key = hashlib.sha256(f"{target.identity}\0{project}".encode()).hexdigest()[:16]
    return str(state_dir(env) / f"stack-{key}.lock")


@contextlib.contextmanager
def changing(
    target: EngineTarget, project: str, task: str, env: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Hold the project's lock while the block changes it; ConfigError (nothing done) when
    another run holds it."""
    import fcntl

    path = lock_path(target, project, os.environ if env is None else env)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise state_refusal(exc, "create", path, "the lock of stack changes") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another run"
            raise ConfigError(
                f"refused, nothing done: {holder} is changing {project} on this engine",
                hint="wait for it to end (two at once break the project: compose would "
                "create its network twice), or stop it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{task} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing frees the lock
