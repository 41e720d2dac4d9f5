"""A compose project as ``docker compose config --format json`` normalises it: services with
their images, container names, published ports, labels, restart policy and dependencies, and
the Docker names of its networks and volumes. Pure data, read from the JSON; no engine. Ports
and object names are read by :mod:`tasks.lib.compose` (one reader of compose semantics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.lib.compose.objects import docker_names
from tasks.lib.compose.ports import Port, service_ports
from tasks.lib.compose.syntax import pairs
from tasks.lib.errors import ConfigError


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    container_name: str = ""
    profiles: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    restart: str = ""
    depends_on: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    has_build: bool = False


@dataclass(frozen=True)
class ProjectSpec:
    """``networks``/``volumes``: compose key -> (Docker name, external)."""

    name: str
    services: tuple[ServiceSpec, ...]
    networks: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    volumes: Mapping[str, tuple[str, bool]] = field(default_factory=dict)

    def service(self, name: str) -> ServiceSpec | None:
        for s in self.services:
            if s.name == name:
                return s
        return None

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def with_dependencies(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` and everything they depend on, transitively (what ``up S`` starts)."""
        wanted: list[str] = []
        todo = list(names)
        while todo:
            n = todo.pop(0)
            if n in wanted:
                continue
            wanted.append(n)
            spec = self.service(n)
            if spec is not None:
                todo.extend(spec.depends_on)
        order = {s: i for i, s in enumerate(self.service_names)}
        return tuple(sorted(wanted, key=lambda s: order.get(s, len(order))))

    def check_services(self, names: Iterable[str], stack: str) -> None:
        """ConfigError naming the first ``--service`` this project does not define."""
        from tasks.lib.config import did_you_mean

        for n in names:
            if self.service(n) is None:
                raise ConfigError(
                    f"stack {stack} has no service {n!r}",
                    hint=did_you_mean(n, self.service_names),
                )

    def check_profiles(self, names: Iterable[str], stack: str) -> None:
        """ConfigError naming the first ``--profile`` no service of this project declares
        (compose would start no service more, and say nothing); ``*`` is every profile."""
        from tasks.lib.config import did_you_mean

        declared = sorted({p for sv in self.services for p in sv.profiles})
        for n in names:
            if n != "*" and n not in declared:
                raise ConfigError(
                    f"stack {stack} has no profile {n!r}",
                    hint=did_you_mean(n, declared) if declared else "it declares no profile",
                )


def _words(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(raw.split())
    return tuple(str(x) for x in raw)


def parse_config(data: Mapping[str, Any], project: str = "") -> ProjectSpec:
    """A :class:`ProjectSpec` from ``docker compose config --format json``."""
    name = str(data.get("name") or project)
    services = []
    for sname, entry in (data.get("services") or {}).items():
        raw = entry if isinstance(entry, Mapping) else {}
        depends = raw.get("depends_on") or {}
        services.append(
            ServiceSpec(
                name=str(sname),
                image=str(raw.get("image") or ""),
                container_name=str(raw.get("container_name") or ""),
                profiles=_words(raw.get("profiles")),
                ports=tuple(service_ports(raw)),
                labels={k: "" if v is None else str(v) for k, v in pairs(raw.get("labels"))},
                restart=str(raw.get("restart") or ""),
                depends_on=tuple(str(d) for d in depends),
                command=_words(raw.get("command")),
                entrypoint=_words(raw.get("entrypoint")),
                has_build=bool(raw.get("build")),
            )
        )
    return ProjectSpec(
        name=name,
        services=tuple(services),
        networks=docker_names(data.get("networks"), name),
        volumes=docker_names(data.get("volumes"), name),
    )
