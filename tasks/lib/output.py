"""One output module around rich: live views and tables on a terminal, plain lines in CI logs.

Progress and results go to stdout, problems to stderr. "Plain" means: not a terminal, or
``NO_COLOR`` set, or ``TERM=dumb``: then there is no live view, no colour and no box drawing,
one line per event, so CI logs stay readable and greppable.

Text from users, files and the engine is never read as rich markup or emoji: the consoles are
made with ``markup=False, emoji=False`` and every cell is a :class:`rich.text.Text`, so a path
with ``[red]`` or ``:x:`` (or ``Dockerfile:100:``) prints as it is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

from tasks.lib.errors import OutputClosed
from tasks.lib.progress import LiveProgress, NullProgress, PlainProgress, Progress, Status

if TYPE_CHECKING:
    from rich.console import Console

PROGRESS_MODES = ("auto", "plain", "quiet")


def is_plain(stream: IO[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    stream = stream or sys.stdout
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return True
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def size(n: int | None) -> str:
    """Bytes for people, in decimal units as ``docker`` prints them (``-`` when unknown)."""
    if n is None or n < 0:
        return "-"
    from rich.filesize import decimal

    return decimal(n)


_STYLE = {
    Status.PASS: "green",
    Status.BUILT: "green",
    Status.PUSHED: "green",
    Status.UP_TO_DATE: "green",
    Status.TAGGED: "green",
    Status.COPIED: "green",
    Status.DONE: "green",
    Status.UP: "green",
    Status.FAIL: "bold red",
    Status.FAILED: "bold red",
    Status.NOT_BUILT: "bold red",
    Status.CANCELLED: "yellow",
    Status.SKIPPED: "yellow",
}


class Output:
    """Where every task writes. ``plain`` is decided once, from stdout and the env."""

    def __init__(
        self, *, plain: bool | None = None, json_mode: bool = False, progress: str = "auto"
    ) -> None:
        self.plain = is_plain() if plain is None else plain
        self.json_mode = json_mode
        self.progress_mode = progress
        self._out: Console | None = None
        self._err: Console | None = None
        self.json_written = False  # a script reading --json gets one document, never two

    def _console(self, *, stderr: bool) -> Console:
        from rich.console import Console

        class _Console(Console):
            def on_broken_pipe(self) -> None:
                # rich's own handler exits 1; the task adapter turns this into a quiet 141
                raise OutputClosed

        return _Console(
            stderr=stderr,
            no_color=self.plain,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=self.plain or stderr,
            force_terminal=None if not self.plain else False,
            width=200 if self.plain and not stderr else None,
        )

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = self._console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = self._console(stderr=True)
        return self._err

    # -- lines --------------------------------------------------------------------------------

    def info(self, text: str) -> None:
        if not self.json_mode:
            self.out.print(text)

    def step(self, text: str) -> None:
        if self.json_mode:
            return
        from rich.text import Text

        self.out.print(Text.assemble(("==> ", "bold cyan"), text))

    def warn(self, text: str) -> None:
        from rich.text import Text

        self.err.print(Text.assemble(("WARNING: ", "bold yellow"), text))

    def error(self, text: str) -> None:
        from rich.text import Text

        self.err.print(Text.assemble(("ERROR: ", "bold red"), text))

    def tail(self, lines: Iterable[str]) -> None:
        """A failing command's last lines, indented, on stderr."""
        for line in lines:
            self.err.print(f"  | {line}")

    def command(self, argv: Sequence[str]) -> None:
        """Print a command as a shell would take it (dry runs)."""
        _write(shlex.join(argv) + "\n")

    def text(self, text: str) -> None:
        """Raw text on stdout (a generated file, a diff), exactly as given."""
        _write(text)

    def json(self, data: Any) -> None:
        self.json_written = True
        _write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def style_of(self, status: Status | str) -> str | None:
        try:
            return _STYLE.get(Status(status))
        except ValueError:
            return None

    # -- progress -----------------------------------------------------------------------------

    def progress(self, title: str, keys: Sequence[str] = ()) -> AbstractContextManager[Progress]:
        """The one progress view for this output: none (``--json``, ``--progress quiet``),
        lines (CI, ``--progress plain`` adds every raw log line), or a live table."""
        if self.json_mode or self.progress_mode == "quiet":
            return NullProgress()
        if self.plain or self.progress_mode == "plain":
            return PlainProgress(self, verbose=self.progress_mode == "plain")
        return LiveProgress(self, title, tuple(keys))

    # -- tables -------------------------------------------------------------------------------

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> None:
        cells = [[("" if c is None else shown(str(c))) for c in r] for r in rows]
        if self.json_mode:
            return
        if self.plain:
            self._plain_table(title, columns, cells)
            return
        from rich.table import Table
        from rich.text import Text

        t = Table(title=Text(title), title_justify="left", show_lines=False)
        for c in columns:
            t.add_column(Text(c), overflow="fold")
        for r in cells:
            t.add_row(*(Text(cell, style=self.style_of(cell) or "") for cell in r))
        self.out.print(t)

    @staticmethod
    def _plain_table(title: str, columns: Sequence[str], cells: list[list[str]]) -> None:
        widths = [len(c) for c in columns]
        for r in cells:
            for i, cell in enumerate(r):
                widths[i] = max(widths[i], max((len(x) for x in cell.split("\n")), default=0))
        lines = [title, "  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(columns))]
        for r in cells:
            split = [cell.split("\n") for cell in r]
            for k in range(max((len(x) for x in split), default=0)):
                lines.append(
                    "  ".join(
                        (x[k] if k < len(x) else "").ljust(widths[i]) for i, x in enumerate(split)
                    )
                )
        _write("".join(line.rstrip() + "\n" for line in lines))


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """``text`` safe to print: a control character (but the newline a cell may break at),
    from an image label or a file name, is written as its escape (``\\x1b``) rather than
    sent to the terminal, where it could move the cursor, set the title or hide a line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _write(text: str) -> None:
    """Text on stdout, flushed; a reader that went away is :class:`OutputClosed`."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosed from None
