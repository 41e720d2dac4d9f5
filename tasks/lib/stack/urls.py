"""The URLs a stack serves, as ``make urls`` lists them, computed from the normalised compose
config instead of written by hand:

* every Traefik router rule ``Host(`x`)`` on a service's labels (read by
  :func:`tasks.lib.compose.traefik.service_routes`, the one reader of router rules) gives
  ``scheme://x``, through the entrypoint the router names (``--entrypoints.<ep>.address=:443``
  on the Traefik service's command), with the host port that entrypoint is published on when
  it is not the scheme's default (staging's Traefik on 10443 gives
  ``https://gate.staging.meeshy.me:10443``);
  ``https`` when the router has TLS settings or the entrypoint listens on 443;
* every published port gives ``scheme://host:port`` (``mongodb://`` for 27017, ``redis://``
  for 6379, ``http://`` otherwise), on the address it is bound to, else the engine's host
  (a loopback address of a remote engine's machine is marked as such: it is not this one's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.lib.compose.ports import url_host
from tasks.lib.compose.traefik import TraefikRoute, rule_urls, service_routes
from tasks.lib.stack.health import beyond_reach
from tasks.lib.stack.spec import ProjectSpec

if TYPE_CHECKING:
    from tasks.lib.engine import EngineTarget
    from tasks.lib.stack.plan import Stack

SCHEMES = {27017: "mongodb", 6379: "redis", 5432: "postgresql", 443: "https"}
DEFAULT_PORTS = {"http": 80, "https": 443}
_EP_FLAG = re.compile(r"^--entrypoints\.([^.=]+)\.address=(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class StackUrl:
    url: str
    service: str
    via: str

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "service": self.service, "via": self.via}


@dataclass(frozen=True)
class Entrypoint:
    name: str
    service: str  # the Traefik service
    port: int  # in the container
    published: int | None  # on the host
    host_ip: str = ""


def _address_port(address: str) -> int | None:
    addr, _, proto = address.partition("/")
    if proto and proto.lower() != "tcp":
        return None
    port = addr.rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else None


def entrypoints(spec: ProjectSpec) -> dict[str, Entrypoint]:
    """Traefik entrypoints declared by ``--entrypoints.NAME.address=`` flags on any service's
    command or entrypoint (the Traefik image is recognised by its flags, not its name)."""
    out: dict[str, Entrypoint] = {}
    for s in spec.services:
        for word in (*s.entrypoint, *s.command):
            m = _EP_FLAG.match(word)
            if not m:
                continue
            port = _address_port(m.group(2))
            if port is None:
                continue
            bound = next(
                (p for p in s.ports if p.target == port and p.protocol == "tcp" and p.published),
                None,
            )
            out[m.group(1)] = Entrypoint(
                m.group(1),
                s.name,
                port,
                bound.published if bound else None,
                bound.host_ip if bound else "",
            )
    return out


def _route_urls(route: TraefikRoute, eps: Mapping[str, Entrypoint]) -> list[StackUrl]:
    """A router's URLs through the entrypoint it would be reached by: one it names (any,
    when it names none), published ones first, 443 first; ``https`` with TLS settings or on
    443, and the entrypoint's host port when it is not the scheme's default."""
    candidates = [eps[e] for e in (route.entrypoints or list(eps)) if e in eps]
    candidates.sort(key=lambda e: (e.published is None, e.port != 443))
    ep = candidates[0] if candidates else None
    https = route.tls or (ep is not None and ep.port == 443)
    port = None
    via = f"traefik router {route.router}"
    if ep is not None:
        via += f" ({ep.name})"
        if ep.published is None:
            via += ", entrypoint not published on the host"
        elif ep.published != DEFAULT_PORTS["https" if https else "http"]:
            port = ep.published
    return [StackUrl(u, route.service, via) for u in rule_urls(route.rule, tls=https, port=port)]


def stack_urls(spec: ProjectSpec, host: str = "localhost") -> list[StackUrl]:
    """Traefik routes first (in service order), then published ports."""
    eps = entrypoints(spec)
    routed: list[StackUrl] = []
    ported: list[StackUrl] = []
    for s in spec.services:
        for route in service_routes(s.name, s.labels):
            routed.extend(_route_urls(route, eps))
        for p in s.ports:
            if p.published is None or p.protocol != "tcp":
                continue
            scheme = SCHEMES.get(p.target, "http")
            where = url_host(p.host_ip, host)
            via = f"port {p.target}"
            if beyond_reach(p.host_ip, host):
                via += f", on {host}'s loopback only"
            ported.append(StackUrl(f"{scheme}://{where}:{p.published}", s.name, via))
    seen: set[str] = set()
    out: list[StackUrl] = []
    for u in routed + ported:
        if u.url not in seen:
            seen.add(u.url)
            out.append(u)
    return out


def served(stack: Stack, target: EngineTarget) -> list[StackUrl]:
    """The URLs of ``stack`` from its compose configuration, on ``target``'s host."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.health import engine_host

    return stack_urls(compose.spec(stack, target), engine_host(target))
