"""Traefik as configured by container labels: the names staging renames, the constraint that
keeps a staging Traefik on staging's containers, and the URLs a configuration serves.

Why rename: the prod Traefik watches the whole engine and sees staging's labels too; two
containers defining router ``gateway`` differently make Traefik drop that router, i.e. break
prod. So routers, services and middlewares defined by labels (and the references to them) get
staging names; names from another provider (``auth@file``, ``api@internal``) are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.lib.compose.names import staging_key
from tasks.lib.compose.syntax import pairs

_KEY = re.compile(
    r"^traefik\.(?P<proto>http|tcp|udp)\.(?P<kind>routers|services|middlewares)\."
    r"(?P<name>[^.]+)(?P<rest>\..*)$"
)
PROVIDER_NETWORK = "--providers.docker.network="
CONSTRAINTS = "--providers.docker.constraints="


# --- renaming --------------------------------------------------------------------------------


class TraefikRenamer:
    """Renames the Traefik objects that one configuration's labels define."""

    def __init__(self, services: Mapping[str, Any], network_names: Mapping[str, str]) -> None:
        self._names: dict[tuple[str, str], set[str]] = {}
        self._network_names = network_names
        for svc in services.values():
            labels = svc.get("labels") if isinstance(svc, dict) else None
            for key, _value in pairs(labels):
                match = _KEY.match(key)
                if match:
                    kind = (match.group("proto"), match.group("kind"))
                    self._names.setdefault(kind, set()).add(match.group("name"))

    def _ref(self, proto: str, kind: str, ref: str) -> str:
        name, at, provider = ref.strip().partition("@")
        if (at and provider != "docker") or name not in self._names.get((proto, kind), ()):
            return ref
        return staging_key(name) + at + provider

    def label(self, key: str, value: Any) -> tuple[str, Any]:
        """One label, renamed: its key, the router's service and middleware references, and
        ``traefik.docker.network``."""
        if key == "traefik.docker.network" and isinstance(value, str):
            return key, self._network_names.get(value, value)
        match = _KEY.match(key)
        if not match:
            return key, value
        proto, kind, name, rest = match.group("proto", "kind", "name", "rest")
        key = f"traefik.{proto}.{kind}.{staging_key(name)}{rest}"
        if isinstance(value, str) and kind == "routers" and rest == ".service":
            value = self._ref(proto, "services", value)
        elif isinstance(value, str) and rest.endswith(".middlewares"):
            value = ",".join(self._ref(proto, "middlewares", v) for v in value.split(","))
        return key, value

    def argument(self, arg: str) -> str:
        """A Traefik command-line argument: ``--providers.docker.network`` follows the
        network rename."""
        if arg.startswith(PROVIDER_NETWORK):
            value = arg[len(PROVIDER_NETWORK) :]
            if value in self._network_names:
                return PROVIDER_NETWORK + self._network_names[value]
        return arg


def constrained(command: Any, project: str) -> Any:
    """A Traefik command (list form) limited to ``project``'s containers: a staging Traefik
    must not route to prod's. Other commands, and string commands, are returned as given."""
    if not isinstance(command, list):
        return command
    if not any(isinstance(a, str) and a.startswith("--providers.docker") for a in command):
        return command
    mine = f"Label(`com.docker.compose.project`,`{project}`)"
    out = list(command)
    for i, arg in enumerate(out):
        if isinstance(arg, str) and arg.startswith(CONSTRAINTS):
            out[i] = f"{CONSTRAINTS}({arg[len(CONSTRAINTS) :]}) && {mine}"
            return out
    out.append(CONSTRAINTS + mine)
    return out


# --- the URLs a configuration serves ---------------------------------------------------------

_HOST = re.compile(r"(?<![\w])Host\(\s*(?P<args>[^)]*)\)")
_PATH = re.compile(r"(?<![\w])(?:PathPrefix|Path)\(\s*[`\"](?P<path>[^`\"]*)[`\"]\s*\)")
_QUOTED = re.compile(r"[`\"]([^`\"]*)[`\"]")


@dataclass(frozen=True)
class TraefikRoute:
    """One HTTP router of a service: its rule, whether it has TLS settings, the entrypoints
    it names (none: every entrypoint), and the URLs its ``Host()`` rule matches."""

    service: str
    router: str
    rule: str
    tls: bool = False
    entrypoints: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """``https://`` with TLS settings, ``http://`` without; the scheme's default port."""
        return tuple(rule_urls(self.rule, tls=self.tls))

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "router": self.router,
            "rule": self.rule,
            "tls": self.tls,
            "entrypoints": list(self.entrypoints),
            "urls": list(self.urls),
        }


def _alternatives(rule: str) -> list[str]:
    """The rule split on its top-level ``||`` (outside parentheses and quotes)."""
    out: list[str] = []
    depth, quote, start, i = 0, "", 0, 0
    while i < len(rule):
        ch = rule[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in '`"':
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif rule.startswith("||", i) and depth == 0:
            out.append(rule[start:i])
            start = i + 2
            i += 1
        i += 1
    out.append(rule[start:])
    return out


def rule_urls(rule: str, *, tls: bool, port: int | None = None) -> list[str]:
    """The URLs a router rule matches: each ``Host()`` (v2's ``Host(`a`, `b`)`` too), with the
    ``PathPrefix``/``Path`` of the same ``||`` alternative when there is one, through host
    ``port`` when given (an entrypoint published on another port than the scheme's)."""
    scheme = "https" if tls else "http"
    at = f":{port}" if port is not None else ""
    urls: list[str] = []
    for alternative in _alternatives(rule):
        path_match = _PATH.search(alternative)
        path = path_match.group("path") if path_match else ""
        if path and not path.startswith("/"):
            path = "/" + path
        for host_match in _HOST.finditer(alternative):
            for host in _QUOTED.findall(host_match.group("args")):
                if host:
                    urls.append(f"{scheme}://{host}{at}{path}")
    return urls


def _enabled(value: Any) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no")


def service_routes(service: str, labels: Any) -> list[TraefikRoute]:
    """The HTTP routers with a ``Host()`` rule that one service's labels (a mapping or a
    ``KEY=VALUE`` list) define, in label order. A service labelled ``traefik.enable=false``
    serves nothing; a router with a ``tls`` label (not false) or ``tls.*`` settings is TLS."""
    found = dict(pairs(labels))
    if not _enabled(found.get("traefik.enable", "true")):
        return []
    routes: list[TraefikRoute] = []
    for key, value in found.items():
        match = _KEY.match(key)
        if not match or match.group("proto", "kind", "rest") != ("http", "routers", ".rule"):
            continue
        router = match.group("name")
        prefix = f"traefik.http.routers.{router}."
        tls = any(
            (k == prefix + "tls" and _enabled(v)) or k.startswith(prefix + "tls.")
            for k, v in found.items()
        )
        named = str(found.get(prefix + "entrypoints") or "").split(",")
        route = TraefikRoute(
            service, router, str(value), tls, tuple(e.strip() for e in named if e.strip())
        )
        if route.urls:
            routes.append(route)
    return routes


def traefik_routes(config: Mapping[str, Any]) -> list[TraefikRoute]:
    """Every HTTP router with a ``Host()`` rule, per service, in the configuration's order
    (:func:`service_routes`).

    ``config`` is a compose configuration: preferably the normalised, interpolated output of
    ``docker compose config --format json`` (:func:`tasks.lib.compose.files.compose_config`),
    whose hostnames are concrete; the raw file works too (hostnames then keep their
    ``${DOMAIN:-...}``)."""
    services = config.get("services")
    if not isinstance(services, Mapping):
        return []
    return [
        route
        for service, svc in services.items()
        for route in service_routes(
            str(service), svc.get("labels") if isinstance(svc, Mapping) else None
        )
    ]


def traefik_urls(config: Mapping[str, Any]) -> list[str]:
    """The URLs a compose configuration serves through Traefik ``Host()`` rules, each once,
    in order: ``["https://gate.staging.meeshy.me", ...]`` (see :func:`traefik_routes`)."""
    seen: dict[str, None] = {}
    for route in traefik_routes(config):
        seen.update(dict.fromkeys(route.urls))
    return list(seen)
