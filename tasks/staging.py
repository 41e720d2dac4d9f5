"""staging.*: tag, push, generate the staging compose file, copy volumes (the staging plan)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context

from tasks.images import PushFlags as ImagesPushFlags
from tasks.images import run_push
from tasks.invoke_adapter import (
    DryRunFlags,
    EngineFlags,
    ImageFlags,
    JsonFlags,
    RootFlags,
    ServiceFlags,
    cli_task,
    engine_target,
    flag,
    running,
    settings,
)

if TYPE_CHECKING:
    from tasks.lib.volumes.plan import CopyPlan


class ComposeFlags(RootFlags, JsonFlags, DryRunFlags):
    prod: str = flag(
        default="",
        help="prod compose file, relative to the root "
        "(default infrastructure/docker/compose/docker-compose.prod.yml)",
    )
    out: str = flag(
        default="",
        help="staging file to write, in the prod file's folder "
        "(default: docker-compose.staging.yml there)",
    )
    port_offset: int = flag(
        default=10000, help="host ports move by this much (default 10000; next free port if busy)"
    )
    port: list[str] = flag(
        default=[], help="explicit host port move PROD:STAGING (repeatable), wins over the offset"
    )
    force: bool = flag(default=False, help="overwrite an existing staging file that differs")
    dry_run: bool = flag(
        default=False, help="print the file (or a diff against the existing one); write nothing"
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


class TagFlags(ServiceFlags, ImageFlags, DryRunFlags):
    service: list[str] = flag(
        default=[],
        help="tag only this service (repeatable; default: meeshy.all, gateway, translator, web)",
    )
    from_: str = flag(default="latest", help="source tag (default: latest)")
    to: str = flag(default="staging", help="tag to create (default: staging)")
    allow_stale: bool = flag(
        default=False, help="tag images built from another schema too (the default refuses them)"
    )
    dry_run: bool = flag(
        default=False,
        help="check everything and print the tags that would be created; change nothing",
    )


@cli_task(TagFlags)
def tag(c: Context, flags: TagFlags) -> None:
    """Tag <registry>/meeshy-<svc>:latest as :staging, all or nothing (plan step 2)."""
    from contextlib import nullcontext

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
        # a real run holds the registry's staging lock from reading the tags to writing
        # them: two at once, one interrupted, left a mix of old and new tags
        lock = nullcontext() if flags.dry_run else tags.staging_lock(engine, s.registry)
        with connect(engine) as client, lock:
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


class PushFlags(ImagesPushFlags):
    to: str = flag(default="staging", help="the staging tag to push (default: staging)")


@cli_task(PushFlags)
def push(c: Context, flags: PushFlags) -> None:
    """Push the staging tags to a registry, with live progress per image."""
    from tasks.lib.config import check_tag
    from tasks.lib.images import push as core
    from tasks.lib.images import refs
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        check_tag(flags.to, "--to")
        services = refs.select_services(s, flags.service)
        wanted = {svc.name: [flags.to] for svc in services}
        targets = core.plan_pushes(s, services, wanted, registry_url=flags.registry_url)
        run_push(out, s, targets, dry_run=flags.dry_run, layers=False)


class VolumesFlags(EngineFlags, DryRunFlags, JsonFlags):
    """The flags of staging.volumes."""

    volume: list[str] = flag(
        default=[],
        help="copy this volume instead of the default set (gateway and web uploads); repeatable; "
        "NAME (target from the staging naming rule) or SOURCE:TARGET",
    )
    include_models: bool = flag(
        default=False, help="also copy meeshy-models-data (ML models, 5-10 GB)"
    )
    force: bool = flag(
        default=False,
        help="replace a non-empty target: it becomes an exact copy (extra files removed)",
    )
    checksum: bool = flag(
        default=False,
        help="also verify content: every file compared byte for byte with the source (md5 of both "
        "sides when the volume holds symlinks)",
    )
    helper_image: str = flag(
        default="alpine",
        help="image of the helper container, one per volume (needs sh, cp, find, stat, xargs, tar, "
        "md5sum, truncate, dd, du: busybox, alpine, debian; default: alpine)",
    )


@cli_task(VolumesFlags, name="volumes")
def volumes(c: Context, flags: VolumesFlags) -> None:
    """Copy prod volumes to their staging twins, verified (uploads; --include-models)."""
    from tasks.lib.engine import connect
    from tasks.lib.errors import EngineUnavailable
    from tasks.lib.output import Output
    from tasks.lib.volumes import copy, view
    from tasks.lib.volumes.plan import plan_copy

    with running(Output(json_mode=flags.json)) as out:
        target = engine_target(c, flags.context)

        def plan(existing: set[str] | None) -> CopyPlan:
            return plan_copy(
                flags.volume,
                include_models=flags.include_models,
                helper_image=flags.helper_image,
                force=flags.force,
                checksum=flags.checksum,
                existing=existing,
            )

        plan(None)  # refusals that need no engine come first
        if flags.dry_run:
            existing: set[str] | None = None
            try:
                with connect(target, timeout=10) as client:
                    existing = copy.volume_names(client)
            except EngineUnavailable as exc:
                out.warn(f"{exc.message}; sources not checked")
            view.dry_run(out, plan(existing), existing, target.cli_prefix())
            return
        with connect(target) as client:
            vols = copy.volumes(client)  # one call: the plan's names, the session's records
            with copy.CopySession(client, plan(set(vols)), vols) as session:
                for warning in session.prepare():
                    out.warn(warning)
                with out.progress("Copying volumes", session.plan.targets) as progress:
                    run = session.run(progress)
            failed = copy.run_error(run, client, target)  # asked while the client is open
        view.results(out, run)
        if failed:
            raise failed


ns = Collection("staging", tag, push, compose, volumes)
