"""Do two compose configurations share anything on one engine? The check ``staging.compose``
makes before it writes, usable for any two stacks (``stack`` runs prod and staging side by
side).

What two stacks must not share: the compose project (each would manage the other's
containers), a container name, a volume (the data), a network, a host port (the second ``up``
fails, or worse, a request reaches the wrong stack). Best fed the normalised, interpolated
``docker compose config --format json`` output of each file
(:func:`tasks.lib.compose.files.compose_config`), where every volume and network has its Docker
name and every port its long form; the raw files work too (unnamed objects then get compose's
``<project>_<key>`` name, ``${VAR:-3000}`` ports their default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tasks.lib.compose.ports import host_part, host_range
from tasks.lib.compose.syntax import split_colons
from tasks.lib.errors import ConfigError

_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True)
class HostPort:
    """One host port a service publishes."""

    port: int
    protocol: str
    host_ip: str
    service: str

    def overlaps(self, other: HostPort) -> bool:
        """Would both bind the same port on the host?"""
        if (self.port, self.protocol) != (other.port, other.protocol):
            return False
        return (
            self.host_ip in _ANY_ADDRESS
            or other.host_ip in _ANY_ADDRESS
            or self.host_ip == other.host_ip
        )


@dataclass(frozen=True)
class Claims:
    """What one configuration claims on the engine and the host."""

    project: str | None
    containers: Mapping[str, str]  # container name -> service
    volumes: frozenset[str]  # Docker names
    networks: frozenset[str]
    host_ports: tuple[HostPort, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "containers": dict(self.containers),
            "volumes": sorted(self.volumes),
            "networks": sorted(self.networks),
            "host_ports": [
                {"port": p.port, "protocol": p.protocol, "host_ip": p.host_ip, "service": p.service}
                for p in self.host_ports
            ],
        }


def _docker_names(block: Any, project: str | None) -> frozenset[str]:
    names: set[str] = set()
    if not isinstance(block, Mapping):
        return frozenset()
    for key, spec in block.items():
        if isinstance(spec, Mapping) and spec.get("name"):
            names.add(str(spec["name"]))
        elif isinstance(spec, Mapping) and spec.get("external"):
            names.add(str(key))
        elif project:
            names.add(f"{project}_{key}")
    return frozenset(names)


def _host_ports(service: str, entry: Any) -> Iterable[HostPort]:
    host = host_part(entry)
    if host is None:
        return
    try:
        start, length = host_range(host)
    except ConfigError:
        return
    if isinstance(entry, Mapping):
        protocol = str(entry.get("protocol") or "tcp")
        host_ip = str(entry.get("host_ip") or "")
    else:
        body, _slash, proto = str(entry).partition("/")
        protocol = proto or "tcp"
        parts = split_colons(body)
        host_ip = parts[0] if len(parts) > 2 else ""
    for port in range(start, start + length):
        yield HostPort(port, protocol, host_ip.strip("[]") if host_ip != "[::]" else "::", service)


def claims(config: Mapping[str, Any]) -> Claims:
    """The names and host ports one configuration claims."""
    project = str(config["name"]) if config.get("name") else None
    services = config.get("services")
    services = services if isinstance(services, Mapping) else {}
    containers: dict[str, str] = {}
    ports: list[HostPort] = []
    for name, svc in services.items():
        if not isinstance(svc, Mapping):
            continue
        if svc.get("container_name"):
            containers[str(svc["container_name"])] = str(name)
        entries = svc.get("ports")
        for entry in entries if isinstance(entries, list) else ():
            ports.extend(_host_ports(str(name), entry))
    return Claims(
        project=project,
        containers=containers,
        volumes=_docker_names(config.get("volumes"), project),
        networks=_docker_names(config.get("networks"), project),
        host_ports=tuple(ports),
    )


def separation_problems(
    prod_config: Mapping[str, Any], staging_config: Mapping[str, Any]
) -> list[str]:
    """One line per thing both configurations claim; empty when they can run side by side.

    >>> separation_problems({"name": "a", "services": {}}, {"name": "a", "services": {}})
    ["both are compose project 'a'"]
    """
    prod, staging = claims(prod_config), claims(staging_config)
    problems: list[str] = []
    if prod.project and prod.project == staging.project:
        problems.append(f"both are compose project {prod.project!r}")
    for container in sorted(prod.containers.keys() & staging.containers.keys()):
        problems.append(
            f"container name {container!r} is used by both (prod service "
            f"{prod.containers[container]!r}, staging service {staging.containers[container]!r})"
        )
    for volume in sorted(prod.volumes & staging.volumes):
        problems.append(f"volume {volume!r} is used by both")
    for network in sorted(prod.networks & staging.networks):
        problems.append(f"network {network!r} is used by both")
    seen: set[tuple[int, str]] = set()
    for a in prod.host_ports:
        for b in staging.host_ports:
            if a.overlaps(b) and (a.port, a.protocol) not in seen:
                seen.add((a.port, a.protocol))
                problems.append(
                    f"host port {a.port}/{a.protocol} is published by both (prod service "
                    f"{a.service!r}, staging service {b.service!r})"
                )
    return problems
