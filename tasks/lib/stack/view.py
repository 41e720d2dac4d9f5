"""Rendering of ``stack.*`` results (the only module of this package that writes)."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.lib.compose.separation import Clash
from tasks.lib.output import Output
from tasks.lib.stack.health import HealthReport
from tasks.lib.stack.pull import PullResult
from tasks.lib.stack.status import StatusRow
from tasks.lib.stack.urls import StackUrl


def show_urls(out: Output, title: str, urls: Sequence[StackUrl]) -> None:
    if not urls:
        out.info(f"{title}: no Traefik routes and no published ports")
        return
    out.table(title, ["url", "service", "via"], [[u.url, u.service, u.via] for u in urls])


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO (older build)")


def show_status(out: Output, title: str, rows: Sequence[StatusRow]) -> None:
    out.table(
        title,
        ["service", "container", "state", "health", "ports", "image", "current build", "schema"],
        [
            [
                r.service,
                r.container,
                r.state,
                r.health or "-",
                "\n".join(r.ports),
                r.image,
                _yes_no(r.current_build),
                r.schema or "-",
            ]
            for r in rows
        ],
    )


def show_health(out: Output, report: HealthReport) -> None:
    out.table(
        f"{report.project} ({report.env}): health",
        ["service", "check", "result", "detail"],
        [[r.service, r.check, r.status.value, r.detail] for r in report.rows],
    )


def show_pull(out: Output, title: str, results: Sequence[PullResult]) -> None:
    out.table(
        title,
        ["service", "image", "result", "detail"],
        [
            [r.service, r.image, r.status.value, r.detail + (f"; {r.hint}" if r.hint else "")]
            for r in results
        ],
    )


def show_clashes(out: Output, clashes: Sequence[Clash]) -> None:
    out.table(
        "shared with prod",
        ["kind", "value", "prod", "staging"],
        [[c.kind, c.value, c.prod, c.staging] for c in clashes],
    )
