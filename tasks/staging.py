"""staging.*: tag, push, generate the staging compose file, copy volumes (the staging plan)."""

from __future__ import annotations

from invoke import Context, task

from tasks._common import HELP, settings, task_errors


@task(
    help={
        "prod": "prod compose file, relative to the root "
        "(default infrastructure/docker/compose/docker-compose.prod.yml)",
        "out": "staging file to write, in the prod file's folder (default: "
        "docker-compose.staging.yml there)",
        "port_offset": "host ports move by this much (default 10000; next free port if busy)",
        "port": "explicit host port move PROD:STAGING (repeatable), wins over the offset",
        "force": "overwrite an existing staging file",
        "dry_run": "print the file (or a diff against the existing one); write nothing",
        "root": HELP["root"],
        "json": HELP["json"],
    },
    iterable=["port"],
)
def compose(
    c: Context,
    prod: str = "",
    out: str = "",
    port_offset: int = 10000,
    port: list[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    root: str = "",
    json: bool = False,
) -> None:
    """Generate docker-compose.staging.yml from the prod one: own names, ports, domains."""
    from tasks.lib import staging_flow as sf
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import Output

    o = Output(json_mode=json)
    with task_errors(o):
        s = settings(c, root=root)
        job = sf.resolve_job(
            s.root,
            prod or sf.DEFAULT_PROD,
            out,
            port_offset=port_offset,
            ports=sf.parse_port_map(port or []),
        )
        result = sf.build(job)
        text = result.render()
        sf.validate(text, job.prod.parent)
        info = sf.summary(result, job)
        existing = job.out.read_text(encoding="utf-8") if job.out.exists() else None
        if dry_run:
            if json:
                o.json({**info, "dry_run": True, "content": text})
            elif existing is None:
                o.step(f"dry run: would write {job.out}")
                print(text, end="")
            else:
                d = sf.diff(existing, text, job.out)
                o.step(f"dry run: {job.out} exists; " + ("unchanged" if not d else "diff:"))
                print(d, end="")
            return
        if existing is not None and existing != text and not force:
            raise ConfigError(
                f"{job.out} exists and differs",
                hint="pass --force to overwrite, or --dry-run to see the diff",
            )
        sf.write_atomic(job.out, text)
        if json:
            o.json(info)
            return
        o.step(f"wrote {job.out} (passes `docker compose config`)")
        for service, wanted, got in sf.bumped_ports(result, job.options):
            o.warn(f"{service}: host port {wanted} is busy here, using {got} (--port to choose)")
        o.table(
            "Host ports moved",
            ["service", "prod", "staging"],
            [[m["service"], m["prod"], m["staging"]] for m in info["port_moves"]],
        )
        o.table(
            "Volumes", ["prod", "staging"], [[v["prod"], v["staging"]] for v in info["volumes"]]
        )
        if info["shared_with_prod"]:
            o.table(
                "Host files SHARED with prod (bind mounts kept)",
                ["service", "source", "target", "mode"],
                [
                    [b["service"], b["source"], b["target"], "ro" if b["read_only"] else "rw"]
                    for b in info["shared_with_prod"]
                ],
            )
