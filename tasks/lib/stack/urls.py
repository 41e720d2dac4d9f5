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

Given the stack's containers (:func:`served`), a running service's host ports are the ones
the engine published for it (a port the engine picked, ``ports: ["3000"]``, or one a
variable moved when it started), as ``stack.health`` reads them; a service that does not run
is said to be so (``not started (profile full)``, as ``stack.health`` says), with the file's
ports (``file_fallback``, ``stack.urls``) or without a URL (``stack.up``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tasks.lib.compose.ports import Port, url_host
from tasks.lib.compose.traefik import TraefikRoute, rule_urls, service_routes
from tasks.lib.stack.containers import ContainerState, by_service
from tasks.lib.stack.health import beyond_reach, not_running
from tasks.lib.stack.spec import ProjectSpec, ServiceSpec

if TYPE_CHECKING:
    from tasks.lib.engine import EngineTarget
    from tasks.lib.stack.plan import Stack

SCHEMES = {27017: "mongodb", 6379: "redis", 5432: "postgresql", 443: "https"}
DEFAULT_PORTS = {"http": 80, "https": 443}
_EP_FLAG = re.compile(r"^--entrypoints\.([^.=]+)\.address=(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class StackUrl:
    """``running``: False for a service that does not run (``via`` says why; ``url`` is the
    file's, or "-"); None when no engine could be asked."""

    url: str
    service: str
    via: str
    running: bool | None = True

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "service": self.service, "via": self.via, "running": self.running}


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


def entrypoints(
    spec: ProjectSpec, ports: Mapping[str, Sequence[Port]] | None = None
) -> dict[str, Entrypoint]:
    """Traefik entrypoints declared by ``--entrypoints.NAME.address=`` flags on any service's
    command or entrypoint (the Traefik image is recognised by its flags, not its name), with
    the host port each is published on: ``ports`` (service -> host ports) where given, else
    the file's."""
    out: dict[str, Entrypoint] = {}
    for s in spec.services:
        published = ports[s.name] if ports is not None and s.name in ports else s.ports
        for word in (*s.entrypoint, *s.command):
            m = _EP_FLAG.match(word)
            if not m:
                continue
            port = _address_port(m.group(2))
            if port is None:
                continue
            bound = next(
                (p for p in published if p.target == port and p.protocol == "tcp" and p.published),
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


def engine_ports(container: ContainerState) -> tuple[Port, ...]:
    """The host ports the engine published for a container: one per container port, IPv4
    first (the engine binds ``0.0.0.0`` and ``::`` alike), in port order."""
    out = []
    for target in sorted({p.target for p in container.ports if p.protocol == "tcp"}):
        bound = container.host_port(target)
        if bound is not None and bound.published is not None:
            out.append(bound)
    return tuple(out)


def _serves(spec: ServiceSpec) -> bool:
    """Whether the file gives the service a URL of its own: a published port or a route."""
    return bool(spec.ports or service_routes(spec.name, spec.labels))


def stack_urls(
    spec: ProjectSpec,
    host: str = "localhost",
    containers: Sequence[ContainerState] | None = None,
    *,
    file_fallback: bool = True,
) -> list[StackUrl]:
    """Traefik routes first (in service order), then published ports. ``containers``: the
    stack's, as the engine runs them (None: every service as the file says, running). A
    service that does not run gets its file's URLs marked so (``file_fallback``), or one row
    ``-`` saying so; a route is served when its service and the Traefik one both run."""
    reasons: dict[str, str] = {}  # service -> why it does not run
    ports: dict[str, tuple[Port, ...]] = {}
    if containers is not None:
        grouped = by_service(list(containers))
        for s in spec.services:
            running = [c for c in grouped.get(s.name, []) if c.state == "running"]
            if running:
                ports[s.name] = engine_ports(running[0])
            else:
                reasons[s.name] = not_running(s, grouped.get(s.name, []))
    eps = entrypoints(spec, ports if containers is not None else None)
    routed: list[StackUrl] = []
    ported: list[StackUrl] = []
    idle: list[StackUrl] = []  # services that do not run, without a URL shown
    for s in spec.services:
        why = reasons.get(s.name)
        mine: list[StackUrl] = []
        if why is None or file_fallback:
            for route in service_routes(s.name, s.labels):
                proxy = [ep.service for ep in _ep_of(route, eps) if ep.service in reasons]
                down = why or (f"{proxy[0]} {reasons[proxy[0]]}" if proxy else None)
                mine += [_marked(u, down) for u in _route_urls(route, eps)]
            routed += mine
            for p in ports.get(s.name, s.ports):
                if p.published is None or p.protocol != "tcp":
                    continue
                scheme = SCHEMES.get(p.target, "http")
                where = url_host(p.host_ip, host)
                via = f"port {p.target}"
                if beyond_reach(p.host_ip, host):
                    via += f", on {host}'s loopback only"
                url = _marked(StackUrl(f"{scheme}://{where}:{p.published}", s.name, via), why)
                mine.append(url)
                ported.append(url)
        if why is not None and not mine and _serves(s):
            idle.append(StackUrl("-", s.name, why, running=False))
    seen: set[str] = set()
    out: list[StackUrl] = []
    for u in routed + ported:
        if u.url not in seen:
            seen.add(u.url)
            out.append(u)
    return out + idle


def _ep_of(route: TraefikRoute, eps: Mapping[str, Entrypoint]) -> list[Entrypoint]:
    return [eps[e] for e in (route.entrypoints or list(eps)) if e in eps]


def _marked(url: StackUrl, why: str | None) -> StackUrl:
    """A URL of something that does not run: from the file, and why."""
    if why is None:
        return url
    return replace(url, via=f"{url.via}; from the file: {why}", running=False)


def served(stack: Stack, target: EngineTarget) -> tuple[list[StackUrl], str | None]:
    """The URLs of ``stack`` on ``target``'s host: the running services' through the ports
    the engine published, the others' from the file, marked (:func:`stack_urls`). Without an
    engine (as ``make urls`` needs none) every URL is the file's, and the second item says
    why they were not checked."""
    from tasks.lib.engine import connect
    from tasks.lib.errors import EngineUnavailable
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers
    from tasks.lib.stack.health import engine_host

    spec = compose.spec(stack, target)
    try:
        with connect(target) as client:
            containers = project_containers(client, stack.project)
    except EngineUnavailable as exc:
        unchecked = f"{exc.message}: the URLs are the file's; whether they are served is not known"
        return [replace(u, running=None) for u in stack_urls(spec, engine_host(target))], unchecked
    return stack_urls(spec, engine_host(target), containers), None
