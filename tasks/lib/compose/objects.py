"""Top-level networks and volumes: staging keys and staging Docker names.

Keys gain ``staging`` (``gateway_uploads`` -> ``gateway_staging_uploads``; the ``default``
network keeps its key); an object with a ``name:`` gets the staging name of that name, an
unnamed one is named by compose from the staging project (``meeshy-staging_<key>``).

External objects (``external: true``) are renamed too: sharing prod's network or volume would
undo the separation (a shared volume is prod's data). Compose never creates an external object,
so each renamed one is reported (:class:`ExternalObject`): it must exist before
``docker compose up``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tasks.lib.compose.names import staging_key, staging_network_name, staging_volume_name


@dataclass(frozen=True)
class ExternalObject:
    """An external network or volume of staging: compose does not create it."""

    kind: str  # "network" or "volume"
    prod: str
    staging: str

    def create_argv(self) -> list[str]:
        """The command that creates it empty."""
        return ["docker", self.kind, "create", self.staging]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "prod": self.prod,
            "staging": self.staging,
            "create": self.create_argv(),
        }


@dataclass(frozen=True)
class RenamedObjects:
    """The staging ``networks:`` and ``volumes:`` blocks and the maps services follow."""

    networks: dict[str, Any] | None
    volumes: dict[str, Any] | None
    network_keys: Mapping[str, str]
    network_names: Mapping[str, str]  # prod Docker name -> staging Docker name
    volume_keys: Mapping[str, str]
    renamed_volumes: tuple[tuple[str, str], ...]  # (prod Docker name, staging Docker name)
    external: tuple[ExternalObject, ...]


def _external(spec: Any) -> bool:
    return isinstance(spec, Mapping) and bool(spec.get("external"))


def docker_name(key: str, spec: Any, project: str | None) -> str | None:
    """The Docker name compose gives a top-level network or volume: its ``name:``, an
    external one's key, else ``<project>_<key>`` (None: no project to name it by)."""
    if isinstance(spec, Mapping) and spec.get("name"):
        return str(spec["name"])
    if _external(spec):
        return key
    return f"{project}_{key}" if project else None


def docker_names(block: Any, project: str | None) -> dict[str, tuple[str, bool]]:
    """compose key -> (Docker name, external) for a top-level ``networks:`` or ``volumes:``
    block, raw or normalised (an object compose cannot name yet is left out)."""
    out: dict[str, tuple[str, bool]] = {}
    for key, spec in block.items() if isinstance(block, Mapping) else ():
        name = docker_name(str(key), spec, project)
        if name is not None:
            out[str(key)] = (name, _external(spec))
    return out


@dataclass(frozen=True)
class _Renamed:
    block: dict[str, Any]
    keys: dict[str, str]
    names: list[tuple[str, str]]
    external: list[ExternalObject]


def _rename(
    block: dict[str, Any],
    kind: str,
    project: str,
    prod_project: str | None,
    new_key: Callable[[str], str],
    new_name: Callable[[str], str],
) -> _Renamed:
    out: dict[str, Any] = {}
    keys: dict[str, str] = {}
    names: list[tuple[str, str]] = []
    external: list[ExternalObject] = []
    for raw_key, spec in block.items():
        key = str(raw_key)
        staging = new_key(key)
        keys[key] = staging
        prod_docker = docker_name(key, spec, prod_project)
        new = dict(spec) if isinstance(spec, dict) else {}
        if "name" in new or _external(new):
            new["name"] = new_name(prod_docker or key)
            staging_docker = str(new["name"])
        else:
            staging_docker = f"{project}_{staging}"
        if prod_docker:
            names.append((prod_docker, staging_docker))
        if _external(new):
            external.append(ExternalObject(kind, prod_docker or key, staging_docker))
        out[staging] = new or None
    return _Renamed(out, keys, names, external)


def rename_objects(
    data: Mapping[str, Any], project: str, prod_project: str | None
) -> RenamedObjects:
    """Staging's networks and volumes for prod's ``data`` (not changed)."""
    networks = data.get("networks")
    volumes = data.get("volumes")
    nets = (
        _rename(
            networks,
            "network",
            project,
            prod_project,
            lambda k: k if k == "default" else staging_key(k),
            staging_network_name,
        )
        if isinstance(networks, dict)
        else None
    )
    vols = (
        _rename(volumes, "volume", project, prod_project, staging_key, staging_volume_name)
        if isinstance(volumes, dict)
        else None
    )
    return RenamedObjects(
        networks=nets.block if nets else None,
        volumes=vols.block if vols else None,
        network_keys=nets.keys if nets else {},
        network_names=dict(nets.names) if nets else {},
        volume_keys=vols.keys if vols else {},
        renamed_volumes=tuple(vols.names) if vols else (),
        external=tuple((nets.external if nets else []) + (vols.external if vols else [])),
    )
