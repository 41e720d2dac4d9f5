"""What a user sees of a build: the gate (a line per image, or the full table), the dry run,
the summary table and the failures' log tails. The live progress itself is the one Progress
view of :mod:`tasks.lib.progress`."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.lib.build.flow import BuildRun, Freshnesses
from tasks.lib.build.plan import BuildPlan
from tasks.lib.gate import GateReport
from tasks.lib.output import Output, size


def _name(r: GateReport) -> str:
    return r.service + (f":{r.variant}" if r.variant else "")


def gate_brief(out: Output, reports: Sequence[GateReport]) -> None:
    """One line per image before a build: verdict and the decisive evidence (the generate
    that reads the schema, or the COPY that brings it)."""
    for r in reports:
        ev = r.evidence
        proof = f"L{ev[-1].line} {ev[-1].stage}: {ev[-1].text}" if ev else "-"
        if r.policy == "generate":
            reads = [e for e in ev if "prisma generate" in e.text]
            if reads:
                proof = f"L{reads[-1].line} {reads[-1].stage}: {reads[-1].text}"
        out.info(f"schema gate: {_name(r)} {r.verdict} ({r.policy}) {proof}")
    gate_warnings(out, reports)


def gate_table(out: Output, reports: Sequence[GateReport]) -> None:
    rows = []
    for r in reports:
        ev = "\n".join(f"L{e.line} {e.stage}: {e.text}" for e in r.evidence)
        probs = "\n".join(r.problems)
        detail = (ev + ("\n" + probs if probs else "")).strip() or "-"
        rows.append([r.service, r.variant or "-", r.policy, detail, str(r.verdict)])
    out.table("Schema gate", ["service", "variant", "policy", "evidence", "verdict"], rows)
    gate_warnings(out, reports)


def gate_warnings(out: Output, reports: Sequence[GateReport]) -> None:
    seen: set[str] = set()
    for r in reports:
        for w in r.warnings:
            if w not in seen:
                seen.add(w)
                out.warn(w)


def dry_run(out: Output, plan: BuildPlan, fresh: Freshnesses) -> None:
    skipped = fresh.skipped()
    if out.json_mode:
        out.json(
            [
                {
                    "image": i.name,
                    "argv": i.argv(),
                    "tags": list(i.tags),
                    "up_to_date": i.name in skipped,
                    "reason": fresh.verdicts[i.name].reason if i.name in fresh.verdicts else "",
                    "inputs_sha256": fresh.keys[i.name].sha256 if i.name in fresh.keys else None,
                }
                for i in plan.images
            ]
        )
        return
    for i in plan.images:
        if i.name in skipped:
            out.info(f"up to date, would skip {i.name}: {fresh.verdicts[i.name].reason}")
    todo = [i for i in plan.images if i.name not in skipped]
    if todo:
        out.step("dry run: these commands would run, all at once")
        for img in todo:
            if img.name in fresh.verdicts:
                out.info(f"# {img.name}: {fresh.verdicts[img.name].reason}")
            out.command(img.argv())
            if not img.build_tags:
                out.info(f"#   then, its inputs unchanged since: tag {' '.join(img.tags)}")
    else:
        out.step("dry run: every image is up to date; nothing would be built")


def summary(out: Output, run: BuildRun) -> None:
    if out.json_mode:
        out.json(run.to_json())
        return
    out.table(
        "Build summary",
        ["image", "tags", "size", "duration", "result"],
        [
            [
                r.image.name,
                "\n".join(r.image.tags),
                size(r.size),
                f"{r.seconds:.1f}s",
                r.status.value,
            ]
            for r in run.results
        ],
    )


def failures(out: Output, run: BuildRun) -> None:
    for r in run.results:
        if r.error:
            out.error(f"{r.image.name}: {r.error}")
            if r.moved is None:  # the build itself went well: its log says nothing of it
                out.tail(r.tail[-15:])
