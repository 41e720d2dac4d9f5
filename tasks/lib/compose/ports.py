"""Ports: the one reader of compose port entries (short and long syntax: :class:`Port`,
:func:`entry_ports`, used by ``staging.compose`` and ``stack.*``), which host ports a compose
file publishes, which are busy on this host, and how staging's are chosen.

Allocation rules: ``port_map`` (explicit, refused when it collides) wins over the offset; an
offset target that is taken, is one of prod's host ports, or is already given to another
staging port moves to the next free port above it. One prod host port maps to one staging
port wherever it appears (``443:443`` and ``443:443/udp`` both become ``10443``). A host port
written as ``${VAR:-3000}`` becomes the literal staging port (the variable would be shared
with prod).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.lib.compose.syntax import VAR_WITH_DEFAULT, split_colons
from tasks.lib.errors import ConfigError

MAX_PORT = 65535
_PORT_RANGE = re.compile(r"^(?P<start>[0-9]+)(?:-(?P<end>[0-9]+))?$")


@dataclass(frozen=True)
class PortMove:
    """A published port, prod and staging (short syntax as written; long syntax in short form)."""

    service: str
    prod: str
    staging: str

    def to_json(self) -> dict[str, str]:
        return {"service": self.service, "prod": self.prod, "staging": self.staging}


@dataclass(frozen=True)
class BumpedPort:
    """A staging host port moved past prod+offset because the wanted one was busy or taken."""

    service: str
    wanted: int
    got: int

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "wanted": self.wanted, "got": self.got}


# --- reading port entries -------------------------------------------------------------------

ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})  # a port bound on every address


@dataclass(frozen=True)
class Port:
    """One container port and where the host publishes it: ``host_ip:published ->
    target/protocol``. ``published`` is None when the entry publishes no host port (or the
    engine picks one, ``"9229"``)."""

    target: int
    published: int | None
    protocol: str = "tcp"
    host_ip: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "published": self.published,
            "protocol": self.protocol,
            "host_ip": self.host_ip,
        }

    def show(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip not in ANY_ADDRESS else ""
        pub = str(self.published) if self.published is not None else "?"
        suffix = "" if self.protocol == "tcp" else f"/{self.protocol}"
        return f"{host}{pub}->{self.target}{suffix}"

    def overlaps(self, other: Port) -> bool:
        """Would both bind the same host port: same port and protocol, on addresses that
        overlap (equal, or either one every address)."""
        if self.published is None or (self.published, self.protocol) != (
            other.published,
            other.protocol,
        ):
            return False
        return (
            self.host_ip in ANY_ADDRESS
            or other.host_ip in ANY_ADDRESS
            or self.host_ip == other.host_ip
        )


def url_host(host_ip: str, fallback: str) -> str:
    """The host part of a URL reaching a port bound on ``host_ip``: that address (IPv6 in
    brackets), or ``fallback`` (the engine's host) for a port bound on every address."""
    where = host_ip if host_ip not in ANY_ADDRESS else fallback
    return f"[{where}]" if ":" in where else where


def host_part(entry: Any) -> str | None:
    """The host port of a port entry (short or long syntax), None when it publishes none."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return None if published in (None, "") else str(published)
    if isinstance(entry, int) or not isinstance(entry, str):
        return None
    parts = split_colons(entry.partition("/")[0])
    if len(parts) < 2 or not parts[-2]:
        return None
    return parts[-2]


def host_range(host: str) -> tuple[int, int]:
    """(first port, how many) of a host port spec; a variable resolves to its default."""
    return _port_range(host, "host port")


def _port_range(spec: str, what: str) -> tuple[int, int]:
    match = VAR_WITH_DEFAULT.match(spec)
    if match:
        spec = match.group("default")
    elif "$" in spec:
        raise ConfigError(
            f"{what} {spec!r} has no default value",
            hint="write it as ${VAR:-PORT} so staging can move it",
        )
    rng = _PORT_RANGE.match(spec)
    if rng is None:
        raise ConfigError(f"{what} {spec!r} is not a port or a port range")
    start = int(rng.group("start"))
    end = int(rng.group("end") or start)
    if end < start:
        raise ConfigError(f"{what} range {spec!r} ends before it starts")
    return start, end - start + 1


def entry_ports(entry: Any) -> list[Port]:
    """The ports one entry of a service's ``ports:`` maps, short syntax
    (``[IP:][HOST:]CONTAINER[/PROTO]``, ranges, ``${VAR:-PORT}`` as its default) or long (what
    ``docker compose config`` writes): one :class:`Port` per host port. A host range pairs
    with a container range of the same length one to one; with a single container port it is
    the range the engine picks that port's host port from (every one of them claimed). An
    entry without a host port gives its container port(s) unpublished; one it cannot read
    gives none."""
    if isinstance(entry, Mapping):
        target: Any = entry.get("target")
        protocol = str(entry.get("protocol") or "tcp")
        host_ip = str(entry.get("host_ip") or "")
    elif isinstance(entry, int) and not isinstance(entry, bool):
        target, protocol, host_ip = entry, "tcp", ""
    elif isinstance(entry, str):
        body, _slash, proto = entry.partition("/")
        parts = split_colons(body)
        target, protocol = parts[-1], proto or "tcp"
        host_ip = parts[0] if len(parts) > 2 else ""
    else:
        return []
    host = host_part(entry)
    try:
        first, count = _port_range(str(target), "container port")
        start, length = host_range(host) if host is not None else (0, 0)
    except ConfigError:
        return []
    host_ip = "::" if host_ip == "[::]" else host_ip.strip("[]")
    if host is None:
        return [Port(first + i, None, protocol, host_ip) for i in range(count)]
    return [
        Port(first + i if count == length else first, start + i, protocol, host_ip)
        for i in range(length)
    ]


def service_ports(service: Any) -> list[Port]:
    """Every port a service's ``ports:`` maps (see :func:`entry_ports`)."""
    entries = service.get("ports") if isinstance(service, Mapping) else None
    return [p for e in (entries if isinstance(entries, list) else ()) for p in entry_ports(e)]


def published_host_ports(data: Any) -> frozenset[int]:
    """Every host port a compose configuration publishes (short and long syntax, ranges in
    full, ``${VAR:-PORT}`` as its default); entries it cannot read are skipped. Works on the
    raw file (:func:`tasks.lib.compose.yaml.load_compose`) and on the normalised
    ``docker compose config --format json`` output."""
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        return frozenset()
    return frozenset(
        p.published
        for svc in services.values()
        for p in service_ports(svc)
        if p.published is not None
    )


def first_host_port(entry: Any) -> int | None:
    """The (first) host port of a port entry: ``"127.0.0.1:8080:80/tcp"`` -> 8080; None
    without one."""
    return next((p.published for p in entry_ports(entry) if p.published is not None), None)


def parse_port_map(items: Iterable[str]) -> dict[int, int]:
    """``["80:10080", "443=10443"]`` -> ``{80: 10080, 443: 10443}``."""
    out: dict[int, int] = {}
    for item in items:
        sep = ":" if ":" in item else "="
        left, _, right = item.partition(sep)
        try:
            prod, staging = int(left), int(right)
        except ValueError:
            raise ConfigError(
                f"--port {item!r} is not PROD:STAGING", hint="e.g. --port 80:10080"
            ) from None
        if not (0 < prod <= MAX_PORT and 0 < staging <= MAX_PORT):
            raise ConfigError(f"--port {item!r}: ports are 1-65535")
        out[prod] = staging
    return out


# --- this host -------------------------------------------------------------------------------


def port_busy(port: int) -> bool:
    """True when something on this host already listens on ``port`` (TCP, any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def busy_ports(candidates: Iterable[int]) -> frozenset[int]:
    return frozenset(p for p in candidates if 0 < p <= MAX_PORT and port_busy(p))


# --- allocation ------------------------------------------------------------------------------


@dataclass
class PortAllocator:
    """Chooses staging host ports: one per prod host port (range), never one of prod's,
    never a taken one, never the same twice."""

    prod_ports: frozenset[int]
    offset: int = 10000
    port_map: Mapping[int, int] = field(default_factory=dict)
    taken: frozenset[int] = frozenset()
    _memo: dict[tuple[int, int], int] = field(default_factory=dict, init=False)
    _used: set[int] = field(default_factory=set, init=False)

    def move(self, host: str) -> str:
        """The staging host spec for prod's ``host`` (``3000``, ``9090-9091``, ``${P:-80}``)."""
        start, length = host_range(host)
        new = self.allocate(start, length)
        return str(new) if length == 1 else f"{new}-{new + length - 1}"

    def allocate(self, start: int, length: int) -> int:
        memo = self._memo.get((start, length))
        if memo is not None:
            return memo
        blocked = self.prod_ports | self._used | self.taken

        def free(first: int) -> bool:
            return all(p not in blocked for p in range(first, first + length))

        explicit = self.port_map.get(start)
        if explicit is not None:
            candidate = explicit
            if not 1 <= candidate <= MAX_PORT - length + 1:
                raise ConfigError(f"port_map sends {start} to {candidate}, not a valid port")
            if not free(candidate):
                raise ConfigError(
                    f"port_map sends {start} to {candidate}, which is taken or used by prod",
                    hint="pick another staging port",
                )
        else:
            candidate = start + self.offset
            while candidate + length - 1 <= MAX_PORT and not free(candidate):
                candidate += 1
            if candidate + length - 1 > MAX_PORT or candidate < 1:
                raise ConfigError(
                    f"no free staging host port for {start} with offset {self.offset}",
                    hint="lower the offset or give a port_map entry",
                )
        self._memo[(start, length)] = candidate
        self._used.update(range(candidate, candidate + length))
        return candidate


def _long_port(entry: Mapping[str, Any], published: Any) -> str:
    ip = f"{entry['host_ip']}:" if entry.get("host_ip") else ""
    proto = f"/{entry['protocol']}" if entry.get("protocol") else ""
    return f"{ip}{published}:{entry.get('target')}{proto}"


def move_port(service: str, entry: Any, ports: PortAllocator) -> tuple[Any, PortMove | None]:
    """A service's port entry with its host port moved, and the move (None if it publishes
    no host port)."""
    if isinstance(entry, dict):
        published = entry.get("published")
        if published in (None, ""):
            return entry, None
        new_published = ports.move(str(published))
        entry = dict(entry)
        entry["published"] = int(new_published) if isinstance(published, int) else new_published
        return entry, PortMove(
            service, _long_port(entry, published), _long_port(entry, new_published)
        )
    host = host_part(entry)
    if not host:
        return entry, None
    text = str(entry)
    body, slash, proto = text.partition("/")
    parts = split_colons(body)
    parts[-2] = ports.move(host)
    new = ":".join(parts) + slash + proto
    return new, PortMove(service, text, new)


def bumped_ports(
    moves: Iterable[PortMove], offset: int, port_map: Mapping[int, int]
) -> list[BumpedPort]:
    """The moves that did not land on prod+offset (the wanted port was busy or taken): worth
    saying, since they depend on this host's state."""
    out: list[BumpedPort] = []
    for m in moves:
        prod, got = first_host_port(m.prod), first_host_port(m.staging)
        if prod is None or got is None or prod in port_map:
            continue
        if got != prod + offset:
            out.append(BumpedPort(m.service, prod + offset, got))
    return out
