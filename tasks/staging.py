"""staging.*: tag, push, generate the staging compose file, copy volumes (the staging plan)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from invoke import Collection, Context, task

from tasks._common import HELP, engine_target, settings, task_errors
from tasks.images import _BASE, _REGISTRY_URL, _client, _push, _show_meeshy
from tasks.invoke_adapter import DryRunFlags, JsonFlags, RootFlags, cli_task, flag, running
from tasks.invoke_adapter import settings as resolve_settings

if TYPE_CHECKING:
    pass


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
            resolve_settings(c, flags).root,
            flags.prod or flow.DEFAULT_PROD,
            flags.out,
            port_offset=flags.port_offset,
            ports=parse_port_map(flags.port),
        )
        view.show(out, flow.run(job, force=flags.force, dry_run=flags.dry_run))


@task(
    name="tag",
    help={
        **_BASE,
        "only": "tag only this service (repeatable; default: gateway, translator and web)",
        "from_": "source tag (default: latest)",
        "to": "tag to create (default: staging)",
        "allow_stale": "tag images built from another schema too (the default refuses them)",
        "dry_run": "check everything and print the tags that would be created; change nothing",
        "json": HELP["json"],
    },
    iterable=["only"],
)
def staging_tag(
    c: Context,
    only: list[str] | None = None,
    from_: str = "latest",
    to: str = "staging",
    allow_stale: bool = False,
    dry_run: bool = False,
    root: str = "",
    registry: str = "",
    context: str = "",
    json: bool = False,
) -> None:
    """Tag <registry>/meeshy-<svc>:latest as :staging, all or nothing (plan step 2)."""
    from tasks.lib import images
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context)
        refs = images.staging_refs(s, images.select_services(s, only or []), from_, to)
        sha = s.schema_sha256
        client = _client(s)
        try:
            found = images.lookup(client, [src for _, src, _ in refs])
            plan = images.plan_staging_tags(refs, found, sha, allow_stale=allow_stale)
            for src in plan.stale:
                out.warn(f"--allow-stale: {src} is not built from the current schema")
            tags = [
                {"source": a.source, "target": a.target, "image_id": a.image_id}
                for a in plan.actions
            ]
            if dry_run:
                out.step("dry run: these tags would be created")
                for a in plan.actions:
                    out.info(f"{a.source} -> {a.target}  ({a.image_id[7:19]})")
                if json:
                    out.json({"dry_run": True, "tags": tags, "stale": list(plan.stale)})
                return
            images.apply_tags(client, plan)
            for a in plan.actions:
                out.info(f"tagged {a.source} -> {a.target}")
            if json:
                rows = images.image_rows(images.list_meeshy_images(client), sha, per_tag=True)
                out.json(
                    {
                        "dry_run": False,
                        "tags": tags,
                        "stale": list(plan.stale),
                        "images": [r.as_json() for r in rows],
                    }
                )
            else:
                _show_meeshy(out, client, s, title="meeshy images")
        finally:
            client.close()


@task(
    name="push",
    help={
        **_BASE,
        "only": "push only this service (repeatable; default: gateway, translator and web)",
        "to": "the staging tag to push (default: staging)",
        "registry_url": _REGISTRY_URL,
        "dry_run": "print what would be pushed; change nothing (needs no engine)",
        "json": HELP["json"],
    },
    iterable=["only"],
)
def staging_push(
    c: Context,
    only: list[str] | None = None,
    to: str = "staging",
    registry_url: str = "",
    dry_run: bool = False,
    root: str = "",
    registry: str = "",
    context: str = "",
    json: bool = False,
) -> None:
    """Push the staging tags to a registry, with live progress per image."""
    from tasks.lib import images
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context)
        images.check_tag(to, "--to")
        names = list(only or []) or list(s.all)
        _push(
            out,
            s,
            {n: [to] for n in names},
            names,
            registry_url=registry_url,
            dry_run=dry_run,
            layers=False,
        )


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


ns = Collection("staging", staging_tag, staging_push, compose, volumes)
