"""Generate the staging configuration from prod's (plan of 2026-01-25, step 4).

The staging file is the prod configuration, separated so both run on one host: every Docker
object gets a staging name (:mod:`.names`, :mod:`.objects`), every published host port moves
(:mod:`.ports`), every public hostname moves under ``staging.<domain>`` (:mod:`.hostnames`),
Traefik's names move with them (:mod:`.traefik`), the app images switch to the ``staging`` tag
(:mod:`.images`). This module only puts those together.

Decisions:

* **Service keys are kept.** Isolation comes from the compose project (top-level ``name:``
  becomes ``meeshy-staging``), staging container names and a staging network: a service's DNS
  name only resolves on the networks it joins, and those are all renamed. Keeping the keys means
  internal hostnames (``mongodb://database:27017``, ``redis://redis:6379``), ``depends_on``,
  ``links`` and ``extends: {service: ...}`` stay valid untouched, and, decisively, the MongoDB
  replica set configuration copied with the prod data volume names its members by hostname
  (``database:27017``): renamed services would leave the copied replica set unable to find itself.
* **Traefik names are renamed**, and a staging Traefik whose command enables the docker
  provider gets a constraint limiting it to the staging project's containers.
* **Bind mounts** of host files are kept (both stacks read the same file) and reported; the
  Docker socket is forced read-only (:mod:`.mounts`).
* **External networks and volumes** are renamed and reported: they must exist before ``up``.

Not handled: ``include:`` and ``extends`` from another file (refused: flatten with
``docker compose config`` first), ``env_file`` contents, string-form Traefik commands (no
constraint added), IPAM subnets (a fixed prod subnet would overlap), hostnames in
``extra_hosts``/healthchecks, and ``x-`` extension blocks (left as they are; compose ignores them).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.lib.compose.hostnames import HostnameMover
from tasks.lib.compose.images import staging_image
from tasks.lib.compose.mounts import SharedBind, file_objects, move_mount
from tasks.lib.compose.names import staging_container_name, staging_project_name
from tasks.lib.compose.objects import ExternalObject, RenamedObjects, rename_objects
from tasks.lib.compose.ports import PortAllocator, PortMove, move_port, published_host_ports
from tasks.lib.compose.syntax import map_pairs, strings
from tasks.lib.compose.traefik import TraefikRenamer, constrained
from tasks.lib.compose.yaml import dump_compose
from tasks.lib.errors import ConfigError

DEFAULT_PROJECT = "meeshy-staging"


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
class StagingCompose:
    """The generated staging configuration and what the generation did."""

    data: dict[str, Any]
    shared_binds: tuple[SharedBind, ...]
    port_moves: tuple[PortMove, ...]
    renamed_volumes: tuple[tuple[str, str], ...]
    external: tuple[ExternalObject, ...] = ()
    source: str = "the prod compose file"

    def render(self) -> str:
        """YAML text, key order preserved, under a do-not-edit header."""
        header = (
            f"# GENERATED from {self.source} by `inv staging.compose`.\n"
            "# Do not edit by hand: change the prod file and regenerate.\n"
        )
        return header + dump_compose(self.data)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.data.get("name"),
            "services": sorted(self.data.get("services", {})),
            "port_moves": [m.to_json() for m in self.port_moves],
            "shared_with_prod": [b.to_json() for b in self.shared_binds],
            "volumes": [{"prod": a, "staging": b} for a, b in self.renamed_volumes],
            "must_exist": [e.to_json() for e in self.external],
        }


def _refuse_what_cannot_be_followed(prod: Mapping[str, Any]) -> None:
    if not isinstance(prod.get("services"), Mapping):
        raise ConfigError("prod compose data has no `services` mapping")
    if "include" in prod:
        raise ConfigError(
            "the prod compose file uses `include:`, which the staging generator cannot follow",
            hint="flatten it first with `docker compose config`",
        )
    for name, svc in prod["services"].items():
        if not isinstance(svc, Mapping):
            raise ConfigError(f"service {name!r} is not a mapping")
        extends = svc.get("extends")
        if isinstance(extends, Mapping) and extends.get("file"):
            raise ConfigError(
                f"service {name!r} extends a service from {extends['file']!r}, "
                "which the staging generator cannot rewrite",
                hint="flatten it first with `docker compose config`",
            )


def _container_ref(value: str) -> str:
    """``container:meeshy-x`` names a container: follow the container rename."""
    kind, colon, rest = value.partition(":")
    if colon and kind == "container" and not rest.startswith("$"):
        return f"{kind}:{staging_container_name(rest)}"
    return value


@dataclass
class _Rewrite:
    """What every service is rewritten with, and what the rewriting found."""

    options: StagingOptions
    project: str
    top: Mapping[str, Any]
    objects: RenamedObjects
    ports: PortAllocator
    hostnames: HostnameMover
    traefik: TraefikRenamer
    shared: list[SharedBind] = field(default_factory=list)
    moves: list[PortMove] = field(default_factory=list)


def _argument(arg: Any, r: _Rewrite) -> Any:
    return r.traefik.argument(r.hostnames.move(arg)) if isinstance(arg, str) else arg


def _service(name: str, svc: dict[str, Any], r: _Rewrite) -> None:
    """Rewrite one service (a copy of prod's) in place for staging."""
    if isinstance(svc.get("container_name"), str):
        svc["container_name"] = staging_container_name(svc["container_name"])
    if isinstance(svc.get("image"), str):
        svc["image"] = staging_image(svc["image"], r.options.app_images, r.options.tag)
    for key in ("network_mode", "ipc", "pid"):
        if isinstance(svc.get(key), str):
            svc[key] = _container_ref(svc[key])
    if isinstance(svc.get("volumes_from"), list):
        svc["volumes_from"] = [
            _container_ref(v) if isinstance(v, str) else v for v in svc["volumes_from"]
        ]
    if isinstance(svc.get("ports"), list):
        moved = [move_port(name, p, r.ports) for p in svc["ports"]]
        svc["ports"] = [entry for entry, _move in moved]
        r.moves.extend(move for _entry, move in moved if move)
    if isinstance(svc.get("volumes"), list):
        mounts = [move_mount(name, m, r.objects.volume_keys) for m in svc["volumes"]]
        svc["volumes"] = [entry for entry, _bind in mounts]
        r.shared.extend(bind for _entry, bind in mounts if bind)
    if isinstance(svc.get("networks"), list):
        keys = r.objects.network_keys
        svc["networks"] = [keys.get(n, n) if isinstance(n, str) else n for n in svc["networks"]]
    elif isinstance(svc.get("networks"), dict):
        keys = r.objects.network_keys
        svc["networks"] = {keys.get(k, k): v for k, v in svc["networks"].items()}
    if "environment" in svc:
        svc["environment"] = map_pairs(svc["environment"], lambda k, v: (k, r.hostnames.move(v)))
    if "labels" in svc:
        svc["labels"] = map_pairs(
            svc["labels"], lambda k, v: r.traefik.label(k, r.hostnames.move(v))
        )
    for key in ("command", "entrypoint"):
        if isinstance(svc.get(key), str):
            svc[key] = _argument(svc[key], r)
        elif isinstance(svc.get(key), list):
            svc[key] = [_argument(a, r) for a in svc[key]]
    if "command" in svc:
        svc["command"] = constrained(svc["command"], r.project)
    r.shared.extend(
        file_objects(name, svc.get("secrets"), r.top.get("secrets"), "secrets", "/run/secrets/")
    )
    r.shared.extend(file_objects(name, svc.get("configs"), r.top.get("configs"), "configs", "/"))


def generate(
    prod: Mapping[str, Any],
    options: StagingOptions = StagingOptions(),  # frozen: safe as a default
    *,
    source: str = "the prod compose file",
) -> StagingCompose:
    """Derive the staging configuration from prod's; ``prod`` is never mutated."""
    _refuse_what_cannot_be_followed(prod)
    data: dict[str, Any] = copy.deepcopy(dict(prod))
    prod_name = data.get("name")
    prod_project = str(prod_name) if prod_name else options.prod_project
    project = staging_project_name(str(prod_name)) if prod_name else DEFAULT_PROJECT
    objects = rename_objects(data, project, prod_project)
    if objects.networks is not None:
        data["networks"] = objects.networks
    if objects.volumes is not None:
        data["volumes"] = objects.volumes
    services: dict[str, Any] = data["services"]
    rewrite = _Rewrite(
        options=options,
        project=project,
        top=data,
        objects=objects,
        ports=PortAllocator(
            prod_ports=published_host_ports(prod),
            offset=options.port_offset,
            port_map=options.port_map,
            taken=frozenset(options.taken_ports),
        ),
        hostnames=HostnameMover(options.domain_var, options.domains, strings(data)),
        traefik=TraefikRenamer(services, objects.network_names),
    )
    for name, svc in services.items():
        _service(str(name), svc, rewrite)
    rest = {k: v for k, v in data.items() if k != "name"}
    return StagingCompose(
        data={"name": project, **rest},
        shared_binds=tuple(rewrite.shared),
        port_moves=tuple(rewrite.moves),
        renamed_volumes=objects.renamed_volumes,
        external=objects.external,
        source=source,
    )
