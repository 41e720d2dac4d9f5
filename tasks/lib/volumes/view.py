"""What a user sees of ``staging.volumes`` and ``volumes.size``: the dry run, the results
table and its notes, the size table. The live progress itself is the one Progress view."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tasks.lib.output import Output, size
from tasks.lib.volumes.copy import CopyRun
from tasks.lib.volumes.plan import CopyPlan
from tasks.lib.volumes.usage import VolumeUsage

COPY_COLUMNS = ("source", "target", "files", "bytes", "seconds", "MB/s", "verified", "status")
SIZE_COLUMNS = ("volume", "driver", "size", "containers")


def dry_run(
    out: Output, plan: CopyPlan, existing: Collection[str] | None, prefix: Sequence[str]
) -> None:
    commands = plan.commands(prefix, existing=existing)
    if out.json_mode:
        out.json({"dry_run": True, **plan.to_json(), "commands": commands})
        return
    out.step(
        f"dry run: {len(plan.pairs)} volume(s); each helper copies, then its manifest (and "
        "checksums) must equal the source's before the marker volume is removed"
    )
    for argv in commands:
        out.command(argv)


def copy_rows(run: CopyRun) -> list[list[str]]:
    return [
        [
            r.source,
            r.target,
            str(r.files),
            size(r.bytes),
            f"{r.seconds:.1f}",
            f"{r.mb_per_s:.1f}",
            r.verified or "-",
            r.status.value,
        ]
        for r in run.results
    ]


def results(out: Output, run: CopyRun) -> None:
    if out.json_mode:
        out.json(run.to_json())
        return
    for name in run.cleaned:
        out.info(f"removed helper container {name}, left by a copy that was killed")
    out.table("staging volumes", COPY_COLUMNS, copy_rows(run))
    for r in run.results:  # the warnings were said before copying
        odd = ", ".join(f"{k}: {n}" for k, n in sorted(r.kinds.items()))
        if odd:
            out.info(f"{r.target}: copied as they are: {odd}")
        for note in r.notes:
            out.info(f"{r.target}: {note}")


def size_rows(rows: Sequence[VolumeUsage]) -> list[list[str]]:
    return [[r.name, r.driver, size(r.size), "\n".join(r.containers) or "-"] for r in rows]


def sizes(out: Output, rows: Sequence[VolumeUsage]) -> None:
    if out.json_mode:
        out.json([r.to_json() for r in rows])
    else:
        out.table("volumes", SIZE_COLUMNS, size_rows(rows))
