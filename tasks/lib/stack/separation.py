"""Is a stack separate from prod? Compares two normalised compose projects (``docker compose
config --format json`` of each file with its project name and env file): the project name,
container names, networks and volumes by their Docker names, and published host ports (same
protocol and port, on addresses that overlap: equal, or either one unspecified).

``staging.compose`` makes the staging file separate; ``stack.up --env staging`` checks again,
since either file may have been edited since. ``stack.down`` uses :func:`shared_volumes`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tasks.lib.stack.spec import UNSPECIFIED_IPS, Port, ProjectSpec

ClashKind = Literal["project", "container name", "network", "volume", "host port"]


@dataclass(frozen=True)
class Clash:
    kind: ClashKind
    value: str
    prod: str  # where prod uses it (service or compose key)
    other: str  # where the other stack uses it

    def describe(self) -> str:
        return f"{self.kind} {self.value} (prod {self.prod}, here {self.other})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "prod": self.prod, "other": self.other}


def _addresses_overlap(a: str, b: str) -> bool:
    return a in UNSPECIFIED_IPS or b in UNSPECIFIED_IPS or a == b


def _published(spec: ProjectSpec) -> Iterable[tuple[str, Port]]:
    for s in spec.services:
        for p in s.ports:
            if p.published is not None:
                yield s.name, p


def _names(objects: dict[str, tuple[str, bool]]) -> dict[str, str]:
    """Docker name -> compose key."""
    return {name: key for key, (name, _external) in objects.items()}


def clashes(prod: ProjectSpec, other: ProjectSpec) -> list[Clash]:
    """Every Docker object or host port both projects would use (empty: separate)."""
    found: list[Clash] = []
    if prod.name == other.name:
        found.append(Clash("project", prod.name, "project", "project"))
    prod_names = {s.container_name: s.name for s in prod.services if s.container_name}
    for s in other.services:
        if s.container_name and s.container_name in prod_names:
            found.append(
                Clash("container name", s.container_name, prod_names[s.container_name], s.name)
            )
    for kind, mine, theirs in (
        ("network", _names(dict(prod.networks)), _names(dict(other.networks))),
        ("volume", _names(dict(prod.volumes)), _names(dict(other.volumes))),
    ):
        for name, key in theirs.items():
            if name in mine:
                found.append(Clash(kind, name, mine[name], key))  # type: ignore[arg-type]
    prod_ports = list(_published(prod))
    for svc, p in _published(other):
        for psvc, pp in prod_ports:
            if (
                p.published == pp.published
                and p.protocol == pp.protocol
                and _addresses_overlap(p.host_ip, pp.host_ip)
            ):
                value = f"{p.published}/{p.protocol}"
                found.append(Clash("host port", value, psvc, svc))
                break
    return found


def shared_volumes(
    stack: ProjectSpec, prod: ProjectSpec | None, prod_mounted: Iterable[str] = ()
) -> list[str]:
    """The volumes ``down --volumes`` would remove (the stack's non-external named volumes)
    that prod's file names or that prod's containers mount."""
    protected = set(prod_mounted)
    if prod is not None:
        protected |= {name for name, _ext in prod.volumes.values()}
    removable = {name for name, external in stack.volumes.values() if not external}
    return sorted(removable & protected)
