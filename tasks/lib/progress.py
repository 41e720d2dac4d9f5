"""One progress protocol for every long job (builds, pushes, volume copies, waiting for the
engine or a stack): ``start`` / ``update`` / ``finish`` per item, keyed by the item's name.

The view is chosen once, from the output mode, by :meth:`tasks.lib.output.Output.progress`:
nothing for ``--json`` or ``quiet``, a line per change in CI logs (:class:`PlainProgress`), a
live table on a terminal (:class:`LiveProgress`). The core only calls the protocol; this module
and :mod:`tasks.lib.output` are the only ones that render.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.live import Live

    from tasks.lib.output import Output


class Status(StrEnum):
    """What became of one item of work. The values are what views and ``--json`` show."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    BUILT = "built"
    PUSHED = "pushed"
    UP_TO_DATE = "up to date"
    TAGGED = "tagged"
    COPIED = "copied"
    DONE = "done"
    PASS = "pass"
    FAIL = "fail"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    NOT_BUILT = "not built"
    UP = "up"

    @property
    def ok(self) -> bool:
        return self in _OK

    @property
    def bad(self) -> bool:
        return self in _BAD


_OK = frozenset(
    {
        Status.BUILT,
        Status.PUSHED,
        Status.UP_TO_DATE,
        Status.TAGGED,
        Status.COPIED,
        Status.DONE,
        Status.PASS,
        Status.UP,
    }
)
_BAD = frozenset({Status.FAIL, Status.FAILED, Status.CANCELLED, Status.NOT_BUILT})


class Progress(Protocol):
    """What the core reports while it works. Every method may be called from any thread."""

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        """Item ``key`` begins (``total``: bytes or steps, when known)."""

    def update(
        self,
        key: str,
        *,
        text: str | None = None,
        stage: str | None = None,
        done: int | None = None,
        total: int | None = None,
        line: str | None = None,
    ) -> None:
        """A new step (``stage``/``text``), an amount done, or a raw log ``line``."""

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        """Item ``key`` ended as ``status`` (``text``: the reason, for a failure)."""


class NullProgress:
    """``--json``, ``--progress quiet`` and tests: report nothing."""

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        pass

    def update(
        self,
        key: str,
        *,
        text: str | None = None,
        stage: str | None = None,
        done: int | None = None,
        total: int | None = None,
        line: str | None = None,
    ) -> None:
        pass

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        pass

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@dataclass
class _Item:
    text: str = ""
    stage: str = ""
    done: int | None = None
    total: int | None = None
    started: float = 0.0
    seconds: float = 0.0
    status: Status = Status.QUEUED
    last_line: str = ""
    last_print: float = 0.0
    last_amount: str = ""


def _amount(done: int | None, total: int | None) -> str:
    from rich.filesize import decimal

    if done is None:
        return ""
    if total:
        pct = 100 * min(done, total) // total
        return f"{pct}% ({decimal(done)} of {decimal(total)})"
    return decimal(done)


class PlainProgress:
    """CI logs: a line when an item starts, when its step changes, at most one amount line
    every ``every`` seconds (an unchanged amount once a minute), and one when it ends.
    ``verbose`` also prints raw log lines."""

    def __init__(self, out: Output, *, every: float = 5.0, verbose: bool = False) -> None:
        self.out = out
        self.every = every
        self.verbose = verbose
        self._items: dict[str, _Item] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _say(self, key: str, text: str) -> None:
        self.out.info(f"[{key}] {text}")

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            self._items[key] = _Item(
                text=text, total=total, started=now, last_print=now, status=Status.RUNNING
            )
            self._say(key, text or "started")

    def update(
        self,
        key: str,
        *,
        text: str | None = None,
        stage: str | None = None,
        done: int | None = None,
        total: int | None = None,
        line: str | None = None,
    ) -> None:
        with self._lock:
            item = self._items.setdefault(key, _Item(started=time.monotonic()))
            if line is not None and self.verbose:
                self._say(key, line)
            if total is not None:
                item.total = total
            if text is not None or stage is not None:
                where = stage if stage is not None else item.stage
                what = text if text is not None else item.text
                msg = f"[{where}] {what}" if where else what
                if msg and msg != item.last_line and not self.verbose:
                    self._say(key, msg)
                item.stage, item.text, item.last_line = where, what, msg
            if done is not None:
                item.done = done
                now = time.monotonic()
                amount = _amount(done, item.total)
                # the same amount again (Docker retrying a push) only as a keep-alive line
                due = self.every if amount != item.last_amount else self.every * 12
                if now - item.last_print >= due:
                    item.last_print, item.last_amount = now, amount
                    self._say(key, amount)

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        with self._lock:
            item = self._items.setdefault(key, _Item(started=time.monotonic()))
            item.status = status
            item.seconds = time.monotonic() - item.started
            word = status.value.upper() if status.bad else status.value
            self._say(key, f"{word} in {item.seconds:.1f}s" + (f": {text}" if text else ""))


class LiveProgress:
    """A terminal: one live table, a row per item (stage, step, amount, elapsed, status),
    refreshed a few times a second. User and engine text is never read as markup."""

    def __init__(self, out: Output, title: str, keys: tuple[str, ...] = ()) -> None:
        self.out = out
        self.title = title
        self._items: dict[str, _Item] = {k: _Item() for k in keys}
        self._lock = threading.Lock()
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        self._live = Live(
            get_renderable=self._render,
            console=self.out.out,
            refresh_per_second=4,
            transient=False,
        )
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        t = Table(title=Text(self.title), title_justify="left", expand=False)
        for col in ("item", "stage", "step", "progress", "elapsed", "status"):
            t.add_column(col, overflow="fold")
        now = time.monotonic()
        with self._lock:
            items = list(self._items.items())
        for key, it in items:
            running = it.status in (Status.RUNNING, Status.WAITING)
            elapsed = (now - it.started) if running and it.started else it.seconds
            status: Any
            if running:
                status = Spinner("dots", text=Text(it.status.value), style="cyan")
            else:
                status = Text(it.status.value, style=self.out.style_of(it.status) or "")
            t.add_row(
                Text(key),
                Text(it.stage),
                Text(it.text[:80]),
                Text(_amount(it.done, it.total)),
                Text(f"{elapsed:5.1f}s" if it.started else ""),
                status,
            )
        return t

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        with self._lock:
            item = self._items.setdefault(key, _Item())
            item.started = time.monotonic()
            item.status = Status.RUNNING
            item.text, item.total = text, total

    def update(
        self,
        key: str,
        *,
        text: str | None = None,
        stage: str | None = None,
        done: int | None = None,
        total: int | None = None,
        line: str | None = None,
    ) -> None:
        with self._lock:
            item = self._items.setdefault(key, _Item(started=time.monotonic()))
            if text is not None:
                item.text = text
            if stage is not None:
                item.stage = stage
            if done is not None:
                item.done = done
            if total is not None:
                item.total = total

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        with self._lock:
            item = self._items.setdefault(key, _Item(started=time.monotonic()))
            item.status = status
            item.seconds = time.monotonic() - (item.started or time.monotonic())
            item.text = text
            if item.total is not None and status.ok:
                item.done = item.total
