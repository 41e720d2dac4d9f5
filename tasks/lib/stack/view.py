"""Rendering of ``stack.*`` results (the only module of this package that writes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tasks.lib.compose.separation import Clash
from tasks.lib.output import Output
from tasks.lib.stack.checks import DownPlan, Preflight
from tasks.lib.stack.health import HealthReport
from tasks.lib.stack.plan import Stack
from tasks.lib.stack.pull import PullPlan, PullResult, PullRun
from tasks.lib.stack.status import StatusRow
from tasks.lib.stack.up import UpFailure, UpPlan
from tasks.lib.stack.urls import StackUrl


def show_urls(out: Output, title: str, urls: Sequence[StackUrl]) -> None:
    """The URLs as a table (``stack.up`` ends with it)."""
    if not urls:
        out.info(f"{title}: no Traefik routes and no published ports")
        return
    out.table(title, ["url", "service", "via"], [[u.url, u.service, u.via] for u in urls])


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO (older build)")


def show_stack_urls(out: Output, stack: Stack, urls: Sequence[StackUrl]) -> None:
    """``stack.urls``: the table, or ``--json``."""
    if out.json_mode:
        out.json({**stack.to_json(), "urls": [u.to_json() for u in urls]})
        return
    show_urls(out, f"{stack.project}: URLs", urls)


def show_status(out: Output, stack: Stack, rows: Sequence[StatusRow]) -> None:
    if out.json_mode:
        out.json({**stack.to_json(), "services": [r.to_json() for r in rows]})
        return
    out.table(
        f"{stack.project} ({stack.file.name})",
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
    if out.json_mode:
        out.json(report.to_json())
        return
    out.table(
        f"{report.project} ({report.env}): health",
        ["service", "check", "result", "detail"],
        [
            [
                r.service,
                r.check + (f" (through the {r.via})" if r.via else ""),
                r.status.value,
                r.detail,
            ]
            for r in report.rows
        ],
    )


def show_pull(out: Output, run: PullRun) -> None:
    if out.json_mode:
        out.json(run.to_json())
        return
    show_pull_results(out, f"{run.stack.project}: images", run.results)


def show_pull_results(out: Output, title: str, results: Sequence[PullResult]) -> None:
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


def show_warnings(out: Output, lines: Iterable[str]) -> None:
    for line in lines:
        out.warn(line)


def show_lines(out: Output, lines: Iterable[str]) -> None:
    """A compose command's output lines as they come."""
    for line in lines:
        out.info(line)


def show_preflight(out: Output, preflight: Preflight | None) -> None:
    """Staging's preflight: its warnings, and what the stack shares with prod."""
    if preflight is None:
        return
    show_warnings(out, preflight.warnings)
    if preflight.clashes:
        show_clashes(out, preflight.clashes)


def show_logs(out: Output, lines: Iterable[tuple[str, str]]) -> None:
    """``compose logs`` lines as they come: stdout's to stdout, stderr's to stderr."""
    for source, line in lines:
        if source == "stderr":
            out.err.print(line, highlight=False)
        else:
            out.text(line + "\n")


def show_up_dry_run(out: Output, plan: UpPlan, *, wait: bool, timeout: int) -> None:
    out.step(f"dry run: would start {plan.stack.project} ({plan.stack.file.name}) with")
    out.command(plan.argv)
    if wait:
        out.info(f"then wait up to {timeout}s for: {', '.join(plan.expected)}")


def show_up_failure(out: Output, failure: UpFailure) -> None:
    for svc in failure.services:
        out.error(f"{svc.service}: {svc.reason}; its last log lines:")
        out.tail(svc.lines)
    if failure.up_output is not None:
        out.error("`docker compose up` said:")
        out.tail(failure.up_output)


def show_down_dry_run(out: Output, plan: DownPlan) -> None:
    out.step(f"dry run: would take {plan.stack.project} down with")
    out.command(plan.argv)
    if plan.volumes:
        out.info(f"removing the volumes {', '.join(plan.volumes)}")


def show_pull_plan(out: Output, plan: PullPlan) -> None:
    """A dry run of ``stack.pull``: each pull's command, and what is built rather than pulled
    (``--json``: the plan, each pull with its argv)."""
    if out.json_mode:
        out.json(plan.to_json())
        return
    every = " every image" if plan.every else ""
    out.step(f"dry run: {plan.stack.project} would pull{every}")
    for item in plan.items:
        if item.action == "pull":
            out.command(plan.argvs[item.service])
        note = plan.notes.get(item.service)
        if note:
            out.info(f"# {note}")
