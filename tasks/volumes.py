"""volumes.*: what the engine's volumes hold (the staging plan's step 6)."""

from __future__ import annotations

from invoke import Collection, Context

from tasks.invoke_adapter import EngineFlags, JsonFlags, cli_task, engine_target, flag, running


class SizeFlags(EngineFlags, JsonFlags):
    all_: bool = flag(default=False, help="every volume, not only those whose name contains meeshy")


@cli_task(SizeFlags, name="size")
def size(c: Context, flags: SizeFlags) -> None:
    """Size of every meeshy volume and the containers using it (docker system df -v)."""
    from tasks.lib.engine import connect
    from tasks.lib.output import Output
    from tasks.lib.volumes import usage, view

    with running(Output(json_mode=flags.json)) as out:
        with connect(engine_target(c, flags.context)) as client:
            rows = usage.volume_usage(client, all_volumes=flags.all_)
        view.sizes(out, rows)


ns = Collection("volumes", size)
