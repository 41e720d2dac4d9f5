"""docker.*: the engine itself (the Makefile's ``_ensure-docker-running``)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from invoke import Collection, Context, task

from tasks._common import HELP, engine_target, task_errors

if TYPE_CHECKING:
    from tasks.lib.ensure import EnsureOptions, EnsureReport
    from tasks.lib.output import Output


@task(
    name="ensure",
    help={
        "context": HELP["context"],
        "timeout": "seconds to wait for the engine to answer after starting it (default 60)",
        "created_timeout": "then seconds to wait while containers are still in state `created` "
        "(default 30; 0: do not wait)",
        "start": "start this machine's engine when it does not answer (--no-start: only check)",
        "dry_run": "say what would be started, start nothing",
        "json": HELP["json"],
    },
)
def ensure(
    c: Context,
    context: str = "",
    timeout: int = 60,
    created_timeout: int = 30,
    start: bool = True,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Make sure the Docker engine answers: start it and wait if not (_ensure-docker-running)."""
    from tasks.lib import ensure as core
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        if timeout < 0 or created_timeout < 0:
            raise ConfigError("--timeout and --created-timeout take seconds >= 0")
        options = core.EnsureOptions(
            start=start,
            dry_run=dry_run,
            timeout=float(timeout),
            created_timeout=float(created_timeout),
        )
        report = core.ensure(engine_target(c, context), options, out)
        render(out, report, options)


def render(out: Output, report: EnsureReport, options: EnsureOptions) -> None:
    """Show an EnsureReport: one line when all is well, the commands on a dry run."""
    if out.json_mode:
        out.json(report.as_dict())
        return
    if report.version is None:  # dry run, engine down
        out.step(
            f"dry run: the Docker engine at {report.where} does not answer; "
            "these commands would be tried in order until one works:"
        )
        for argv in report.would_run:
            out.command(argv)
        out.info(
            f"then wait up to {options.timeout:g}s for it to answer, and up to "
            f"{options.created_timeout:g}s more while containers are in state `created`"
        )
        return
    how = "answers"
    if report.started_with:
        how = f"answers (started with `{shlex.join(report.started_with)}`, {report.waited:.0f}s)"
    out.info(f"Docker engine {report.version} {how} at {report.where}")
    if report.created_left:
        names = ", ".join(report.created_left)
        if options.dry_run:
            out.info(
                f"dry run: would wait up to {options.created_timeout:g}s while "
                f"{len(report.created_left)} container(s) are in state `created`: {names}"
            )
        else:
            out.warn(
                f"{len(report.created_left)} container(s) still in state `created` after "
                f"{report.created_waited:.0f}s: {names}; if they are leftovers, remove them "
                f"(`docker rm {' '.join(report.created_left)}`), else start them"
            )


ns = Collection("docker", ensure)
