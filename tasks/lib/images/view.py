"""How image results look: tables and lines through :class:`tasks.lib.output.Output` (which
never reads engine or user text as markup). The only module of this package that renders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.lib.images.journal import TempTag
    from tasks.lib.images.listing import ImageRow
    from tasks.lib.images.push import PushResult, PushTarget
    from tasks.lib.images.tags import TagPlan
    from tasks.lib.images.validate import ValidationResult
    from tasks.lib.output import Output


def format_created(created: str) -> str:
    """``2026-11-02T10:11:12Z`` -> ``2026-11-02 10:11:12`` (UTC, as the engine reports)."""
    return created[:19].replace("T", " ") if len(created) >= 19 else created or "-"


def listing(out: Output, title: str, rows: Sequence[ImageRow], *, versions: bool) -> None:
    from tasks.lib.output import size

    if versions:
        cols = ["repository", "tags", "id", "created", "size", "version", "schema", "matches"]
    else:
        cols = ["repository", "tag", "id", "created", "size", "schema"]
    table: list[list[str]] = []
    for r in rows:
        line = [r.repository, ", ".join(r.tags), r.id, format_created(r.created), size(r.size)]
        if versions:
            line += [r.version or "-", r.schema[:12] or "-", r.schema_state]
        else:
            line.append(r.schema_state)
        table.append(line)
    out.table(title, cols, table)


# --------------------------------------------------------------------------- staging.tag


def stale_warnings(out: Output, plan: TagPlan) -> None:
    for a in plan.actions:
        if not a.fresh:
            out.warn(f"--allow-stale: {a.source} is not built from the current schema ({a.why})")


def tag_dry_run(out: Output, plan: TagPlan, engine: str) -> None:
    out.step(f"dry run: these tags would be created on the engine at {engine}")
    for a in plan.actions:
        out.info(f"{a.source} -> {a.target}  ({a.image_id.removeprefix('sha256:')[:12]})")


def tagged(out: Output, plan: TagPlan) -> None:
    for a in plan.actions:
        out.info(f"tagged {a.source} -> {a.target}")


# --------------------------------------------------------------------------- validate


def validation(out: Output, result: ValidationResult) -> None:
    rows = []
    for r in result.reports:
        for i, c in enumerate(r.checks):
            rows.append(
                [r.ref if i == 0 else "", c.name, c.expected, c.actual, c.verdict.value, c.detail]
            )
    out.table(
        "Image validation", ["image", "check", "expected", "actual", "verdict", "detail"], rows
    )


def validation_failures(out: Output, result: ValidationResult) -> None:
    """One line per failing image on stderr: its first failing check."""
    for r in result.reports:
        if not r.ok:
            f = r.failures()[0]
            out.error(f"{r.ref}: {f.name}: {f.detail or 'failed'}")


# --------------------------------------------------------------------------- push


def push_dry_run(
    out: Output,
    targets: Sequence[PushTarget],
    *,
    engine: str,
    leftovers: Sequence[TempTag] = (),
    missing: Sequence[str] | None = None,
) -> None:
    """What a push would do; ``missing``: sources the engine lacks (None: not checked)."""
    out.step(f"dry run: the engine at {engine} would push these tags, one after another")
    for t in targets:
        via = f" (tagged from {t.source} for the push, then put back)" if t.temporary else ""
        out.info(f"push {t.remote} -> {t.registry}{via}")
    for repo in dict.fromkeys(e.ref.rpartition(":")[0] for e in leftovers if e.tag_restored):
        out.warn(
            f"an interrupted push may leave a digest reference {repo}@...: the next push removes it"
        )
    for e in leftovers:
        if not e.tag_restored:
            out.warn(
                f"an interrupted push left the temporary tag {e.ref}: the next push puts it back"
            )
    if missing is None:
        out.warn("no engine answers: the sources were not checked")
    for ref in missing or ():
        out.warn(f"{ref} does not exist here: the real push would refuse (nothing pushed)")


def push_result(out: Output, result: PushResult) -> None:
    for e in result.cleaned:
        out.warn(f"put back {e.ref}, a temporary tag an interrupted push had left")
    for e, why in result.unrestored:
        out.warn(f"could not put back the temporary tag {e.ref} ({why}): the next push retries")
    out.table(
        "Pushes",
        ["image", "registry", "status", "digest"],
        [
            [o.target.remote, o.target.registry, o.status.value, o.digest or _first(o.error)]
            for o in result.outcomes
        ],
    )
    out.step(f"pushed {len(result.pushed)} tag(s) in {result.seconds:.1f}s")


def _first(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""
