"""Do two compose configurations share anything on one engine? The one check of separation:
``staging.compose`` makes it before it writes, ``stack.up --env staging`` again before it
starts (either file may have been edited since), ``stack.down --volumes`` asks it which
volumes prod uses (:func:`shared_volumes`).

What two stacks must not share: the compose project (each would manage the other's
containers), a container name, a volume (the data), a network, a host port (the second ``up``
fails, or worse, a request reaches the wrong stack): same port and protocol on addresses that
overlap (equal, or either one every address); a host folder that prod mounts (a bind mount,
or a named volume whose ``driver_opts`` bind a host ``device``) and staging mounts writable
(a read-only bind, as Traefik's of the Docker socket, writes nothing); and staging may not use
the host's network (``network_mode: host``: it would reach prod's loopback-only ports, and its
own ports escape the host port check). Best fed the normalised, interpolated
``docker compose config --format json`` output of each file
(:func:`tasks.lib.compose.files.compose_config`), where every volume and network has its Docker
name and every port its long form; the raw files work too (unnamed objects then get compose's
``<project>_<key>`` name, ``${VAR:-3000}`` ports their default).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tasks.lib.compose.objects import docker_names
from tasks.lib.compose.ports import Port, service_ports

ClashKind = Literal[
    "project", "container name", "volume", "network", "host port", "host path", "host network"
]


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
        if self.kind == "host network":
            return f"staging service {self.staging!r} uses the host's network (network_mode: host)"
        if self.kind == "host path":
            return (
                f"host path {self.value!r} is mounted by prod ({self.prod}) and writable "
                f"by staging ({self.staging})"
            )
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
class HostPath:
    """A host folder or file one configuration mounts: ``where`` is ``service 'x'`` for a
    bind mount, ``volume 'k'`` for a named volume bound to a host device."""

    path: str
    where: str
    writable: bool

    def overlaps(self, other: HostPath) -> bool:
        a, b = posixpath.normpath(self.path), posixpath.normpath(other.path)
        if not (a.startswith("/") and b.startswith("/")):
            return a == b  # not a path (an NFS export, …): the same string is the same data
        return posixpath.commonpath([a, b]) in (a, b)


def _host_paths(services: Mapping[str, Any], volumes: Any) -> list[HostPath]:
    found: list[HostPath] = []
    for name, svc in services.items():
        for mount in svc.get("volumes") or () if isinstance(svc, Mapping) else ():
            bind = _bind(mount)
            if bind is not None:
                found.append(HostPath(bind[0], f"service {name!r}", bind[1]))
    for key, spec in volumes.items() if isinstance(volumes, Mapping) else ():
        opts = spec.get("driver_opts") if isinstance(spec, Mapping) else None
        if isinstance(opts, Mapping) and opts.get("device"):
            found.append(HostPath(str(opts["device"]), f"volume {key!r}", True))
    return found


def _bind(mount: Any) -> tuple[str, bool] | None:
    """(host path, writable) of a service's bind mount, long or short syntax; else None."""
    if isinstance(mount, Mapping):
        if mount.get("type") != "bind" or not mount.get("source"):
            return None
        return str(mount["source"]), not mount.get("read_only")
    if not isinstance(mount, str) or ":" not in mount:
        return None
    source, _, rest = mount.partition(":")
    if not source.startswith(("/", ".", "~")):
        return None  # a named volume
    _target, _, mode = rest.partition(":")
    return source, "ro" not in mode.split(",")


@dataclass(frozen=True)
class Claims:
    """What one configuration claims on the engine and the host."""

    project: str | None
    containers: Mapping[str, str]  # container name -> service
    volumes: Mapping[str, str]  # Docker name -> compose key
    networks: Mapping[str, str]
    host_ports: tuple[HostPort, ...]
    external_volumes: frozenset[str] = frozenset()  # Docker names compose never removes
    host_paths: tuple[HostPath, ...] = ()
    host_network: tuple[str, ...] = ()  # services with network_mode: host

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
    host_network = tuple(
        str(name)
        for name, svc in services.items()
        if isinstance(svc, Mapping) and svc.get("network_mode") == "host"
    )
    return Claims(
        project=project,
        containers=containers,
        volumes=_keys(volumes),
        networks=_keys(docker_names(config.get("networks"), project)),
        host_ports=tuple(ports),
        external_volumes=frozenset(name for name, external in volumes.values() if external),
        host_paths=tuple(_host_paths(services, config.get("volumes"))),
        host_network=host_network,
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
    shared: set[str] = set()
    for theirs in prod.host_paths:
        for mine in staging.host_paths:
            if mine.writable and mine.path not in shared and mine.overlaps(theirs):
                shared.add(mine.path)
                found.append(Clash("host path", mine.path, theirs.where, mine.where))
    for service in staging.host_network:
        found.append(Clash("host network", "host", "", service))
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
