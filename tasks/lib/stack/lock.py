"""One change to a stack at a time: ``stack.up``, ``stack.down`` and ``stack.pull`` of a
project on an engine hold a lock (:mod:`tasks.lib.locks`, one per engine and project) for as
long as they change it. Two ``stack.up`` at once made compose create the project's network
twice; every later ``up`` then failed with "network ... is ambiguous" until a ``down``. A
second run is refused at once, naming the one that holds the lock."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from tasks.lib import locks
from tasks.lib.engine import EngineTarget


def lock_path(target: EngineTarget, project: str, env: Mapping[str, str]) -> str:
    return locks.lock_path("stack", target, project, env)


@contextlib.contextmanager
def changing(
    target: EngineTarget, project: str, task: str, env: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Hold the project's lock while the block changes it; ConfigError (nothing done) when
    another run holds it."""
    path = lock_path(target, project, os.environ if env is None else env)
    with locks.holding(
        path,
        task,
        what="the lock of stack changes",
        refused=f"is changing {project} on this engine",
        hint="wait for it to end (two at once break the project: compose would create its "
        "network twice), or stop it",
    ):
        yield
