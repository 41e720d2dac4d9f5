"""The build workflow: plan -> schema gate -> (dry run | preflight -> concurrent builds ->
summary). Used by every ``build.*`` task and by ``release``; never imports Invoke."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.lib.build_engine import BuildResult
from tasks.lib.build_plan import BuildOptions, BuildPlan, ImageBuild, Target, plan_builds
from tasks.lib.config import Settings
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import CommandFailed, SchemaGateError
from tasks.lib.gate import GateInput, GateReport, check
from tasks.lib.output import Output


def gate_inputs(settings: Settings, images: Sequence[ImageBuild]) -> list[GateInput]:
    out: list[GateInput] = []
    for img in images:
        svc = settings.service(img.service)
        out.append(
            GateInput(
                service=img.service,
                variant=img.variant,
                policy=svc.schema_policy,
                root=settings.root,
                dockerfile=svc.dockerfile,
                context=settings.context,
                build_args=dict(img.build_args),
                schema=settings.schema,
            )
        )
    return out


def gate_for_targets(settings: Settings, targets: Sequence[Target]) -> list[GateInput]:
    """Gate inputs for services/variants without planning tags (``schema.check``)."""
    out: list[GateInput] = []
    for t in targets:
        svc = settings.service(t.service)
        variant = svc.variant(t.variant)
        args = dict(variant.build_args) if variant else {}
        args.update(svc.build_args)
        out.append(
            GateInput(
                service=svc.name,
                variant=variant.name if variant else None,
                policy=svc.schema_policy,
                root=settings.root,
                dockerfile=svc.dockerfile,
                context=settings.context,
                build_args=args,
                schema=settings.schema,
            )
        )
    return out


def run_gate(inputs: Sequence[GateInput]) -> list[GateReport]:
    return [check(i) for i in inputs]


def render_gate_brief(out: Output, reports: Sequence[GateReport]) -> None:
    """One line per image before a build: verdict and the decisive evidence (the last line:
    the generate that reads the schema, or the COPY that brings it)."""
    for r in reports:
        name = r.service + (f":{r.variant}" if r.variant else "")
        proof = (
            f"L{r.evidence[-1].line} {r.evidence[-1].stage}: {r.evidence[-1].text}"
            if (r.evidence)
            else "-"
        )
        if r.policy == "generate":
            reads = [e for e in r.evidence if "prisma generate" in e.text]
            if reads:
                proof = f"L{reads[-1].line} {reads[-1].stage}: {reads[-1].text}"
        out.info(f"schema gate: {name} {r.verdict} ({r.policy}) {proof}")
    _warnings(out, reports)


def render_gate(out: Output, reports: Sequence[GateReport]) -> None:
    rows = []
    for r in reports:
        ev = "\n".join(f"L{e.line} {e.stage}: {e.text}" for e in r.evidence)
        probs = "\n".join(r.problems)
        rows.append(
            [
                r.service,
                r.variant or "-",
                r.policy,
                (ev + ("\n" + probs if probs else "")).strip() or "-",
                r.verdict,
            ]
        )
    out.table("Schema gate", ["service", "variant", "policy", "evidence", "verdict"], rows)
    _warnings(out, reports)


def _warnings(out: Output, reports: Sequence[GateReport]) -> None:
    seen: set[str] = set()
    for r in reports:
        for w in r.warnings:
            if w not in seen:
                seen.add(w)
                out.warn(w)


def gate_or_fail(out: Output, reports: Sequence[GateReport], *, brief: bool = False) -> None:
    """Show the gate (the full table, or a line per image when ``brief`` and all passed) and
    raise SchemaGateError naming the first refusal."""
    failed = [r for r in reports if r.verdict == "fail"]
    if brief and not failed:
        render_gate_brief(out, reports)
    else:
        render_gate(out, reports)
    if failed:
        first = failed[0]
        name = first.service + (f":{first.variant}" if first.variant else "")
        problem = first.problems[0] if first.problems else "schema gate failed"
        raise SchemaGateError(
            f"schema gate refused {name}: {problem}",
            hint="nothing was built; fix it, or (never for a release) pass --skip-schema-check",
        )


def plan(
    settings: Settings,
    targets: Sequence[Target],
    options: BuildOptions,
    *,
    skip_schema_check: bool = False,
) -> BuildPlan:
    # An image built without the gate gets no schema label: the label is a claim the gate
    # proved, so staging.tag and images.validate then treat the image as unproven.
    return plan_builds(
        settings,
        targets,
        options,
        schema_sha256=None if skip_schema_check else settings.schema_sha256(),
        skip_schema_check=skip_schema_check,
    )


def execute(
    plan_: BuildPlan,
    out: Output,
    *,
    engine: EngineTarget,
    progress: str = "auto",
    dry_run: bool = False,
    settings: Settings,
) -> list[BuildResult]:
    """Gate, then dry-run or build. Raises TaskError on refusal or any failed image."""
    from tasks.lib.build_engine import inspect_results, run_builds, whales_stream
    from tasks.lib.build_view import (
        LiveReporter,
        PlainReporter,
        results_json,
        summary_rows,
    )

    engine.describe()  # an unknown --context is a clear error, dry run or not
    if plan_.skip_schema_check:
        out.warn(
            "--skip-schema-check: these images are NOT proven to be built from "
            f"{plan_.schema}; do not release them"
        )
    else:
        gate_or_fail(out, run_gate(gate_inputs(settings, plan_.images)), brief=True)

    if dry_run:
        if out.json_mode:
            out.json([{"image": i.name, "argv": i.argv()} for i in plan_.images])
        else:
            out.step("dry run: these commands would run, all at once")
            for img in plan_.images:
                out.command(img.argv())
        return []

    from tasks.lib.engine import sdk_client

    client = sdk_client(engine, timeout=10)  # preflight: fails fast, before any build starts
    try:
        out.step(
            f"building {len(plan_.images)} image(s) on BuildKit: "
            + ", ".join(i.name for i in plan_.images)
        )
        stream = whales_stream(engine)
        use_live = not out.plain and not out.json_mode and progress == "auto"
        if use_live:
            with LiveReporter(out, plan_.images) as live:
                results = run_builds(plan_.images, stream, live)
        else:
            mode = "quiet" if out.json_mode else progress
            results = run_builds(plan_.images, stream, PlainReporter(out, mode))
        inspect_results(results, client)
    finally:
        client.close()
    if out.json_mode:
        out.json(results_json(results))
    else:
        out.table(
            "Build summary", ["image", "tags", "size", "duration", "result"], summary_rows(results)
        )
    failed = [r for r in results if not r.ok]
    for r in failed:
        out.error(f"{r.image.name}: {r.error}")
        for line in r.tail[-15:]:
            out.err.print(f"  | {line}", markup=False, highlight=False)
    if failed:
        names = ", ".join(r.image.name for r in failed)
        raise CommandFailed(
            f"{len(failed)} of {len(results)} image(s) failed: {names}",
            hint="see the log tail above; the other images were built",
        )
    return results
