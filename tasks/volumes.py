"""volumes.*: what the engine's volumes hold (the staging plan's step 6)."""

from __future__ import annotations

from invoke import Collection, Context, task

from tasks._common import HELP, engine_target, task_errors

SIZE_HELP = {
    "all": "every volume, not only those whose name contains meeshy",
    "context": HELP["context"],
    "json": HELP["json"],
}


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


ns = Collection("volumes", size)
