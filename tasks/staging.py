"""staging.*: tag, push, generate the staging compose file, copy volumes (the staging plan)."""

from __future__ import annotations

import dataclasses

from invoke import Collection, Context, task

from tasks._common import HELP, engine_target, task_errors
from tasks.images import PushFlags as ImagesPushFlags
from tasks.images import run_push
from tasks.invoke_adapter import (
    DryRunFlags,
    ImageFlags,
    JsonFlags,
    RootFlags,
    ServiceFlags,
    cli_task,
    flag,
    running,
    settings,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ComposeFlags(RootFlags, JsonFlags, DryRunFlags):
    prod: str = flag(
        "",
        "prod compose file, relative to the root "
        "(default infrastructure/docker/compose/docker-compose.prod.yml)",
    )
    out: str = flag(
        "",
        "staging file to write, in the prod file's folder "
        "(default: docker-compose.staging.yml there)",
    )
    port_offset: int = flag(
        10000, "host ports move by this much (default 10000; next free port if busy)"
    )
    port: list[str] = flag(  # noqa: RUF009
        [], "explicit host port move PROD:STAGING (repeatable), wins over the offset"
    )
    force: bool = flag(False, "overwrite an existing staging file that differs")
    dry_run: bool = flag(
        False, "print the file (or a diff against the existing one); write nothing"
    )


@cli_task(ComposeFlags, name="compose")
def compose(c: Context, flags: ComposeFlags) -> None:
    """Generate docker-compose.staging.yml from the prod one: own names, ports, domains."""
    from tasks.lib.compose import flow, view
    from tasks.lib.compose.ports import parse_port_map
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        job = flow.resolve_job(
            settings(c, flags).root,
            flags.prod or flow.DEFAULT_PROD,
            flags.out,
            port_offset=flags.port_offset,
            ports=parse_port_map(flags.port),
        )
        view.show(out, flow.run(job, force=flags.force, dry_run=flags.dry_run))


@dataclasses.dataclass(frozen=True, kw_only=True)
class TagFlags(ServiceFlags, ImageFlags, DryRunFlags):
    service: list[str] = flag(  # noqa: RUF009
        [], "tag only this service (repeatable; default: meeshy.all, gateway, translator, web)"
    )
    from_: str = flag("latest", "source tag (default: latest)")
    to: str = flag("staging", "tag to create (default: staging)")
    allow_stale: bool = flag(
        False, "tag images built from another schema too (the default refuses them)"
    )
    dry_run: bool = flag(
        False, "check everything and print the tags that would be created; change nothing"
    )


@cli_task(TagFlags)
def tag(c: Context, flags: TagFlags) -> None:
    """Tag <registry>/meeshy-<svc>:latest as :staging, all or nothing (plan step 2)."""
    from tasks.lib.engine import EngineTarget, connect
    from tasks.lib.errors import Interrupted
    from tasks.lib.images import freshness, listing, refs, store, tags, view
    from tasks.lib.output import Output
    from tasks.lib.progress import Status

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        services = refs.select_services(s, flags.service)
        wanted = tags.staging_refs(s, services, flags.from_, flags.to)
        engine = EngineTarget(context=s.docker_context)
        with connect(engine) as client:
            rules = freshness.default_rules(s, client, [svc.name for svc in services])
            found = store.find_images(client, [r for _, src, dst in wanted for r in (src, dst)])
            plan = tags.plan_staging_tags(wanted, found, rules, allow_stale=flags.allow_stale)
            view.stale_warnings(out, plan)
            if flags.dry_run:
                view.tag_dry_run(out, plan, engine.describe())
                if out.json_mode:
                    out.json(plan.to_json(dry_run=True))
                return
            record = tags.TagRecord(plan)
            try:
                tags.apply_tags(client, plan, record)
                view.tagged(out, plan)
                patterns = refs.listing_patterns(s)
                images = store.list_images(client, patterns)
                rows = listing.image_rows(images, patterns, s.schema_sha256, per_tag=True)
                if out.json_mode:
                    data = plan.to_json(dry_run=False, status=Status.TAGGED)
                    out.json({**data, "images": [r.to_json() for r in rows]})
                else:
                    view.listing(out, f"meeshy images of {s.registry}", rows, versions=False)
            except Interrupted as exc:
                if record.complete:  # the work is done: say so, do not undo it
                    raise tags.interrupted_after(exc, plan) from None
                raise


@dataclasses.dataclass(frozen=True, kw_only=True)
class PushFlags(ImagesPushFlags):
    to: str = flag("staging", "the staging tag to push (default: staging)")


@cli_task(PushFlags)
def push(c: Context, flags: PushFlags) -> None:
    """Push the staging tags to a registry, with live progress per image."""
    from tasks.lib.images import push as core
    from tasks.lib.images import refs
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        refs.check_tag(flags.to, "--to")
        services = refs.select_services(s, flags.service)
        wanted = {svc.name: [flags.to] for svc in services}
        targets = core.plan_pushes(s, services, wanted, registry_url=flags.registry_url)
        run_push(out, s, targets, dry_run=flags.dry_run, layers=False)


COPY_HELP = {
    "volume": "copy this volume instead of the default set (gateway and web uploads); "
    "repeatable; NAME (target from the staging naming rule) or SOURCE:TARGET",
    "include_models": "also copy meeshy-models-data (ML models, 5-10 GB)",
    "force": "replace a non-empty target: it becomes an exact copy (extra files removed)",
    "checksum": "also verify content: sha256 of every file, source against target",
    "helper_image": "image of the throwaway copy containers (needs sh, cp, find, stat, sort, "
    "xargs, sha256sum, du; default: alpine)",
    "context": HELP["context"],
    "dry_run": "print the docker commands that would run, change nothing (the engine, if "
    "reachable, is only asked which volumes exist)",
    "json": HELP["json"],
}


@task(name="volumes", iterable=["volume"], help=COPY_HELP, auto_shortflags=False)
def volumes(
    c: Context,
    *,
    volume: list[str] | None = None,
    include_models: bool = False,
    force: bool = False,
    checksum: bool = False,
    helper_image: str = "alpine",
    context: str = "",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Copy prod volumes to their staging twins, verified (uploads; --include-models)."""
    from tasks.lib import volumes as core
    from tasks.lib.engine import sdk_client
    from tasks.lib.errors import EngineUnavailable
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        target = engine_target(c, context)
        prefix = target.cli_prefix()

        def plan(existing: set[str] | None) -> core.CopyPlan:
            return core.plan_copy(
                volume or [],
                include_models=include_models,
                helper_image=helper_image,
                force=force,
                checksum=checksum,
                existing=existing,
            )

        plan(None)  # refusals that need no engine come first
        if dry_run:
            existing: set[str] | None = None
            try:
                client = sdk_client(target)
                try:
                    existing = core.volume_names(client)
                finally:
                    client.close()
            except EngineUnavailable as exc:
                out.warn(f"{exc.line()}; sources not checked")
            dry = plan(existing)
            commands = dry.commands(prefix, existing=existing)
            if json:
                out.json(
                    {"dry_run": True, "pairs": [vars(p) for p in dry.pairs], "commands": commands}
                )
            else:
                for argv in commands:
                    out.command(argv)
            return
        client = sdk_client(target)
        try:
            existing = core.volume_names(client)
            real = plan(existing)
            with core.reporter_for(out) as reporter:
                results = core.execute_copy(
                    client, real, existing=existing, out=out, reporter=reporter, prefix=prefix
                )
        finally:
            client.close()
        if json:
            out.json([r.as_dict() for r in results])
        else:
            out.table("staging volumes", core.COPY_COLUMNS, core.copy_rows(results))


ns = Collection("staging", tag, push, compose, volumes)
