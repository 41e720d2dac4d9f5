"""docker.*: the engine itself (the Makefile's ``_ensure-docker-running``)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from invoke import Collection, Context

from tasks.invoke_adapter import (
    DryRunFlags,
    EngineFlags,
    JsonFlags,
    cli_task,
    engine_target,
    flag,
    running,
)

if TYPE_CHECKING:
    from tasks.lib.ensure import EnsureOptions, EnsureReport
    from tasks.lib.output import Output


class EnsureFlags(EngineFlags, DryRunFlags, JsonFlags):
    timeout: int = flag(
        default=60, help="seconds to wait for the engine to answer after starting it"
    )
    created_timeout: int = flag(
        default=30,
        help="then seconds to wait while containers are still in state `created` (0: do not wait)",
    )
    start: bool = flag(
        default=True,
        help="start this machine's engine when it does not answer (--no-start: only check); an "
        "engine on another machine (ssh://, tcp://) is only checked, never started",
    )


@cli_task(EnsureFlags, name="ensure")
def ensure(c: Context, flags: EnsureFlags) -> None:
    """Make sure the Docker engine answers: start it and wait if not (_ensure-docker-running)."""
    from tasks.lib import ensure as core
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        if flags.timeout < 0 or flags.created_timeout < 0:
            raise ConfigError("--timeout and --created-timeout take seconds >= 0")
        options = core.EnsureOptions(
            start=flags.start,
            dry_run=flags.dry_run,
            timeout=float(flags.timeout),
            created_timeout=float(flags.created_timeout),
        )
        report = core.ensure(engine_target(c, flags.context), options, out.progress)
        render(out, report, options)


def render(out: Output, report: EnsureReport, options: EnsureOptions) -> None:
    """Show an EnsureReport: one line when all is well, the commands on a dry run."""
    if out.json_mode:
        out.json(report.to_json())
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
    if report.ssh:
        out.info(f"reached over one SSH link, closed when the task ends: {shlex.join(report.ssh)}")
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
