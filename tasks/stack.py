"""stack.*: run the named compose stacks (dev, local, prod, staging): up, down, status, health,
logs, pull, urls (the Makefile's docker-start, docker-stop, status, health, docker-logs,
docker-pull and urls), and the end of the staging plan: ``inv build.all staging.tag
staging.compose staging.volumes stack.up --env staging``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context

from tasks.invoke_adapter import (
    DryRunFlags,
    EngineFlags,
    JsonFlags,
    RootFlags,
    ServiceFlags,
    cli_task,
    flag,
    running,
    settings,
)

if TYPE_CHECKING:
    from tasks.lib.config import Settings
    from tasks.lib.engine import EngineTarget
    from tasks.lib.output import Output
    from tasks.lib.stack.plan import Stack


def _out(json: bool = False) -> Output:
    from tasks.lib.output import Output

    return Output(json_mode=json)


class StackFlags(RootFlags, EngineFlags):
    env: str = flag(
        default="dev",
        help="the stack: dev (default, as the Makefile's COMPOSE_FILE), local, prod, staging",
    )


class UpFlags(StackFlags, ServiceFlags, DryRunFlags):
    wait: bool = flag(
        default=True, help="wait until every service is healthy or running (--no-wait: don't)"
    )
    timeout: int = flag(default=180, help="seconds to wait for the services (default 180)")
    allow_stale: bool = flag(
        default=False, help="staging: run app images not built from the current schema (warns)"
    )
    profile: list[str] = flag(default=[], help="compose profile to enable, e.g. full (repeatable)")


class DownFlags(StackFlags, DryRunFlags):
    volumes: bool = flag(
        default=False,
        help="also remove the stack's volumes (dev, local, staging; never prod's volumes)",
    )


class ReadFlags(StackFlags, JsonFlags):
    pass


class LogsFlags(StackFlags, ServiceFlags):
    follow: bool = flag(default=False, help="keep printing new lines (Ctrl-C stops)")
    since: str = flag(default="", help="only lines since a time or a duration, e.g. 10m")
    tail: str = flag(default="", help="only the last N lines of each container")


class PullFlags(StackFlags, ServiceFlags, DryRunFlags, JsonFlags):
    all_: bool = flag(
        default=False,
        help="pull every image a registry gives, present or not (make docker-pull: compose pull); "
        "default: only the missing ones",
    )


# -- helpers shared by the tasks ------------------------------------------------------------------


def _open(
    c: Context, flags: StackFlags, out: Output, *, missing_hint: str = "", changes: str = ""
) -> tuple[Settings, Stack, EngineTarget]:
    """Config, the stack and its engine (see :func:`~tasks.lib.stack.plan.open_stack`)."""
    from tasks.lib.engine import EngineTarget
    from tasks.lib.stack.plan import open_stack

    s = settings(c, flags)
    dry_run = isinstance(flags, DryRunFlags) and flags.dry_run
    stack, warning = open_stack(
        s, flags.env, missing_hint=missing_hint, changes=changes, dry_run=dry_run
    )
    if warning:
        out.warn(warning)
    target = EngineTarget(context=s.docker_context)
    target.check()  # one line (exit 2) for a bad address, not compose's error (exit 1)
    return s, stack, target


# -- tasks -----------------------------------------------------------------------------------


@cli_task(UpFlags, name="up")
def up(c: Context, flags: UpFlags) -> None:
    """Start a stack (docker compose up -d), wait until it is healthy, list its URLs."""
    from tasks.lib.engine import connect
    from tasks.lib.errors import ConfigError
    from tasks.lib.stack import up as core
    from tasks.lib.stack import view
    from tasks.lib.stack.containers import project_containers
    from tasks.lib.stack.lock import changing

    with running(_out()) as out:
        if flags.wait and flags.timeout < 1:  # 0 gave up at once and stopped compose mid-up
            raise ConfigError(
                f"--timeout {flags.timeout} leaves no time to wait for the services",
                hint="give the seconds to wait (at least 1), or --no-wait to start them "
                "without waiting",
            )
        s, stack, target = _open(c, flags, out, changes="stack.up")
        plan = core.plan_up(
            s,
            stack,
            target,
            flags.service,
            flags.profile,
            allow_stale=flags.allow_stale,
            dry_run=flags.dry_run,
        )
        view.show_preflight(out, plan.preflight)
        if plan.error is not None:
            raise plan.error
        if flags.dry_run:
            view.show_up_dry_run(out, plan, wait=flags.wait, timeout=flags.timeout)
            return
        with changing(target, stack.project, "stack.up"), connect(target) as client:
            if not flags.wait:
                core.start(plan, client, lambda lines: view.show_lines(out, lines))
            else:
                title = f"{stack.project}: starting"
                with core.stays_up(stack), out.progress(title, plan.expected) as progress:
                    result = core.start_and_wait(plan, client, progress, timeout=flags.timeout)
                failed = core.failure(plan, result, flags.timeout)
                if failed is not None:
                    view.show_up_failure(out, failed)
                    raise failed.error
            out.step(f"{stack.project} is up ({stack.file.name})")
            started = project_containers(client, stack.project)
            view.show_urls(out, f"{stack.project}: URLs", core.urls(plan, started))


@cli_task(DownFlags, name="down")
def down(c: Context, flags: DownFlags) -> None:
    """Stop and remove a stack (docker compose down --remove-orphans [--volumes])."""
    from tasks.lib.engine import connect
    from tasks.lib.stack import compose, view
    from tasks.lib.stack.checks import plan_down, stopped_down
    from tasks.lib.stack.lock import changing
    from tasks.lib.stack.plan import down_hint

    with running(_out()) as out:
        s, stack, target = _open(
            c,
            flags,
            out,
            missing_hint=down_hint(settings(c, flags), flags.env),
            # the volumes removed are named by the file, whose names the env file may set;
            # the containers are found by the project's label, with or without it
            changes="stack.down --volumes" if flags.volumes else "",
        )
        plan = plan_down(s, stack, target, volumes=flags.volumes, dry_run=flags.dry_run)
        view.show_warnings(out, plan.warnings)
        if plan.error is not None:
            raise plan.error
        if flags.dry_run:
            view.show_down_dry_run(out, plan)
            return
        with changing(target, stack.project, "stack.down"), connect(target), stopped_down(plan):
            view.show_lines(out, compose.stream(stack, target, plan.call))
        removed = f"; volumes removed: {', '.join(plan.volumes)}" if plan.volumes else ""
        out.step(f"{stack.project} is down{removed}")


@cli_task(ReadFlags, name="status")
def status(c: Context, flags: ReadFlags) -> None:
    """Services of a stack: state, health, ports, image, current build? (make status)."""
    from tasks.lib.stack import view
    from tasks.lib.stack.status import observe, status_rows

    with running(_out(flags.json)) as out:
        seen = observe(*_open(c, flags, out), images=True)
        view.show_status(
            out, seen.stack, status_rows(seen.spec, seen.containers, seen.found, seen.settings)
        )


@cli_task(ReadFlags, name="health")
def health(c: Context, flags: ReadFlags) -> None:
    """Compose health of every service plus the Makefile's HTTP checks (make health)."""
    from tasks.lib.stack import view
    from tasks.lib.stack.health import health_report
    from tasks.lib.stack.status import observe

    with running(_out(flags.json)) as out:
        report = health_report(observe(*_open(c, flags, out)))
        view.show_health(out, report)
        failed = report.failure()
        if failed is not None:
            raise failed


@cli_task(LogsFlags, name="logs")
def logs(c: Context, flags: LogsFlags) -> None:
    """Print a stack's logs (make docker-logs [SERVICE=]); --follow, --since, --tail."""
    from tasks.lib.stack import compose, view
    from tasks.lib.stack.plan import check_since, check_tail, logs_call

    with running(_out()) as out:
        _s, stack, target = _open(c, flags, out)
        compose.spec(stack, target).check_services(flags.service, stack.name)
        call = logs_call(
            flags.service,
            follow=flags.follow,
            since=check_since(flags.since),
            tail=check_tail(flags.tail),
        )
        view.show_logs(out, compose.logs(stack, target, call))


@cli_task(PullFlags, name="pull")
def pull(c: Context, flags: PullFlags) -> None:
    """Pull the images a stack lacks (--all: every image, as compose pull; make docker-pull).

    Names the images that are local builds, and how to build them."""
    from tasks.lib.engine import connect
    from tasks.lib.stack import pull as core
    from tasks.lib.stack import view
    from tasks.lib.stack.lock import changing

    with running(_out(flags.json)) as out:
        s, stack, target = _open(c, flags, out, changes="stack.pull")
        plan = core.prepare(
            s, stack, target, flags.service, every=flags.all_, dry_run=flags.dry_run
        )
        view.show_warnings(out, plan.warnings)
        if flags.dry_run:
            view.show_pull_plan(out, plan)
            return
        with (
            changing(target, stack.project, "stack.pull"),
            connect(target) as client,
            out.progress(f"{stack.project}: pull", plan.services) as progress,
        ):
            run = core.execute(plan, s, client, progress)
        view.show_pull(out, run)
        failed = run.failure()
        if failed is not None:
            raise failed


@cli_task(ReadFlags, name="urls")
def urls(c: Context, flags: ReadFlags) -> None:
    """The URLs a stack serves, from its Traefik rules and published ports (make urls)."""
    from tasks.lib.stack import view
    from tasks.lib.stack.urls import served

    with running(_out(flags.json)) as out:
        _s, stack, target = _open(c, flags, out)
        found, unchecked = served(stack, target)
        if unchecked:
            out.warn(unchecked)
        view.show_stack_urls(out, stack, found)


ns = Collection("stack", up, down, status, health, logs, pull, urls)
