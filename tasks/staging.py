"""staging.*: tag, push, generate the staging compose file, copy volumes (the staging plan)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from invoke import Collection, Context, task

from tasks._common import HELP, engine_target, settings, task_errors
from tasks.images import _BASE, _REGISTRY_URL, _client, _push, _show_meeshy
from tasks.invoke_adapter import DryRunFlags, EngineFlags, JsonFlags, cli_task, flag, running

if TYPE_CHECKING:
    from tasks.lib.volumes.plan import CopyPlan


@task(
    help={
        "prod": "prod compose file, relative to the root "
        "(default infrastructure/docker/compose/docker-compose.prod.yml)",
        "out": "staging file to write, in the prod file's folder (default: "
        "docker-compose.staging.yml there)",
        "port_offset": "host ports move by this much (default 10000; next free port if busy)",
        "port": "explicit host port move PROD:STAGING (repeatable), wins over the offset",
        "force": "overwrite an existing staging file",
        "dry_run": "print the file (or a diff against the existing one); write nothing",
        "root": HELP["root"],
        "json": HELP["json"],
    },
    iterable=["port"],
)
def compose(
    c: Context,
    prod: str = "",
    out: str = "",
    port_offset: int = 10000,
    port: list[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    root: str = "",
    json: bool = False,
) -> None:
    """Generate docker-compose.staging.yml from the prod one: own names, ports, domains."""
    from tasks.lib import staging_flow as sf
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import Output

    o = Output(json_mode=json)
    with task_errors(o):
        s = settings(c, root=root)
        job = sf.resolve_job(
            s.root,
            prod or sf.DEFAULT_PROD,
            out,
            port_offset=port_offset,
            ports=sf.parse_port_map(port or []),
        )
        result = sf.build(job)
        text = result.render()
        sf.validate(text, job.prod.parent)
        info = sf.summary(result, job)
        existing = job.out.read_text(encoding="utf-8") if job.out.exists() else None
        if dry_run:
            if json:
                o.json({**info, "dry_run": True, "content": text})
            elif existing is None:
                o.step(f"dry run: would write {job.out}")
                print(text, end="")
            else:
                d = sf.diff(existing, text, job.out)
                o.step(f"dry run: {job.out} exists; " + ("unchanged" if not d else "diff:"))
                print(d, end="")
            return
        if existing is not None and existing != text and not force:
            raise ConfigError(
                f"{job.out} exists and differs",
                hint="pass --force to overwrite, or --dry-run to see the diff",
            )
        sf.write_atomic(job.out, text)
        if json:
            o.json(info)
            return
        o.step(f"wrote {job.out} (passes `docker compose config`)")
        for service, wanted, got in sf.bumped_ports(result, job.options):
            o.warn(f"{service}: host port {wanted} is busy here, using {got} (--port to choose)")
        o.table(
            "Host ports moved",
            ["service", "prod", "staging"],
            [[m["service"], m["prod"], m["staging"]] for m in info["port_moves"]],
        )
        o.table(
            "Volumes", ["prod", "staging"], [[v["prod"], v["staging"]] for v in info["volumes"]]
        )
        if info["shared_with_prod"]:
            o.table(
                "Host files SHARED with prod (bind mounts kept)",
                ["service", "source", "target", "mode"],
                [
                    [b["service"], b["source"], b["target"], "ro" if b["read_only"] else "rw"]
                    for b in info["shared_with_prod"]
                ],
            )


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class VolumesFlags(EngineFlags, DryRunFlags, JsonFlags):
    """The flags of staging.volumes."""

    volume: list[str] = flag(  # noqa: RUF009
        [],
        "copy this volume instead of the default set (gateway and web uploads); repeatable; "
        "NAME (target from the staging naming rule) or SOURCE:TARGET",
    )
    include_models: bool = flag(False, "also copy meeshy-models-data (ML models, 5-10 GB)")
    force: bool = flag(
        False, "replace a non-empty target: it becomes an exact copy (extra files removed)"
    )
    checksum: bool = flag(
        False,
        "also verify content: every file compared byte for byte with the source (md5 of both "
        "sides when the volume holds symlinks)",
    )
    helper_image: str = flag(
        "alpine",
        "image of the helper container, one per volume (needs sh, cp, find, stat, xargs, tar, "
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
            existing = copy.volume_names(client)
            with copy.CopySession(client, plan(existing), existing) as session:
                for warning in session.prepare():
                    out.warn(warning)
                with out.progress("Copying volumes", session.plan.targets) as progress:
                    run = session.run(progress)
        view.results(out, run)
        failed = copy.failure(run)
        if failed:
            raise failed


ns = Collection("staging", staging_tag, staging_push, compose, volumes)
