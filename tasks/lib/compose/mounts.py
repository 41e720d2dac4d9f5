"""Service mounts: named volumes follow their staging keys; host bind mounts are kept (both
stacks read the same host file) and reported, file-backed secrets and configs too; the Docker
socket is forced read-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.lib.compose.syntax import split_colons

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass(frozen=True)
class SharedBind:
    """A host path both stacks mount."""

    service: str
    source: str
    target: str
    read_only: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "source": self.source,
            "target": self.target,
            "read_only": self.read_only,
        }


def _is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~", "$")) or "/" in source


def move_mount(
    service: str, entry: Any, volume_keys: Mapping[str, str]
) -> tuple[Any, SharedBind | None]:
    """One entry of a service's ``volumes:``, for staging, and the host path it shares."""
    if isinstance(entry, dict):
        return _long_mount(service, entry, volume_keys)
    if not isinstance(entry, str):
        return entry, None
    parts = split_colons(entry)
    if len(parts) < 2:
        return entry, None
    source = parts[0]
    if source in volume_keys:
        parts[0] = volume_keys[source]
        return ":".join(parts), None
    if not _is_host_path(source):
        return entry, None
    mode = parts[2].split(",") if len(parts) > 2 and parts[2] else []
    if source in DOCKER_SOCKETS:
        mode = [m for m in mode if m != "rw"]
        if "ro" not in mode:
            mode.append("ro")
        parts = [*parts[:2], ",".join(mode)]
    return ":".join(parts), SharedBind(service, source, parts[1], "ro" in mode)


def _long_mount(
    service: str, entry: dict[str, Any], volume_keys: Mapping[str, str]
) -> tuple[dict[str, Any], SharedBind | None]:
    entry = dict(entry)
    kind = entry.get("type", "volume")
    source = entry.get("source")
    if kind == "volume" and isinstance(source, str) and source in volume_keys:
        entry["source"] = volume_keys[source]
    elif kind == "bind" and isinstance(source, str):
        if source in DOCKER_SOCKETS:
            entry["read_only"] = True
        return entry, SharedBind(
            service, source, str(entry.get("target")), bool(entry.get("read_only"))
        )
    return entry, None


def file_objects(service: str, uses: Any, top: Any, kind: str, root: str) -> list[SharedBind]:
    """File-backed ``secrets``/``configs`` a service uses: both stacks read the same file."""
    if not isinstance(top, dict) or not isinstance(uses, list):
        return []
    shared: list[SharedBind] = []
    for use in uses:
        name = use.get("source") if isinstance(use, dict) else use
        spec = top.get(name) if isinstance(name, str) else None
        if not isinstance(spec, dict) or not spec.get("file"):
            continue
        target = use.get("target") if isinstance(use, dict) else None
        if not target:
            target = f"{root}{name}"
        elif kind == "secrets" and not str(target).startswith("/"):
            target = f"{root}{target}"
        shared.append(SharedBind(service, str(spec["file"]), str(target), True))
    return shared
