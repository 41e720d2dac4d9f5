"""Generate ``docker-compose.staging.yml`` from the prod compose file (plan of 2026-01-25, step 4).

The staging file is the prod configuration, separated so both run on one host: every Docker
object gets a staging name (:mod:`tasks.lib.naming`), every published host port moves, every
public hostname moves under ``staging.<domain>``, the app images switch to the ``staging`` tag.

Decisions:

* **Service keys are kept.** Isolation comes from the compose project (top-level ``name:``
  becomes ``meeshy-staging``), staging container names and a staging network: a service's DNS
  name only resolves on the networks it joins, and those are all renamed. Keeping the keys means
  internal hostnames (``mongodb://database:27017``, ``redis://redis:6379``), ``depends_on``,
  ``links`` and ``extends: {service: ...}`` stay valid untouched, and, decisively, the MongoDB
  replica set configuration copied with the prod data volume names its members by hostname
  (``database:27017``): renamed services would leave the copied replica set unable to find itself.
* **Traefik names are renamed** (routers, services, middlewares defined by labels, and the
  references to them), because the prod Traefik watches the whole engine and would see staging's
  labels: two containers defining router ``gateway`` differently make Traefik drop that router,
  i.e. break prod. A staging Traefik whose command enables the docker provider also gets a
  constraint limiting it to the staging project's containers.
* **Ports**: ``port_map`` (explicit, refused when it collides) wins over ``port_offset``; an offset
  target that is taken, is one of prod's host ports, or is already given to another staging port
  moves to the next free port above it. One prod host port maps to one staging port wherever it
  appears (``443:443`` and ``443:443/udp`` both become ``10443``). A host port written as
  ``${VAR:-3000}`` becomes the literal staging port (the variable would be shared with prod).
* **Images**: only the default inside ``${GATEWAY_IMAGE:-...}`` changes; the variable is kept so a
  deployment can still pin a staging image. Beware: the same ``.env`` next to both files sets it
  for both.
* **Bind mounts** of host files are kept (both stacks read the same file) and reported; the
  Docker socket is forced read-only.

Not handled: ``include:`` and ``extends`` from another file (refused: flatten with
``docker compose config`` first), ``env_file`` contents, string-form Traefik commands (no
constraint added), IPAM subnets (a fixed prod subnet would overlap), hostnames in
``extra_hosts``/healthchecks, and ``x-`` extension blocks (left as they are; compose ignores them).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from tasks.lib.errors import ConfigError
from tasks.lib.naming import (
    staging_container_name,
    staging_key,
    staging_network_name,
    staging_project_name,
    staging_volume_name,
)

DEFAULT_PROJECT = "meeshy-staging"
MAX_PORT = 65535
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass(frozen=True)
class StagingOptions:
    """How to separate staging from prod."""

    port_offset: int = 10000
    port_map: Mapping[int, int] = field(default_factory=dict)
    tag: str = "staging"
    app_images: tuple[str, ...] = ("meeshy-gateway", "meeshy-translator", "meeshy-web")
    taken_ports: frozenset[int] = frozenset()
    domain_var: str = "DOMAIN"
    domains: tuple[str, ...] = ("meeshy.me",)
    prod_project: str | None = None  # prod's project when its file has no ``name:``


@dataclass(frozen=True)
class SharedBind:
    """A host path both stacks mount."""

    service: str
    source: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class PortMove:
    """A published port, prod and staging (short syntax as written; long syntax in short form)."""

    service: str
    prod: str
    staging: str


@dataclass(frozen=True)
class StagingCompose:
    """The generated staging configuration and what the generation did."""

    data: dict[str, Any]
    shared_binds: tuple[SharedBind, ...]
    port_moves: tuple[PortMove, ...]
    renamed_volumes: tuple[tuple[str, str], ...]
    source: str = "the prod compose file"

    def render(self) -> str:
        """YAML text, key order preserved, under a do-not-edit header."""
        header = (
            f"# GENERATED from {self.source} by `inv staging.compose`.\n"
            "# Do not edit by hand: change the prod file and regenerate.\n"
        )
        body = yaml.dump(
            self.data,
            Dumper=yaml.SafeDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=2**16,
        )
        return header + body


# --- loading ------------------------------------------------------------------------------------


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars, as compose reads them.

    YAML 1.1 would turn an unquoted ``80:80`` into the integer 4880 (base 60), ``yes`` into True
    and ``2026-01-25`` into a date; compose keeps them as strings.
    """


_DROPPED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_DROPPED.add("tag:yaml.org,2002:timestamp")
_ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_compose(text: str, source: str) -> dict[str, Any]:
    """Parse compose YAML; refuse anything that is not a mapping with a ``services`` mapping."""
    try:
        data = yaml.load(text, Loader=_ComposeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ConfigError(f"{source} is not a compose file: invalid YAML ({first})") from exc
    if data is None:
        raise ConfigError(f"{source} is not a compose file: it is empty")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} is not a compose file: the top level is a {type(data).__name__}, "
            "not a mapping"
        )
    if not isinstance(data.get("services"), dict):
        raise ConfigError(f"{source} is not a compose file: no `services` mapping")
    return data


# --- splitting compose short syntax --------------------------------------------------------------


def _split_colons(text: str) -> list[str]:
    """Split on ``:`` outside ``${...}`` and ``[...]``."""
    parts: list[str] = []
    depth = 0
    bracket = False
    current = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and text[i + 1 : i + 2] == "{":
            depth += 1
            current += "${"
            i += 2
            continue
        if ch == "}" and depth:
            depth -= 1
        elif ch == "[":
            bracket = True
        elif ch == "]":
            bracket = False
        elif ch == ":" and not depth and not bracket:
            parts.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    parts.append(current)
    return parts


_VAR_WITH_DEFAULT = re.compile(r"^\$\{(?P<var>\w+):?-(?P<default>[^}]*)\}$")
_PORT_RANGE = re.compile(r"^(?P<start>[0-9]+)(?:-(?P<end>[0-9]+))?$")


# --- the generator ------------------------------------------------------------------------------


class _Generator:
    """One generation: the maps from prod names to staging names and what was done."""

    def __init__(self, prod: Mapping[str, Any], options: StagingOptions) -> None:
        if not isinstance(prod.get("services"), Mapping):
            raise ConfigError("prod compose data has no `services` mapping")
        self.options = options
        self.data: dict[str, Any] = copy.deepcopy(dict(prod))
        prod_name = self.data.get("name")
        self.prod_project = str(prod_name) if prod_name else options.prod_project
        self.project = staging_project_name(str(prod_name)) if prod_name else DEFAULT_PROJECT
        self.shared: list[SharedBind] = []
        self.moves: list[PortMove] = []
        self.renamed_volumes: list[tuple[str, str]] = []
        self.volume_keys: dict[str, str] = {}
        self.network_keys: dict[str, str] = {}
        self.network_names: dict[str, str] = {}
        self.port_memo: dict[tuple[int, int], int] = {}
        self.used_ports: set[int] = set()
        self.prod_ports: set[int] = set()
        self.traefik_names: dict[tuple[str, str], set[str]] = {}
        self.domain_rx = self._domain_regex()

    # -- top level

    def run(self) -> dict[str, Any]:
        if "include" in self.data:
            raise ConfigError(
                "the prod compose file uses `include:`, which the staging generator cannot follow",
                hint="flatten it first with `docker compose config`",
            )
        services: dict[str, Any] = self.data["services"]
        for name, svc in services.items():
            if not isinstance(svc, dict):
                raise ConfigError(f"service {name!r} is not a mapping")
            extends = svc.get("extends")
            if isinstance(extends, dict) and extends.get("file"):
                raise ConfigError(
                    f"service {name!r} extends a service from {extends['file']!r}, "
                    "which the staging generator cannot rewrite",
                    hint="flatten it first with `docker compose config`",
                )
        self._networks()
        self._volumes()
        self._collect_prod_ports(services)
        self._collect_traefik_names(services)
        for name, svc in services.items():
            self._service(name, svc)
        rest = {k: v for k, v in self.data.items() if k != "name"}
        return {"name": self.project, **rest}

    def _networks(self) -> None:
        networks = self.data.get("networks")
        if not isinstance(networks, dict):
            return
        out: dict[str, Any] = {}
        for key, spec in networks.items():
            new_key = key if key == "default" else staging_key(key)
            self.network_keys[key] = new_key
            prod_docker = self._docker_name(key, spec)
            new = dict(spec) if isinstance(spec, dict) else {}
            if "name" in new or _external(new):
                new["name"] = staging_network_name(prod_docker or key)
                staging_docker = new["name"]
            else:
                staging_docker = f"{self.project}_{new_key}"
            if prod_docker:
                self.network_names[prod_docker] = staging_docker
            out[new_key] = new or None
        self.data["networks"] = out

    def _volumes(self) -> None:
        volumes = self.data.get("volumes")
        if not isinstance(volumes, dict):
            return
        out: dict[str, Any] = {}
        for key, spec in volumes.items():
            new_key = staging_key(key)
            self.volume_keys[key] = new_key
            prod_docker = self._docker_name(key, spec)
            new = dict(spec) if isinstance(spec, dict) else {}
            if "name" in new or _external(new):
                new["name"] = staging_volume_name(prod_docker or key)
                staging_docker = new["name"]
            else:
                staging_docker = f"{self.project}_{new_key}"
            if prod_docker:
                self.renamed_volumes.append((prod_docker, staging_docker))
            out[new_key] = new or None
        self.data["volumes"] = out

    def _docker_name(self, key: str, spec: Any) -> str | None:
        """The name Docker knows prod's volume or network by, when it can be known."""
        if isinstance(spec, dict) and spec.get("name"):
            return str(spec["name"])
        if isinstance(spec, dict) and _external(spec):
            return key
        return f"{self.prod_project}_{key}" if self.prod_project else None

    # -- one service

    def _service(self, name: str, svc: dict[str, Any]) -> None:
        if isinstance(svc.get("container_name"), str):
            svc["container_name"] = staging_container_name(svc["container_name"])
        if isinstance(svc.get("image"), str):
            svc["image"] = self._image(svc["image"])
        for key in ("network_mode", "ipc", "pid"):
            if isinstance(svc.get(key), str):
                svc[key] = _container_ref(svc[key])
        if isinstance(svc.get("volumes_from"), list):
            svc["volumes_from"] = [
                _container_ref(v) if isinstance(v, str) else v for v in svc["volumes_from"]
            ]
        if isinstance(svc.get("ports"), list):
            svc["ports"] = [self._port(name, p) for p in svc["ports"]]
        if isinstance(svc.get("volumes"), list):
            svc["volumes"] = [self._mount(name, m) for m in svc["volumes"]]
        if "networks" in svc:
            svc["networks"] = self._service_networks(svc["networks"])
        if "environment" in svc:
            svc["environment"] = _map_pairs(svc["environment"], lambda k, v: (k, self._text(v)))
        if "labels" in svc:
            svc["labels"] = _map_pairs(svc["labels"], self._label)
        for key in ("command", "entrypoint"):
            if isinstance(svc.get(key), str):
                svc[key] = self._arg(svc[key])
            elif isinstance(svc.get(key), list):
                svc[key] = [self._arg(a) if isinstance(a, str) else a for a in svc[key]]
        self._traefik_constraint(svc)
        self._file_objects(name, svc, "secrets", "/run/secrets/")
        self._file_objects(name, svc, "configs", "/")

    def _service_networks(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.network_keys.get(n, n) if isinstance(n, str) else n for n in value]
        if isinstance(value, dict):
            return {self.network_keys.get(k, k): v for k, v in value.items()}
        return value

    # -- images

    def _image(self, image: str) -> str:
        match = _VAR_WITH_DEFAULT.match(image)
        if match:
            default = match.group("default")
            new = self._retag(default)
            if new is None:
                return image
            return image[: match.start("default")] + new + image[match.end("default") :]
        return self._retag(image) or image

    def _retag(self, ref: str) -> str | None:
        name = ref.split("@", 1)[0]
        colon, slash = name.rfind(":"), name.rfind("/")
        repo = name[:colon] if colon > slash else name
        if repo.rsplit("/", 1)[-1] not in self.options.app_images:
            return None
        return f"{repo}:{self.options.tag}"

    # -- ports

    def _collect_prod_ports(self, services: Mapping[str, Any]) -> None:
        for svc in services.values():
            for entry in svc.get("ports") or []:
                host = _host_part(entry)
                if host:
                    start, length = self._resolve_host(host)
                    self.prod_ports.update(range(start, start + length))

    def _resolve_host(self, host: str) -> tuple[int, int]:
        """(first port, how many) of a host port spec; variables resolve to their default."""
        match = _VAR_WITH_DEFAULT.match(host)
        if match:
            host = match.group("default")
        elif "$" in host:
            raise ConfigError(
                f"host port {host!r} has no default value",
                hint="write it as ${VAR:-PORT} so staging can move it",
            )
        rng = _PORT_RANGE.match(host)
        if rng is None:
            raise ConfigError(f"host port {host!r} is not a port or a port range")
        start = int(rng.group("start"))
        end = int(rng.group("end") or start)
        if end < start:
            raise ConfigError(f"host port range {host!r} ends before it starts")
        return start, end - start + 1

    def _move_host(self, host: str) -> str:
        start, length = self._resolve_host(host)
        new = self._allocate(start, length)
        return str(new) if length == 1 else f"{new}-{new + length - 1}"

    def _allocate(self, start: int, length: int) -> int:
        memo = self.port_memo.get((start, length))
        if memo is not None:
            return memo
        blocked = self.prod_ports | self.used_ports | set(self.options.taken_ports)

        def free(first: int) -> bool:
            return all(p not in blocked for p in range(first, first + length))

        explicit = self.options.port_map.get(start)
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
            candidate = start + self.options.port_offset
            while candidate + length - 1 <= MAX_PORT and not free(candidate):
                candidate += 1
            if candidate + length - 1 > MAX_PORT or candidate < 1:
                raise ConfigError(
                    f"no free staging host port for {start} with offset {self.options.port_offset}",
                    hint="lower the offset or give a port_map entry",
                )
        self.port_memo[(start, length)] = candidate
        self.used_ports.update(range(candidate, candidate + length))
        return candidate

    def _port(self, service: str, entry: Any) -> Any:
        if isinstance(entry, dict):
            published = entry.get("published")
            if published in (None, ""):
                return entry
            new_published = self._move_host(str(published))
            entry = dict(entry)
            entry["published"] = int(new_published) if isinstance(published, int) else new_published
            self.moves.append(
                PortMove(service, _long_port(entry, published), _long_port(entry, new_published))
            )
            return entry
        text = str(entry)
        host = _host_part(entry)
        if not host:
            return entry
        body, slash, proto = text.partition("/")
        parts = _split_colons(body)
        parts[-2] = self._move_host(host)
        new = ":".join(parts) + (slash + proto)
        self.moves.append(PortMove(service, text, new))
        return new

    # -- mounts

    def _mount(self, service: str, entry: Any) -> Any:
        if isinstance(entry, dict):
            return self._long_mount(service, entry)
        if not isinstance(entry, str):
            return entry
        parts = _split_colons(entry)
        if len(parts) < 2:
            return entry
        source = parts[0]
        if source in self.volume_keys:
            parts[0] = self.volume_keys[source]
            return ":".join(parts)
        if not _is_host_path(source):
            return entry
        mode = parts[2].split(",") if len(parts) > 2 and parts[2] else []
        if source in DOCKER_SOCKETS:
            mode = [m for m in mode if m != "rw"]
            if "ro" not in mode:
                mode.append("ro")
            parts = [*parts[:2], ",".join(mode)]
        self.shared.append(SharedBind(service, source, parts[1], "ro" in mode))
        return ":".join(parts)

    def _long_mount(self, service: str, entry: dict[str, Any]) -> dict[str, Any]:
        entry = dict(entry)
        kind = entry.get("type", "volume")
        source = entry.get("source")
        if kind == "volume" and isinstance(source, str) and source in self.volume_keys:
            entry["source"] = self.volume_keys[source]
        elif kind == "bind" and isinstance(source, str):
            if source in DOCKER_SOCKETS:
                entry["read_only"] = True
            self.shared.append(
                SharedBind(service, source, str(entry.get("target")), bool(entry.get("read_only")))
            )
        return entry

    def _file_objects(self, service: str, svc: dict[str, Any], kind: str, root: str) -> None:
        """Report file-backed secrets and configs: both stacks read the same host file."""
        top = self.data.get(kind)
        uses = svc.get(kind)
        if not isinstance(top, dict) or not isinstance(uses, list):
            return
        for use in uses:
            name = use.get("source") if isinstance(use, dict) else use
            spec = top.get(name) if isinstance(name, str) else None
            if not isinstance(spec, dict) or not spec.get("file"):
                continue
            target = use.get("target") if isinstance(use, dict) else None
            if not target:
                target = f"{root}{name}"
            elif kind == "secrets" and not str(target).startswith("/"):
                target = f"{root}{target}"
            self.shared.append(SharedBind(service, str(spec["file"]), str(target), True))

    # -- hostnames, labels, commands

    def _domain_regex(self) -> re.Pattern[str]:
        var = re.escape(self.options.domain_var)
        learned = set(self.options.domains)
        default_rx = re.compile(r"\$\{" + var + r":?-([^}]+)\}")
        for text in _strings(self.data):
            learned.update(d for d in default_rx.findall(text) if "." in d)
        var_forms = r"\$\{" + var + r"(?::?[-?+][^}]*)?\}|\$" + var + r"(?![A-Za-z0-9_])"
        literal = "|".join(re.escape(d) for d in sorted(learned, key=len, reverse=True))
        domain = var_forms + (f"|{literal}" if literal else "")
        return re.compile(
            r"(?<![\w@-])(?P<prefix>(?:[A-Za-z0-9-]+\.)*)(?P<domain>" + domain + r")"
            r"(?![\w-])(?!\.[A-Za-z0-9])"
        )

    def _text(self, value: Any) -> Any:
        """Move every public hostname under ``staging.``; other values pass through."""
        if not isinstance(value, str):
            return value

        def sub(match: re.Match[str]) -> str:
            prefix = match.group("prefix")
            if prefix.lower().endswith("staging."):
                return match.group(0)
            return f"{prefix}staging.{match.group('domain')}"

        return self.domain_rx.sub(sub, value)

    def _arg(self, arg: str) -> str:
        arg = self._text(arg)
        flag, eq, value = arg.partition("=")
        if eq and flag == "--providers.docker.network" and value in self.network_names:
            return f"{flag}={self.network_names[value]}"
        return arg

    def _traefik_constraint(self, svc: dict[str, Any]) -> None:
        command = svc.get("command")
        if not isinstance(command, list):
            return
        args = [a for a in command if isinstance(a, str)]
        if not any(a.startswith("--providers.docker") for a in args):
            return
        mine = f"Label(`com.docker.compose.project`,`{self.project}`)"
        flag = "--providers.docker.constraints="
        for i, arg in enumerate(command):
            if isinstance(arg, str) and arg.startswith(flag):
                command[i] = f"{flag}({arg[len(flag) :]}) && {mine}"
                return
        command.append(flag + mine)

    _TRAEFIK_KEY = re.compile(
        r"^traefik\.(?P<proto>http|tcp|udp)\.(?P<kind>routers|services|middlewares)\."
        r"(?P<name>[^.]+)(?P<rest>\..*)$"
    )

    def _collect_traefik_names(self, services: Mapping[str, Any]) -> None:
        for svc in services.values():
            for key, _value in _pairs(svc.get("labels")):
                match = self._TRAEFIK_KEY.match(key)
                if match:
                    kind = (match.group("proto"), match.group("kind"))
                    self.traefik_names.setdefault(kind, set()).add(match.group("name"))

    def _traefik_ref(self, proto: str, kind: str, ref: str) -> str:
        name, at, provider = ref.strip().partition("@")
        if (at and provider != "docker") or name not in self.traefik_names.get((proto, kind), ()):
            return ref
        return staging_key(name) + at + provider

    def _label(self, key: str, value: Any) -> tuple[str, Any]:
        value = self._text(value)
        if key == "traefik.docker.network" and isinstance(value, str):
            return key, self.network_names.get(value, value)
        match = self._TRAEFIK_KEY.match(key)
        if not match:
            return key, value
        proto, kind, name, rest = match.group("proto", "kind", "name", "rest")
        key = f"traefik.{proto}.{kind}.{staging_key(name)}{rest}"
        if isinstance(value, str) and kind == "routers" and rest == ".service":
            value = self._traefik_ref(proto, "services", value)
        elif isinstance(value, str) and rest.endswith(".middlewares"):
            value = ",".join(self._traefik_ref(proto, "middlewares", v) for v in value.split(","))
        return key, value


# --- small helpers ------------------------------------------------------------------------------


def _external(spec: Any) -> bool:
    return isinstance(spec, dict) and bool(spec.get("external"))


def _container_ref(value: str) -> str:
    """``container:meeshy-x`` names a container: follow the container rename."""
    kind, colon, rest = value.partition(":")
    if colon and kind == "container" and not rest.startswith("$"):
        return f"{kind}:{staging_container_name(rest)}"
    return value


def _host_part(entry: Any) -> str | None:
    """The host port of a port entry, None when it publishes none."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return None if published in (None, "") else str(published)
    if isinstance(entry, int) or not isinstance(entry, str):
        return None
    parts = _split_colons(entry.partition("/")[0])
    if len(parts) < 2 or not parts[-2]:
        return None
    return parts[-2]


def _long_port(entry: Mapping[str, Any], published: Any) -> str:
    ip = f"{entry['host_ip']}:" if entry.get("host_ip") else ""
    proto = f"/{entry['protocol']}" if entry.get("protocol") else ""
    return f"{ip}{published}:{entry.get('target')}{proto}"


def _is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~", "$")) or "/" in source


def _pairs(value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        yield from ((str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                key, _eq, val = item.partition("=")
                yield key, val


def _map_pairs(value: Any, fn: Callable[[str, Any], tuple[str, Any]]) -> Any:
    """Apply ``fn(key, value)`` to a mapping or a ``KEY=VALUE`` list, keeping its form."""
    if isinstance(value, dict):
        return dict(fn(str(k), v) for k, v in value.items())
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str) and "=" in item:
                key, _eq, val = item.partition("=")
                new_key, new_val = fn(key, val)
                out.append(f"{new_key}={new_val}")
            elif isinstance(item, str):
                out.append(fn(item, None)[0])
            else:
                out.append(item)
        return out
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def generate(
    prod: Mapping[str, Any],
    options: StagingOptions = StagingOptions(),  # frozen: safe as a default
    *,
    source: str = "the prod compose file",
) -> StagingCompose:
    """Derive the staging configuration from prod's; ``prod`` is never mutated."""
    gen = _Generator(prod, options)
    data = gen.run()
    return StagingCompose(
        data=data,
        shared_binds=tuple(gen.shared),
        port_moves=tuple(gen.moves),
        renamed_volumes=tuple(gen.renamed_volumes),
        source=source,
    )
