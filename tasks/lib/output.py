"""One output module around rich: live views and tables on a terminal, plain lines in CI logs.

Progress and results go to stdout, problems to stderr. "Plain" means: not a terminal, or
``NO_COLOR`` set, or ``TERM=dumb``: then there is no live view, no colour and no box drawing,
one line per event, so CI logs stay readable and greppable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def is_plain(stream: IO[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    stream = stream or sys.stdout
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return True
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


class Output:
    """Where every task writes. ``plain`` is decided once, from stdout and the env."""

    def __init__(self, *, plain: bool | None = None, json_mode: bool = False) -> None:
        self.plain = is_plain() if plain is None else plain
        self.json_mode = json_mode
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def out(self) -> Console:
        if self._out is None:
            from rich.console import Console

            self._out = Console(
                no_color=self.plain,
                highlight=False,
                soft_wrap=self.plain,
                force_terminal=None if not self.plain else False,
                width=200 if self.plain else None,
            )
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(
                stderr=True,
                no_color=self.plain,
                highlight=False,
                soft_wrap=True,
                force_terminal=None if not self.plain else False,
            )
        return self._err

    def info(self, text: str) -> None:
        if not self.json_mode:
            self.out.print(text, markup=False)

    def step(self, text: str) -> None:
        if not self.json_mode:
            if self.plain:
                self.out.print(f"==> {text}", markup=False)
            else:
                self.out.print(f"[bold cyan]==>[/] {_esc(text)}")

    def warn(self, text: str) -> None:
        if self.plain:
            self.err.print(f"WARNING: {text}", markup=False)
        else:
            self.err.print(f"[bold yellow]WARNING:[/] {_esc(text)}")

    def error(self, text: str) -> None:
        if self.plain:
            self.err.print(f"ERROR: {text}", markup=False)
        else:
            self.err.print(f"[bold red]ERROR:[/] {_esc(text)}")

    def command(self, argv: Sequence[str]) -> None:
        """Print a command as a shell would take it (dry runs)."""
        import shlex

        print(shlex.join(argv), flush=True)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=False, default=str), flush=True)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        styles: Mapping[str, str] | None = None,
    ) -> None:
        rows = [[("" if c is None else str(c)) for c in r] for r in rows]
        if self.json_mode:
            return
        if self.plain:
            widths = [len(c) for c in columns]
            for r in rows:
                for i, cell in enumerate(r):
                    widths[i] = max(widths[i], max((len(x) for x in cell.split("\n")), default=0))
            print(title, flush=True)
            print("  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(columns)).rstrip())
            for r in rows:
                lines = [cell.split("\n") for cell in r]
                for k in range(max(len(x) for x in lines) if lines else 0):
                    print(
                        "  ".join(
                            (x[k] if k < len(x) else "").ljust(widths[i])
                            for i, x in enumerate(lines)
                        ).rstrip()
                    )
            sys.stdout.flush()
            return
        from rich.table import Table

        t = Table(title=title, title_justify="left", show_lines=False)
        for c in columns:
            t.add_column(c, style=(styles or {}).get(c), overflow="fold")
        for r in rows:
            t.add_row(*(_verdict_markup(cell) for cell in r))
        self.out.print(t)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


_VERDICT_STYLE = {
    "pass": "green",
    "ok": "green",
    "built": "green",
    "fail": "bold red",
    "failed": "bold red",
    "skip": "yellow",
    "skipped": "yellow",
    "cancelled": "yellow",
}


def _verdict_markup(cell: str) -> str:
    style = _VERDICT_STYLE.get(cell.lower())
    return f"[{style}]{_esc(cell)}[/]" if style else _esc(cell)


def human_size(n: int | None) -> str:
    if n is None or n < 0:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
