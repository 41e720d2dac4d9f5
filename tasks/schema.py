"""schema.*: prove each image is built from the shared Prisma schema, without building."""

from __future__ import annotations

from invoke import Context, task

from tasks._common import HELP, settings, task_errors


@task(
    help={
        "service": "only this service (repeatable; default: every service)",
        "variant": "only this variant (translator: cpu, gpu, gpu-cu121, gpu-cu118; default: all)",
        "root": HELP["root"],
        "json": HELP["json"],
    },
    iterable=["service"],
)
def check(
    c: Context,
    service: list[str] | None = None,
    variant: str = "",
    root: str = "",
    json: bool = False,
) -> None:
    """Check every Dockerfile builds from packages/shared/prisma/schema.prisma."""
    from tasks.lib import build_flow
    from tasks.lib.build_plan import Target
    from tasks.lib.errors import SchemaGateError
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        s = settings(c, root=root)
        names = list(service or []) or [svc.name for svc in s.services]
        targets: list[Target] = []
        for name in names:
            svc = s.service(name)
            if variant:
                svc.variant(variant)  # validates
                targets.append(Target(name, variant))
            elif svc.variants:
                targets.extend(Target(name, v.name) for v in svc.variants)
            else:
                targets.append(Target(name))
        reports = build_flow.run_gate(build_flow.gate_for_targets(s, targets))
        if json:
            out.json([r.to_json() for r in reports])
            if any(r.verdict == "fail" for r in reports):
                raise SchemaGateError("schema gate failed")
            return
        build_flow.gate_or_fail(out, reports)
        out.info(f"schema gate passed for {len(reports)} image(s)")
