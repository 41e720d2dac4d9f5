"""What a user sees while images build: a live table on a terminal, one line per step in CI."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tasks.lib.build_engine import BuildResult
from tasks.lib.build_plan import ImageBuild
from tasks.lib.output import Output
from tasks.lib.output import size as human_size

if TYPE_CHECKING:
    from rich.live import Live

PROGRESS_MODES = ("auto", "plain", "quiet")


@dataclass
class _Row:
    stage: str = ""
    step: str = ""
    text: str = "waiting"
    started: float | None = None
    status: str = "queued"
    seconds: float = 0.0


class PlainReporter:
    """One line per BuildKit step (``auto``), every BuildKit line (``plain``), or none."""

    def __init__(self, out: Output, mode: str = "auto") -> None:
        self.out = out
        self.mode = mode
        self._last: dict[str, str] = {}

    def started(self, image: ImageBuild) -> None:
        if self.mode != "quiet":
            self.out.info(f"[{image.name}] building {', '.join(image.tags) or image.repository}")

    def progress(self, image: ImageBuild, stage: str, step: str, text: str) -> None:
        if self.mode != "auto":
            return
        where = f"{stage} {step}".strip()
        msg = f"[{image.name}] [{where}] {text}" if where else f"[{image.name}] {text}"
        if self._last.get(image.name) != msg:
            self._last[image.name] = msg
            self.out.info(msg)

    def line(self, image: ImageBuild, line: str) -> None:
        if self.mode == "plain":
            self.out.info(f"[{image.name}] {line}")

    def finished(self, result: BuildResult) -> None:
        if self.mode == "quiet":
            return
        name = result.image.name
        if result.ok:
            self.out.info(f"[{name}] {result.status} in {result.seconds:.1f}s")
        else:
            self.out.info(f"[{name}] FAILED after {result.seconds:.1f}s: {result.error}")


class LiveReporter:
    """A rich Live table: image, stage, step, elapsed, status; refreshed a few times a second."""

    def __init__(self, out: Output, images: Sequence[ImageBuild]) -> None:
        self.out = out
        self.rows: dict[str, _Row] = {img.name: _Row() for img in images}
        self._live: Live | None = None

    def __enter__(self) -> LiveReporter:
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

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        t = Table(title="Building", title_justify="left", expand=False)
        for col in ("image", "stage", "step", "elapsed", "status"):
            t.add_column(col)
        now = time.monotonic()
        for name, row in self.rows.items():
            elapsed = row.seconds if row.status != "building" else (now - (row.started or now))
            status: Any
            if row.status == "building":
                status = Spinner("dots", text="building", style="cyan")
            elif row.status in ("built", "pushed"):
                status = f"[green]{row.status}[/]"
            elif row.status == "failed":
                status = "[bold red]failed[/]"
            else:
                status = row.status
            step_text = f"{row.step} {row.text}".strip()
            t.add_row(name, row.stage, step_text[:70], f"{elapsed:5.1f}s", status)
        return t

    def started(self, image: ImageBuild) -> None:
        row = self.rows[image.name]
        row.started = time.monotonic()
        row.status = "building"
        row.text = "starting"

    def progress(self, image: ImageBuild, stage: str, step: str, text: str) -> None:
        row = self.rows[image.name]
        row.stage, row.step, row.text = stage, step, text

    def line(self, image: ImageBuild, line: str) -> None:
        pass

    def finished(self, result: BuildResult) -> None:
        row = self.rows[result.image.name]
        row.status = result.status
        row.seconds = result.seconds
        row.text = "" if result.ok else (result.error or "")


def summary_rows(results: Sequence[BuildResult]) -> list[list[str]]:
    return [
        [
            r.image.name,
            "\n".join(r.image.tags),
            human_size(r.size),
            f"{r.seconds:.1f}s",
            r.status,
        ]
        for r in results
    ]


def results_json(results: Sequence[BuildResult]) -> list[dict[str, Any]]:
    return [
        {
            "image": r.image.name,
            "service": r.image.service,
            "variant": r.image.variant,
            "tags": list(r.image.tags),
            "image_id": r.image_id,
            "size": r.size,
            "seconds": round(r.seconds, 3),
            "result": r.status,
            "error": r.error,
            "stages": r.stages,
        }
        for r in results
    ]
