"""How ``staging.compose`` shows its result: the file or the diff on stdout for a dry run,
warnings on stderr, tables of what moved. Text from files and the engine goes through
:class:`~tasks.lib.output.Output`, which never reads it as markup."""

from __future__ import annotations

import shlex

from tasks.lib.compose.flow import ComposeRun
from tasks.lib.output import Output


def _warnings(out: Output, run: ComposeRun) -> None:
    for b in run.bumped:
        out.warn(
            f"{b.service}: host port {b.wanted} is busy here, using {b.got} (--port to choose)"
        )
    for e in run.staging.external:
        out.warn(
            f"external {e.kind} {e.staging} (staging's twin of {e.prod}) is not created by "
            f"compose: create it before `docker compose up` ({shlex.join(e.create_argv())})"
        )


def show(out: Output, run: ComposeRun) -> None:
    """Render one run of ``staging.compose``."""
    if out.json_mode:
        _warnings(out, run)
        out.json(run.to_json())
        return
    path = run.job.out
    if run.dry_run:
        if run.state == "new":
            out.step(f"dry run: would write {path} (mode {run.mode:04o})")
            out.text(run.text)
        elif run.state == "unchanged":
            out.step(f"dry run: {path} exists; unchanged")
        else:
            out.step(f"dry run: {path} exists; diff:")
            out.text(run.diff)
        _warnings(out, run)
        return
    if run.written:
        out.step(
            f"wrote {path} (mode {run.mode:04o}; passes `docker compose config`, "
            "shares nothing with prod)"
        )
    else:
        out.step(f"{path} is up to date (passes `docker compose config`, shares nothing with prod)")
    _warnings(out, run)
    staging = run.staging
    out.table(
        "Host ports moved",
        ["service", "prod", "staging"],
        [[m.service, m.prod, m.staging] for m in staging.port_moves],
    )
    out.table("Volumes", ["prod", "staging"], [list(v) for v in staging.renamed_volumes])
    if staging.shared_binds:
        out.table(
            "Host files SHARED with prod (bind mounts kept)",
            ["service", "source", "target", "mode"],
            [
                [b.service, b.source, b.target, "ro" if b.read_only else "rw"]
                for b in staging.shared_binds
            ],
        )
    if run.urls:
        out.table("Staging URLs (Traefik Host rules)", ["url"], [[u] for u in run.urls])
