"""schema.*: prove each image is built from the shared Prisma schema, without building."""

from __future__ import annotations

from invoke import Collection, Context

from tasks.invoke_adapter import (
    JsonFlags,
    RootFlags,
    ServiceFlags,
    cli_task,
    flag,
    running,
    settings,
)


class CheckFlags(RootFlags, ServiceFlags, JsonFlags):
    variant: str = flag(
        default="",
        help="only this variant (translator: cpu, gpu, gpu-cu121, gpu-cu118; default: all)",
    )


@cli_task(CheckFlags, name="check")
def check(c: Context, flags: CheckFlags) -> None:
    """Check every Dockerfile builds from packages/shared/prisma/schema.prisma."""
    from tasks.lib.build import flow, view
    from tasks.lib.build.plan import every_variant, gate_input
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        targets = every_variant(s, flags.service, flags.variant)
        reports = flow.run_gate([gate_input(s, s.service(t.service), t.variant) for t in targets])
        refused = flow.refusal(reports)
        if flags.json:
            out.json([r.to_json() for r in reports])
        else:
            view.gate_table(out, reports)
        if refused:
            raise refused
        out.info(f"schema gate passed for {len(reports)} image(s)")


ns = Collection("schema", check)
