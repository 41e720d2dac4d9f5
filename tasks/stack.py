"""stack.*: run the named compose stacks (dev, local, prod, staging): up, down, status, health,
logs, pull, urls (the Makefile's docker-start, docker-stop, status, health, docker-logs,
docker-pull and urls), and the end of the staging plan: ``inv build.all staging.tag
staging.compose staging.volumes stack.up --env staging``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    from tasks.lib.stack.spec import ProjectSpec
    from tasks.lib.stack.status import Observed


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
    """Config, the stack and its engine. ``changes``: the task's words when this run changes
    something with what the env file decides (a missing env file refuses it; see
    :func:`~tasks.lib.stack.plan.env_file_check`)."""
    from tasks.lib.stack.plan import env_file_check, resolve_stack

    s = settings(c, flags)
    stack = resolve_stack(s, flags.env, missing_hint=missing_hint)
    dry_run = isinstance(flags, DryRunFlags) and flags.dry_run
    warning = env_file_check(stack, s.root, task=changes, dry_run=dry_run)
    if warning:
        out.warn(warning)
    from tasks.lib.engine import EngineTarget

    return s, stack, EngineTarget(context=s.docker_context)


def _config(stack: Stack, target: EngineTarget) -> dict[str, Any]:
    from tasks.lib.stack import compose

    return compose.config(stack, target)


def _spec(stack: Stack, target: EngineTarget, config: dict[str, Any] | None = None) -> ProjectSpec:
    from tasks.lib.stack.spec import parse_config

    return parse_config(config if config is not None else _config(stack, target), stack.project)


def _staging_preflight(
    out: Output,
    s: Settings,
    stack: Stack,
    config: dict[str, Any],
    spec: ProjectSpec,
    target: EngineTarget,
    *,
    allow_stale: bool,
    dry_run: bool,
) -> None:
    """Before staging starts: separate from prod (checked again now, by the check
    staging.compose made), app images fresh by staging.tag's rules. Refusals are one line;
    nothing has been started."""
    from tasks.lib.compose.separation import clashes as shared_with
    from tasks.lib.engine import connect
    from tasks.lib.errors import ConfigError, EngineUnavailable
    from tasks.lib.images.store import find_images
    from tasks.lib.stack import images
    from tasks.lib.stack.plan import PROD, resolve_stack
    from tasks.lib.stack.view import show_clashes

    prod = resolve_stack(s, PROD, must_exist=False)
    if not prod.file.is_file():
        out.warn(f"prod compose file {prod.file} not found: staging's separation not checked")
    else:
        clashes = shared_with(_config(prod, target), config)
        if clashes:
            show_clashes(out, clashes)
            raise ConfigError(
                f"refused, nothing started: {stack.file.name} shares with "
                f"{prod.file.name}: " + "; ".join(c.describe() for c in clashes),
                hint="regenerate it (`inv staging.compose --force`) or fix the edit",
            )
    try:
        with connect(target) as client:
            found = find_images(client, [ref for _svc, _app, ref in images.app_services(spec, s)])
    except EngineUnavailable as exc:
        if not dry_run:
            raise
        out.warn(f"{exc.line()}; app images not checked")
        return
    apps = images.app_images(spec, s, found)
    if allow_stale:
        for line in images.stale_lines(apps):
            out.warn(f"--allow-stale: {line}")
        return
    images.refuse_stale(apps, s, stack=stack.name)


def _expected(spec: ProjectSpec, services: list[str], profiles: list[str]) -> tuple[str, ...]:
    if services:
        return spec.with_dependencies(services)
    on = set(profiles)
    return tuple(
        sv.name for sv in spec.services if not sv.profiles or "*" in on or on & set(sv.profiles)
    )


# -- tasks -----------------------------------------------------------------------------------


@cli_task(UpFlags, name="up")
def up(c: Context, flags: UpFlags) -> None:
    """Start a stack (docker compose up -d), wait until it is healthy, list its URLs."""
    from tasks.lib.engine import connect
    from tasks.lib.errors import CommandFailed, ConfigError, Interrupted
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers
    from tasks.lib.stack.health import engine_host
    from tasks.lib.stack.plan import STAGING, up_call
    from tasks.lib.stack.urls import stack_urls
    from tasks.lib.stack.view import show_urls
    from tasks.lib.stack.wait import Background, watch

    with running(_out()) as out:
        if flags.timeout < 0:
            raise ConfigError(f"--timeout {flags.timeout}", hint="seconds >= 0")
        s, stack, target = _open(c, flags, out, changes="stack.up")
        config = _config(stack, target)
        spec = _spec(stack, target, config)
        spec.check_services(flags.service, stack.name)
        if stack.name == STAGING:
            _staging_preflight(
                out,
                s,
                stack,
                config,
                spec,
                target,
                allow_stale=flags.allow_stale,
                dry_run=flags.dry_run,
            )
        call = up_call(flags.service, flags.profile)
        expected = _expected(spec, flags.service, flags.profile)
        if flags.dry_run:
            out.step(f"dry run: would start {stack.project} ({stack.file.name}) with")
            out.command(compose.argv(stack, target, call))
            if flags.wait:
                out.info(f"then wait up to {flags.timeout}s for: {', '.join(expected)}")
            return
        with connect(target) as client:
            if not flags.wait:
                for line in compose.stream(stack, target, call):
                    out.info(line)
            else:
                background = Background(lambda: compose.stream(stack, target, call)).start()
                try:
                    with out.progress(f"{stack.project}: starting", expected) as progress:
                        result = watch(
                            lambda: project_containers(client, stack.project),
                            expected,
                            progress,
                            timeout=flags.timeout,
                            up=background,
                        )
                except Interrupted as exc:
                    raise Interrupted(
                        exc.signum,
                        f"{exc.message}: stopped waiting for {stack.project}; what started "
                        f"stays up (take it down with `inv stack.down --env {stack.name}`)",
                    ) from None
                if not result.ok:
                    rows = result.failed or (() if result.up_error else result.not_ready)
                    for row in rows:
                        out.error(f"{row.service}: {row.reason}; its last log lines:")
                        out.tail(compose.last_lines(stack, target, row.service))
                    if result.up_error is not None:
                        out.error("`docker compose up` said:")
                        out.tail(result.up_error_tail())
                    raise CommandFailed(
                        result.summary(stack.name, flags.timeout),
                        hint=f"what started stays up: `inv stack.status --env {stack.name}`, "
                        f"`inv stack.down --env {stack.name}` takes it down",
                    )
        out.step(f"{stack.project} is up ({stack.file.name})")
        show_urls(out, f"{stack.project}: URLs", stack_urls(spec, engine_host(target)))


@cli_task(DownFlags, name="down")
def down(c: Context, flags: DownFlags) -> None:
    """Stop and remove a stack (docker compose down --remove-orphans [--volumes])."""
    from tasks.lib.compose.separation import shared_volumes
    from tasks.lib.engine import connect
    from tasks.lib.errors import ConfigError, EngineUnavailable
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers
    from tasks.lib.stack.plan import PROD, down_call, resolve_stack

    with running(_out()) as out:
        project = settings(c, flags).stack(flags.env).project
        s, stack, target = _open(
            c,
            flags,
            out,
            missing_hint=f"without its file, `docker compose -p {project} down` takes the "
            "project down (by its labels)",
            # the volumes removed are named by the file, whose names the env file may set;
            # the containers are found by the project's label, with or without it
            changes="stack.down --volumes" if flags.volumes else "",
        )
        if flags.volumes and stack.is_prod:
            raise ConfigError(
                "refused: `stack.down --env prod --volumes` would delete prod's data",
                hint="take prod down without --volumes; remove a volume by hand if you mean it",
            )
        prod = resolve_stack(s, PROD, must_exist=False)
        if not stack.is_prod and prod.project == stack.project:
            raise ConfigError(
                f"refused: stack {stack.name} has prod's project name {stack.project}",
                hint=f"give meeshy.stacks.{stack.name}.project its own name",
            )
        removed: list[str] = []
        if flags.volumes:
            config = _config(stack, target)
            prod_config = _config(prod, target) if prod.file.is_file() else None
            if prod_config is None:
                out.warn(f"prod compose file {prod.file} not found: only running prod checked")
            try:
                with connect(target) as client:
                    mounted = [
                        m for ct in project_containers(client, prod.project) for m in ct.mounts
                    ]
            except EngineUnavailable:
                if not flags.dry_run:
                    raise
                mounted = []
            shared = shared_volumes(config, prod_config, mounted)
            if shared:
                raise ConfigError(
                    f"refused, nothing removed: `stack.down --env {stack.name} --volumes` would "
                    f"delete volumes prod uses: {', '.join(shared)}",
                    hint=f"give them their own names in {stack.file.name}, or drop --volumes",
                )
            volumes = _spec(stack, target, config).volumes.values()
            removed = sorted(n for n, external in volumes if not external)
        call = down_call(volumes=flags.volumes)
        if flags.dry_run:
            out.step(f"dry run: would take {stack.project} down with")
            out.command(compose.argv(stack, target, call))
            if removed:
                out.info(f"removing the volumes {', '.join(removed)}")
            return
        with connect(target):
            for line in compose.stream(stack, target, call):
                out.info(line)
        out.step(
            f"{stack.project} is down"
            + (f"; volumes removed: {', '.join(removed)}" if removed else "")
        )


def _observe(c: Context, flags: StackFlags, out: Output, *, images: bool = False) -> Observed:
    """The stack's file, its containers (one list call) and, with ``images``, the local
    images their references name (one list call)."""
    from tasks.lib.engine import connect
    from tasks.lib.images.store import find_images
    from tasks.lib.stack.containers import project_containers

    s, stack, target = _open(c, flags, out)
    spec = _spec(stack, target)
    with connect(target) as client:
        containers = project_containers(client, stack.project)
        refs = [sv.image for sv in spec.services] + [ct.image_ref for ct in containers]
        found = find_images(client, refs) if images else {}
    from tasks.lib.stack.status import Observed

    return Observed(s, stack, target, spec, containers, found)


@cli_task(ReadFlags, name="status")
def status(c: Context, flags: ReadFlags) -> None:
    """Services of a stack: state, health, ports, image, current build? (make status)."""
    from tasks.lib.stack.status import status_rows
    from tasks.lib.stack.view import show_status

    with running(_out(flags.json)) as out:
        seen = _observe(c, flags, out, images=True)
        rows = status_rows(seen.spec, seen.containers, seen.found, seen.settings)
        if flags.json:
            out.json({**seen.stack.to_json(), "services": [r.to_json() for r in rows]})
            return
        show_status(out, f"{seen.stack.project} ({seen.stack.file.name})", rows)


@cli_task(ReadFlags, name="health")
def health(c: Context, flags: ReadFlags) -> None:
    """Compose health of every service plus the Makefile's HTTP checks (make health)."""
    from tasks.lib.errors import TaskError
    from tasks.lib.stack.health import HealthReport, compose_rows, engine_host, http_rows
    from tasks.lib.stack.view import show_health

    with running(_out(flags.json)) as out:
        seen = _observe(c, flags, out)
        s, stack, spec, containers = seen.settings, seen.stack, seen.spec, seen.containers
        rows = compose_rows(spec, containers) + http_rows(
            spec, containers, s, engine_host(seen.target)
        )
        report = HealthReport(stack.name, stack.project, tuple(rows))
        if flags.json:
            out.json(report.to_json())
        else:
            show_health(out, report)
        if not report.ok:
            bad = [f"{r.service} {r.check}: {r.detail}" for r in report.rows if r.status.bad]
            raise TaskError(f"stack {stack.name}: {len(bad)} check(s) failed: " + "; ".join(bad))


@cli_task(LogsFlags, name="logs")
def logs(c: Context, flags: LogsFlags) -> None:
    """Print a stack's logs (make docker-logs [SERVICE=]); --follow, --since, --tail."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.plan import check_tail, logs_call

    with running(_out()) as out:
        _s, stack, target = _open(c, flags, out)
        _spec(stack, target).check_services(flags.service, stack.name)
        call = logs_call(
            flags.service, follow=flags.follow, since=flags.since, tail=check_tail(flags.tail)
        )
        for source, line in compose.logs(stack, target, call):
            if source == "stderr":
                out.err.print(line, highlight=False)
            else:
                out.text(line + "\n")


@cli_task(PullFlags, name="pull")
def pull(c: Context, flags: PullFlags) -> None:
    """Pull the images a stack lacks (--all: every image, as compose pull); say which are
    local builds and how to build them."""
    from tasks.lib.engine import connect
    from tasks.lib.errors import CommandFailed, EngineUnavailable
    from tasks.lib.images.store import find_images
    from tasks.lib.progress import Status
    from tasks.lib.stack import compose
    from tasks.lib.stack.plan import pull_call
    from tasks.lib.stack.pull import (
        PullResult,
        build_hint,
        compose_build_command,
        compose_build_result,
        failure,
        plan_pull,
        pull_result,
    )
    from tasks.lib.stack.view import show_pull

    with running(_out(flags.json)) as out:
        s, stack, target = _open(c, flags, out, changes="stack.pull")
        spec = _spec(stack, target)
        spec.check_services(flags.service, stack.name)
        refs = [sv.image for sv in spec.services]
        try:
            with connect(target) as client:
                found = find_images(client, refs)
        except EngineUnavailable as exc:
            if not flags.dry_run:
                raise
            out.warn(f"{exc.line()}; local images not checked, every pull shown")
            found = None
        items = plan_pull(spec, found, s, flags.service, every=flags.all_)
        if flags.dry_run:
            every = " every image" if flags.all_ else ""
            argvs = {
                i.service: compose.argv(stack, target, pull_call(i.service))
                for i in items
                if i.action == "pull"
            }
            if out.json_mode:
                out.json(
                    {
                        **stack.to_json(),
                        "dry_run": True,
                        "all": flags.all_,
                        "items": [{**i.to_json(), "argv": argvs.get(i.service)} for i in items],
                    }
                )
                return
            out.step(f"dry run: {stack.project} would pull{every}")
            for item in items:
                if item.action == "pull":
                    out.command(argvs[item.service])
                    if item.app:
                        out.info(
                            f"# {item.service}: if no registry has {item.image}, "
                            f"{build_hint(item, s)}"
                        )
                elif item.action == "compose-build":
                    build = compose_build_command(item.service, str(stack.file))
                    out.info(
                        f"# {item.service}: {item.image} is built by compose, not pulled: `{build}`"
                    )
            return
        results: list[PullResult] = []
        with (
            connect(target) as client,
            out.progress(f"{stack.project}: pull", [i.service for i in items]) as progress,
        ):
            for item in items:
                progress.start(item.service, text=item.image)
                if item.action == "present":
                    result = PullResult(item.service, item.image, Status.UP_TO_DATE, "present")
                elif item.action == "compose-build":
                    result = compose_build_result(item, str(stack.file))
                else:
                    error = ""
                    try:
                        for line in compose.stream(stack, target, pull_call(item.service)):
                            progress.update(item.service, line=line)
                    except CommandFailed as exc:
                        error = exc.message.split(": ", 1)[-1]
                    after = find_images(client, [item.image])[item.image]
                    before = found.get(item.image) if found is not None else None
                    result = pull_result(item, s, before, after, error)
                results.append(result)
                shown = result.detail if result.status.bad or result.hint else ""
                progress.finish(item.service, result.status, text=shown)
        if flags.json:
            out.json({**stack.to_json(), "images": [r.to_json() for r in results]})
        else:
            show_pull(out, f"{stack.project}: images", results)
        failed = failure(results, stack.name)
        if failed is not None:
            raise failed


@cli_task(ReadFlags, name="urls")
def urls(c: Context, flags: ReadFlags) -> None:
    """The URLs a stack serves, from its Traefik rules and published ports (make urls)."""
    from tasks.lib.stack.health import engine_host
    from tasks.lib.stack.urls import stack_urls
    from tasks.lib.stack.view import show_urls

    with running(_out(flags.json)) as out:
        _s, stack, target = _open(c, flags, out)
        found = stack_urls(_spec(stack, target), engine_host(target))
        if flags.json:
            out.json({**stack.to_json(), "urls": [u.to_json() for u in found]})
            return
        show_urls(out, f"{stack.project}: URLs", found)


ns = Collection("stack", up, down, status, health, logs, pull, urls)
