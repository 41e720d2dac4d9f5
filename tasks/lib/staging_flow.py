"""staging.compose: read prod's compose file, generate the staging twin, validate it with
``docker compose config``, write it atomically. Never writes the prod file."""

from __future__ import annotations

import difflib
import os
import socket
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.lib.errors import CommandFailed, ConfigError
from tasks.lib.staging_compose import StagingCompose, StagingOptions, generate, load_compose

DEFAULT_PROD = "infrastructure/docker/compose/docker-compose.prod.yml"
DEFAULT_STAGING = "infrastructure/docker/compose/docker-compose.staging.yml"


@dataclass(frozen=True)
class ComposeJob:
    prod: Path
    out: Path
    options: StagingOptions


def parse_port_map(items: Iterable[str]) -> dict[int, int]:
    """``["80:10080", "443=10443"]`` -> ``{80: 10080, 443: 10443}``."""
    out: dict[int, int] = {}
    for item in items:
        sep = ":" if ":" in item else "="
        left, _, right = item.partition(sep)
        try:
            prod, staging = int(left), int(right)
        except ValueError:
            raise ConfigError(
                f"--port {item!r} is not PROD:STAGING", hint="e.g. --port 80:10080"
            ) from None
        if not (0 < prod < 65536 and 0 < staging < 65536):
            raise ConfigError(f"--port {item!r}: ports are 1-65535")
        out[prod] = staging
    return out


def port_busy(port: int) -> bool:
    """True when something on this host already listens on ``port`` (TCP, any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def busy_ports(candidates: Iterable[int]) -> frozenset[int]:
    return frozenset(p for p in candidates if 0 < p < 65536 and port_busy(p))


def published_host_ports(path: Path) -> frozenset[int]:
    """Host ports a compose file publishes (short and long syntax); empty if unreadable."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return frozenset()
    ports: set[int] = set()
    services = data.get("services") if isinstance(data, dict) else None
    for svc in (services or {}).values():
        for entry in (svc or {}).get("ports") or []:
            port = (
                host_port(str(entry.get("published") or ""))
                if isinstance(entry, dict)
                else host_port(str(entry), short=True)
            )
            if port is not None:
                ports.add(port)
    return frozenset(ports)


def host_port(spec: str, *, short: bool = False) -> int | None:
    """The (first) host port of a ``published`` value, or of a short-syntax port mapping
    (``"127.0.0.1:8080:80/tcp"`` -> 8080) when ``short``; None without one."""
    host = spec
    if short:
        parts = spec.split("/", maxsplit=1)[0].rsplit(":", 2)
        host = parts[-2] if len(parts) >= 2 else ""
    first = host.split("-")[0]
    return int(first) if first.isdigit() else None


def bumped_ports(result: StagingCompose, options: StagingOptions) -> list[tuple[str, int, int]]:
    """(service, wanted, got) for host ports moved past prod+offset because the wanted one
    was busy or taken: worth saying, since they depend on this host's state."""
    out: list[tuple[str, int, int]] = []
    for m in result.port_moves:
        prod, got = host_port(m.prod, short=True), host_port(m.staging, short=True)
        if prod is None or got is None or prod in options.port_map:
            continue
        wanted = prod + options.port_offset
        if got != wanted:
            out.append((m.service, wanted, got))
    return out


def resolve_job(
    root: Path,
    prod: str,
    out: str,
    *,
    port_offset: int,
    ports: Mapping[int, int],
    probe_ports: bool = True,
) -> ComposeJob:
    prod_path = (root / prod).resolve()
    # default: docker-compose.staging.yml next to the prod file (relative paths stay valid)
    out_path = (root / out).resolve() if out else prod_path.parent / Path(DEFAULT_STAGING).name
    if not prod_path.is_file():
        raise ConfigError(
            f"prod compose file {prod} not found under {root}", hint="pass --prod FILE"
        )
    if out_path == prod_path:
        raise ConfigError(
            "--out names the prod compose file", hint="the prod file is never written"
        )
    if out_path.parent != prod_path.parent:
        raise ConfigError(
            f"--out {out} is not in the prod file's folder {prod_path.parent}",
            hint="relative paths in the file (secrets, configs) resolve from its folder: "
            "write it next to the prod file",
        )
    if not 0 < port_offset < 65535:
        raise ConfigError(f"--port-offset {port_offset} is out of range", hint="e.g. 10000")
    taken: frozenset[int] = frozenset()
    if probe_ports:
        # Busy host ports above the offset: the generator then picks the next free one. Ports
        # that the existing staging file publishes are staging's own (it may be running):
        # not counted, so a rerun keeps them and the file does not drift.
        busy = busy_ports(range(port_offset + 1, min(65535, port_offset + 1 + 10000)))
        taken = busy - published_host_ports(out_path)
    return ComposeJob(
        prod_path,
        out_path,
        StagingOptions(port_offset=port_offset, port_map=dict(ports), taken_ports=taken),
    )


def build(job: ComposeJob) -> StagingCompose:
    text = job.prod.read_text(encoding="utf-8")
    data = load_compose(text, str(job.prod))
    return generate(data, job.options, source=str(job.prod))


def validate(text: str, project_dir: Path) -> None:
    """``docker compose -f FILE config`` on the generated text (compose CLI; no engine needed)."""
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException

    with tempfile.TemporaryDirectory(prefix="meeshy-staging-") as tmp:
        f = Path(tmp) / "docker-compose.staging.yml"
        f.write_text(text, encoding="utf-8")
        client = DockerClient(compose_files=[f], compose_project_directory=project_dir)
        try:
            client.compose.config(return_json=True)
        except DockerException as exc:
            last = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise CommandFailed(
                "the generated staging file does not pass `docker compose config`: "
                + (last[-1] if last else f"exit {exc.return_code}"),
                argv=[str(a) for a in exc.docker_command],
                return_code=exc.return_code,
                hint="nothing was written; report this with the prod file",
            ) from None


def diff(old: str, new: str, path: Path) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (current)",
            tofile=f"{path} (generated)",
        )
    )


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary(result: StagingCompose, job: ComposeJob) -> dict[str, Any]:
    return {
        "prod": str(job.prod),
        "out": str(job.out),
        "services": sorted(result.data.get("services", {})),
        "port_moves": [
            {"service": m.service, "prod": m.prod, "staging": m.staging} for m in result.port_moves
        ],
        "shared_with_prod": [
            {"service": b.service, "source": b.source, "target": b.target, "read_only": b.read_only}
            for b in result.shared_binds
        ],
        "volumes": [{"prod": a, "staging": b} for a, b in result.renamed_volumes],
    }
