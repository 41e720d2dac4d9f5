"""Do two compose configurations share anything on one engine? The one check of separation:
``staging.compose`` makes it before it writes, ``stack.up --env staging`` again before it
starts (either file may have been edited since), ``stack.down --volumes`` asks it which
volumes prod uses (:func:`shared_volumes`).

What two stacks must not share: the compose project (each would manage the other's
containers), a container name, a volume (the data), a network, a host port (the second ``up``
fails, or worse, a request reaches the wrong stack): same port and protocol on addresses that
overlap (equal, or either one every address). Best fed the normalised, interpolated
``docker compose config --format json`` output of each file
(:func:`tasks.lib.compose.files.compose_config`), where every volume and network has its Docker
name and every port its long form; the raw files work too (unnamed objects then get compose's
``<project>_<key>`` name, ``${VAR:-3000}`` ports their default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tasks.lib.compose.objects import docker_names
from tasks.lib.compose.ports import Port, service_ports

ClashKind = Literal["project", "container name", "volume", "network", "host port"]


@dataclass(frozen=True)
class Clash:
    """One thing both configurations claim. ``prod`` and ``staging`` say where each uses it:
    the service (container name, host port) or the compose key (volume, network)."""

    kind: ClashKind
    value: str
    prod: str = ""
    staging: str = ""

    def describe(self) -> str:
        if self.kind == "project":
            return f"both are compose project {self.value!r}"
        if self.kind == "host port":
            what, verb, where = self.value, "is published", "service"
        else:
            what, verb, where = repr(self.value), "is used", "key"
            if self.kind == "container name":
                where = "service"
        return (
            f"{self.kind} {what} {verb} by both "
            f"(prod {where} {self.prod!r}, staging {where} {self.staging!r})"
        )

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "prod": self.prod, "staging": self.staging}


@dataclass(frozen=True)
class HostPort:
    """One host port a service publishes."""

    service: str
    port: Port  # ``published`` is set

    def to_json(self) -> dict[str, Any]:
        return {
            "port": self.port.published,
            "protocol": self.port.protocol,
            "host_ip": self.port.host_ip,
            "service": self.service,
        }


@dataclass(frozen=True)
class Claims:
    """What one configuration claims on the engine and the host."""

    project: str | None
    containers: Mapping[str, str]  # container name -> service
    volumes: Mapping[str, str]  # Docker name -> compose key
    networks: Mapping[str, str]
    host_ports: tuple[HostPort, ...]
    external_volumes: frozenset[str] = frozenset()  # Docker names compose never removes

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "containers": dict(self.containers),
            "volumes": sorted(self.volumes),
            "networks": sorted(self.networks),
            "host_ports": [p.to_json() for p in self.host_ports],
        }


def _keys(named: Mapping[str, tuple[str, bool]]) -> dict[str, str]:
    """Docker name -> compose key."""
    return {name: key for key, (name, _external) in named.items()}


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
        ports.extend(HostPort(str(name), p) for p in service_ports(svc) if p.published is not None)
    volumes = docker_names(config.get("volumes"), project)
    return Claims(
        project=project,
        containers=containers,
        volumes=_keys(volumes),
        networks=_keys(docker_names(config.get("networks"), project)),
        host_ports=tuple(ports),
        external_volumes=frozenset(name for name, external in volumes.values() if external),
    )


def clashes(prod_config: Mapping[str, Any], staging_config: Mapping[str, Any]) -> list[Clash]:
    """Everything both configurations claim, by kind (project, container names, volumes,
    networks, host ports: one clash per port and protocol); empty when they can run side by
    side."""
    prod, staging = claims(prod_config), claims(staging_config)
    found: list[Clash] = []
    if prod.project and prod.project == staging.project:
        found.append(Clash("project", prod.project))
    for container in sorted(prod.containers.keys() & staging.containers.keys()):
        found.append(
            Clash(
                "container name",
                container,
                prod.containers[container],
                staging.containers[container],
            )
        )
    for volume in sorted(prod.volumes.keys() & staging.volumes.keys()):
        found.append(Clash("volume", volume, prod.volumes[volume], staging.volumes[volume]))
    for network in sorted(prod.networks.keys() & staging.networks.keys()):
        found.append(Clash("network", network, prod.networks[network], staging.networks[network]))
    seen: set[str] = set()
    for a in prod.host_ports:
        for b in staging.host_ports:
            value = f"{a.port.published}/{a.port.protocol}"
            if value not in seen and a.port.overlaps(b.port):
                seen.add(value)
                found.append(Clash("host port", value, a.service, b.service))
    return found


def separation_problems(
    prod_config: Mapping[str, Any], staging_config: Mapping[str, Any]
) -> list[str]:
    """One line per thing both configurations claim (:func:`clashes`); empty when they can run
    side by side.

    >>> separation_problems({"name": "a", "services": {}}, {"name": "a", "services": {}})
    ["both are compose project 'a'"]
    """
    return [c.describe() for c in clashes(prod_config, staging_config)]


def shared_volumes(
    config: Mapping[str, Any],
    prod_config: Mapping[str, Any] | None,
    prod_mounted: Iterable[str] = (),
) -> list[str]:
    """The volumes ``down --volumes`` would remove (the configuration's non-external named
    volumes) that prod's configuration names or that prod's containers mount."""
    protected = set(prod_mounted)
    if prod_config is not None:
        protected |= claims(prod_config).volumes.keys()
    mine = claims(config)
    return sorted((mine.volumes.keys() - mine.external_volumes) & protected)
