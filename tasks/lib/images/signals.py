"""Undo work that a second Ctrl-C must not cut short."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def held_signals() -> Iterator[list[int]]:
    """While the block runs (a rollback, putting temporary tags back), SIGINT, SIGTERM and
    SIGHUP are recorded instead of raised; yields the list of those that arrived. The caller
    is already stopping: it reports them in its own error. Outside the main thread (where
    handlers cannot be set) the block runs unshielded."""
    arrived: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        arrived.append(signum)

    try:
        previous = {s: signal.signal(s, record) for s in HELD}
    except ValueError:  # not the main thread
        yield arrived
        return
    try:
        yield arrived
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
