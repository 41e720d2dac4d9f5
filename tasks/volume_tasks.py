"""staging.volumes (copy prod volumes to their staging twins) and volumes.size (plan step 6).

Thin tasks: parse flags, call :mod:`tasks.lib.volumes`, render its results. The namespace
exposes ``copy`` as ``staging.volumes`` and ``size`` as ``volumes.size``.
"""

from __future__ import annotations

from invoke import Context, task

from tasks._common import HELP, engine_target, task_errors

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

SIZE_HELP = {
    "all": "every volume, not only those whose name contains meeshy",
    "context": HELP["context"],
    "json": HELP["json"],
}


@task(name="volumes", iterable=["volume"], help=COPY_HELP, auto_shortflags=False)
def copy(
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


@task(name="size", help=SIZE_HELP)
def size(c: Context, *, all_: bool = False, context: str = "", json: bool = False) -> None:
    """Size of every meeshy volume and the containers using it (docker system df -v)."""
    from tasks.lib import volumes as core
    from tasks.lib.engine import sdk_client
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        target = engine_target(c, context)
        client = sdk_client(target)
        try:
            rows = core.volume_usage(client, all_volumes=all_)
        finally:
            client.close()
        if json:
            out.json([r.as_dict() for r in rows])
        else:
            out.table("volumes", core.SIZE_COLUMNS, core.size_rows(rows))
