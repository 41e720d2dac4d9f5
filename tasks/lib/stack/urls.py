"""The URLs a stack serves, as ``make urls`` lists them, computed from the normalised compose
config instead of written by hand:

* every Traefik router rule ``Host(`x`)`` on a service's labels gives ``scheme://x``, through
  the entrypoint the router names (``--entrypoints.<ep>.address=:443`` on the Traefik
  service's command), with the host port that entrypoint is published on when it is not the
  scheme's default (staging's Traefik on 10443 gives ``https://gate.staging.meeshy.me:10443``);
  ``https`` when the router has TLS settings or the entrypoint listens on 443;
* every published port gives ``scheme://host:port`` (``mongodb://`` for 27017, ``redis://``
  for 6379, ``http://`` otherwise), on the address it is bound to, else the engine's host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.lib.stack.spec import UNSPECIFIED_IPS, ProjectSpec

SCHEMES = {27017: "mongodb", 6379: "redis", 5432: "postgresql", 443: "https"}
DEFAULT_PORTS = {"http": 80, "https": 443}
_EP_FLAG = re.compile(r"^--entrypoints\.([^.=]+)\.address=(.*)$", re.IGNORECASE)
_HOST_CALL = re.compile(r"Host\(([^)]*)\)")
_QUOTED = re.compile(r"[`\"]([^`\"]+)[`\"]")
_ROUTER_RULE = re.compile(r"^traefik\.http\.routers\.([^.]+)\.rule$")


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


def _hosts(rule: str) -> list[str]:
    hosts: list[str] = []
    for call in _HOST_CALL.findall(rule):
        hosts.extend(_QUOTED.findall(call))
    return hosts


def _router_urls(
    service: str, labels: Mapping[str, str], eps: Mapping[str, Entrypoint]
) -> list[StackUrl]:
    out: list[StackUrl] = []
    if labels.get("traefik.enable", "true").lower() == "false":
        return out
    for key, rule in labels.items():
        m = _ROUTER_RULE.match(key)
        if not m:
            continue
        router = m.group(1)
        prefix = f"traefik.http.routers.{router}."
        named = [e.strip() for e in labels.get(prefix + "entrypoints", "").split(",") if e.strip()]
        tls = labels.get(prefix + "tls", "").lower() == "true" or any(
            k.startswith(prefix + "tls.") for k in labels
        )
        candidates = [eps[e] for e in (named or list(eps)) if e in eps]
        candidates.sort(key=lambda e: (e.published is None, e.port != 443))
        ep = candidates[0] if candidates else None
        scheme = "https" if tls or (ep is not None and ep.port == 443) else "http"
        port = ""
        via = f"traefik router {router}"
        if ep is not None:
            via += f" ({ep.name})"
            if ep.published is None:
                via += ", entrypoint not published on the host"
            elif ep.published != DEFAULT_PORTS[scheme]:
                port = f":{ep.published}"
        for h in _hosts(rule):
            out.append(StackUrl(f"{scheme}://{h}{port}", service, via))
    return out


def stack_urls(spec: ProjectSpec, host: str = "localhost") -> list[StackUrl]:
    """Traefik routes first (in service order), then published ports."""
    eps = entrypoints(spec)
    routed: list[StackUrl] = []
    ported: list[StackUrl] = []
    for s in spec.services:
        routed.extend(_router_urls(s.name, s.labels, eps))
        for p in s.ports:
            if p.published is None or p.protocol != "tcp":
                continue
            scheme = SCHEMES.get(p.target, "http")
            where = p.host_ip if p.host_ip not in UNSPECIFIED_IPS else host
            if ":" in where:
                where = f"[{where}]"
            ported.append(StackUrl(f"{scheme}://{where}:{p.published}", s.name, f"port {p.target}"))
    seen: set[str] = set()
    out: list[StackUrl] = []
    for u in routed + ported:
        if u.url not in seen:
            seen.add(u.url)
            out.append(u)
    return out
