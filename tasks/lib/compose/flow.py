"""``staging.compose`` end to end: read prod's compose file, generate the staging twin, check it
with ``docker compose config`` and against prod (nothing shared), then write it atomically,
or, for a dry run, return the text and the diff. The prod file is never written."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.lib.compose.files import (
    compose_config,
    compose_config_text,
    compose_path,
    diff,
    new_file_mode,
    read_existing,
    write_atomic,
)
from tasks.lib.compose.generate import StagingCompose, StagingOptions, generate
from tasks.lib.compose.ports import (
    MAX_PORT,
    BumpedPort,
    bumped_ports,
    busy_ports,
    published_host_ports,
)
from tasks.lib.compose.separation import clashes
from tasks.lib.compose.traefik import traefik_urls
from tasks.lib.compose.yaml import read_compose
from tasks.lib.errors import CommandFailed, ConfigError
from tasks.lib.progress import Status

DEFAULT_PROD = "infrastructure/docker/compose/docker-compose.prod.yml"
STAGING_NAME = "docker-compose.staging.yml"
PROBE_SPAN = 10000  # host ports probed above the offset


@dataclass(frozen=True)
class ComposeJob:
    prod: Path
    out: Path
    options: StagingOptions


def _staging_own_ports(out: Path) -> frozenset[int]:
    """Host ports the existing staging file publishes (staging may be running on them)."""
    if not out.is_file():
        return frozenset()
    try:
        return published_host_ports(read_compose(out))
    except ConfigError:
        return frozenset()


def resolve_job(
    root: Path,
    prod: str,
    out: str,
    *,
    port_offset: int,
    ports: Mapping[int, int],
    probe_ports: bool = True,
) -> ComposeJob:
    """Check the paths and the flags before anything is generated (also for a dry run)."""
    prod_path = compose_path(root / prod)  # a symlink kept, as compose keeps it
    if not prod_path.exists():
        raise ConfigError(
            f"prod compose file {prod} not found under {root}", hint="pass --prod FILE"
        )
    if not prod_path.is_file():
        raise ConfigError(f"prod compose file {prod_path} is not a regular file")
    # default: docker-compose.staging.yml next to the prod file (relative paths stay valid)
    given = root / out if out else prod_path.parent / STAGING_NAME
    flag = f"--out {out}" if out else str(given)
    out_path = given.resolve()  # a symlink is judged by what it points to
    if out_path == prod_path or (out_path.exists() and os.path.samefile(out_path, prod_path)):
        raise ConfigError(f"{flag} is the prod compose file", hint="the prod file is never written")
    if out_path.is_dir():
        raise ConfigError(
            f"{flag} is a directory", hint="remove it, or write elsewhere with --out FILE"
        )
    if out_path.exists() and not out_path.is_file():
        raise ConfigError(f"{flag} is not a regular file", hint="remove it, or pass --out FILE")
    if out_path.parent != Path(os.path.realpath(prod_path.parent)):
        raise ConfigError(
            f"{flag} is not in the prod file's folder {prod_path.parent}",
            hint="relative paths in the file (secrets, configs) resolve from its folder: "
            "write it next to the prod file",
        )
    if not 0 < port_offset < MAX_PORT:
        raise ConfigError(f"--port-offset {port_offset} is out of range", hint="e.g. 10000")
    taken: frozenset[int] = frozenset()
    if probe_ports:
        # Busy host ports above the offset: the generator then picks the next free one. Ports
        # that the existing staging file publishes are staging's own (it may be running):
        # not counted, so a rerun keeps them and the file does not drift.
        busy = busy_ports(range(port_offset + 1, min(MAX_PORT, port_offset + 1 + PROBE_SPAN)))
        taken = busy - _staging_own_ports(out_path)
    return ComposeJob(
        prod_path,
        out_path,
        StagingOptions(port_offset=port_offset, port_map=dict(ports), taken_ports=taken),
    )


@dataclass(frozen=True)
class ComposeRun:
    """What ``staging.compose`` did (or, for a dry run, would do)."""

    job: ComposeJob
    staging: StagingCompose
    text: str
    state: str  # "new", "unchanged" or "changed": the existing file against the generated one
    diff: str
    dry_run: bool
    written: bool
    mode: int  # the file's mode (a dry run: the mode it would have)
    bumped: tuple[BumpedPort, ...]
    urls: tuple[str, ...]

    @property
    def status(self) -> Status:
        """done (written), up to date (the file already was this), skipped (a dry run)."""
        if self.dry_run:
            return Status.SKIPPED
        return Status.DONE if self.written else Status.UP_TO_DATE

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "prod": str(self.job.prod),
            "out": str(self.job.out),
            "status": str(self.status),
            "dry_run": self.dry_run,
            "written": self.written,
            "state": self.state,
            "mode": f"{self.mode:04o}",
            **self.staging.to_json(),
            "bumped_ports": [b.to_json() for b in self.bumped],
            "urls": list(self.urls),
        }
        if self.dry_run:
            data["content"] = self.text
            data["diff"] = self.diff
        return data


_SHARED_HINTS = {
    "host path": "staging would write into prod's files there: in the prod file, mount it "
    "read-only (:ro) or use a named volume (staging gets its own copy: inv staging.volumes)",
    "host network": "on the host's network staging reaches prod's loopback-only ports: "
    "publish ports instead of network_mode: host",
    "": "a variable set in the environment or .env may give prod that value (change it, "
    "or choose with --port PROD:STAGING)",
}


def run(job: ComposeJob, *, force: bool = False, dry_run: bool = False) -> ComposeRun:
    """Generate, check, and (unless ``dry_run``) write the staging file."""
    staging = generate(read_compose(job.prod), job.options, source=str(job.prod))
    text = staging.render()
    project_dir = job.prod.parent
    try:
        prod_config = compose_config([job.prod], project_dir, what=f"the prod file {job.prod}")
    except CommandFailed as exc:  # a prod file compose refuses is bad input, as for stack.*
        raise ConfigError(exc.message, hint="fix it; nothing was written") from None
    staging_config = compose_config_text(
        text,
        project_dir,
        what="the generated staging file",
        hint="nothing was written; report this with the prod file",
    )
    found = clashes(prod_config, staging_config)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(
            f"the staging file would share with prod: {found[0].describe()}{more}",
            hint="nothing was written; " + _SHARED_HINTS.get(found[0].kind, _SHARED_HINTS[""]),
        )
    existing = read_existing(job.out)
    state = "new" if existing is None else ("unchanged" if existing == text else "changed")
    changes = diff(existing, text, job.out) if existing is not None and state == "changed" else ""
    mode = stat.S_IMODE(os.stat(job.out).st_mode) if existing is not None else new_file_mode()
    written = False
    if not dry_run:
        if state == "changed" and not force:
            raise ConfigError(
                f"{job.out} exists and differs",
                hint="pass --force to overwrite, or --dry-run to see the diff",
            )
        if state != "unchanged":
            mode = write_atomic(job.out, text)
            written = True
    return ComposeRun(
        job=job,
        staging=staging,
        text=text,
        state=state,
        diff=changes,
        dry_run=dry_run,
        written=written,
        mode=mode,
        bumped=tuple(
            bumped_ports(staging.port_moves, job.options.port_offset, job.options.port_map)
        ),
        urls=tuple(traefik_urls(staging_config)),
    )
