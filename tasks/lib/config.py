"""Configuration in one place, resolved once into frozen dataclasses.

Override order (lowest first): ``DEFAULTS`` below -> the project's ``invoke.yaml`` (or any
Invoke config file) -> ``INVOKE_MEESHY_*`` env vars -> ``MEESHY_ROOT`` / ``DOCKER_REGISTRY`` ->
task flags. Invoke merges the first three into ``c.config.meeshy``; :func:`resolve` applies the
rest and validates. The defaults equal the Makefile's (``../shared/spec/meeshy.md``).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tasks.lib.errors import ConfigError

Policy = Literal["generate", "copy", "none"]
POLICIES: tuple[str, ...] = ("generate", "copy", "none")
SCHEMA_LABEL = "me.meeshy.schema.sha256"
SCHEMA_PATH_LABEL = "me.meeshy.schema.path"
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")
DEFAULT_VERSION = "1.0.0"

# Every key Invoke may override must exist here (INVOKE_* env vars only override existing keys).
DEFAULTS: dict[str, Any] = {
    "root": ".",
    "registry": "isopen",
    "tag": "latest",
    "schema": "packages/shared/prisma/schema.prisma",
    "context": ".",
    "docker_context": "",
    "builder": "",
    "all": ["gateway", "translator", "web"],
    "services": {
        "gateway": {
            "dockerfile": "services/gateway/Dockerfile",
            "image": "meeshy-gateway",
            "version_file": "services/gateway/VERSION",
            "schema_policy": "generate",
            "build_args": {"PACKAGE_MANAGER": "bun"},
            "tags": ["v{version}", "latest"],
            "push_tags": ["v{version}", "latest"],
            "load": False,
            "schema_paths": [
                "/app/dist/packages/shared/prisma/schema.prisma",
                "/app/packages/shared/prisma/schema.prisma",
            ],
            "variants": {},
            "default_variant": "",
        },
        "translator": {
            "dockerfile": "services/translator/Dockerfile",
            "image": "meeshy-translator",
            "version_file": "services/translator/VERSION",
            "schema_policy": "generate",
            "build_args": {},
            "tags": [],
            "push_tags": ["v{version}", "latest", "cpu"],
            "load": True,
            "schema_paths": ["/workspace/shared/prisma/schema.prisma"],
            "variants": {
                "cpu": {
                    "build_args": {"TORCH_BACKEND": "cpu"},
                    "tags": ["v{version}-cpu", "v{version}", "latest", "cpu"],
                },
                "gpu": {"build_args": {"TORCH_BACKEND": "gpu"}, "tags": ["v{version}-gpu", "gpu"]},
                "gpu-cu121": {
                    "build_args": {"TORCH_BACKEND": "gpu-cu121"},
                    "tags": ["v{version}-gpu-cu121"],
                },
                "gpu-cu118": {
                    "build_args": {"TORCH_BACKEND": "gpu-cu118"},
                    "tags": ["v{version}-gpu-cu118"],
                },
            },
            "default_variant": "cpu",
        },
        "web": {
            "dockerfile": "apps/web/Dockerfile",
            "image": "meeshy-web",
            "version_file": "apps/web/VERSION",
            "schema_policy": "copy",
            "build_args": {"PACKAGE_MANAGER": "bun"},
            "tags": ["v{version}", "latest"],
            "push_tags": ["v{version}", "latest"],
            "load": False,
            "schema_paths": [],
            "variants": {},
            "default_variant": "",
        },
    },
}

_SERVICE_KEYS = set(DEFAULTS["services"]["gateway"])
_VARIANT_KEYS = {"build_args", "tags"}


def defaults() -> dict[str, Any]:
    """A fresh copy of the defaults (for ``Collection.configure``)."""
    return copy.deepcopy(DEFAULTS)


@dataclass(frozen=True)
class Variant:
    name: str
    build_args: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Service:
    name: str
    dockerfile: str
    image: str
    version_file: str
    schema_policy: Policy
    build_args: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    push_tags: tuple[str, ...]
    load: bool
    schema_paths: tuple[str, ...]
    variants: tuple[Variant, ...]
    default_variant: str

    def variant(self, name: str | None) -> Variant | None:
        """The named variant, the default one, or None for a service without variants."""
        if not self.variants:
            if name:
                raise ConfigError(
                    f"service {self.name!r} has no variants, got --variant {name!r}",
                    hint="drop --variant",
                )
            return None
        wanted = name or self.default_variant
        for v in self.variants:
            if v.name == wanted:
                return v
        known = ", ".join(v.name for v in self.variants)
        raise ConfigError(f"unknown {self.name} variant {wanted!r}", hint=f"choose one of {known}")


@dataclass(frozen=True)
class Settings:
    root: Path
    registry: str
    tag: str
    schema: str
    context: str
    docker_context: str
    builder: str
    all: tuple[str, ...]
    services: tuple[Service, ...]

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.services)
        raise ConfigError(f"unknown service {name!r}", hint=f"choose one of {known}")

    def repository(self, service: Service) -> str:
        return f"{self.registry}/{service.image}" if self.registry else service.image

    def version(self, service: Service) -> str:
        return read_version(self.root, service.version_file)

    def schema_sha256(self) -> str | None:
        """The sha256 of the monorepo's shared schema; None when the file is missing."""
        from tasks.lib.gate import schema_sha256

        path = self.root / self.schema
        return schema_sha256(path) if path.is_file() else None


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of NAME: value, got {value!r}")
    return tuple((str(k), str(v)) for k, v in value.items())


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"unknown config key {where}.{key}",
                hint=f"fix invoke.yaml or INVOKE_* env; known keys: {', '.join(sorted(allowed))}",
            )


def _service(name: str, raw: Mapping[str, Any]) -> Service:
    where = f"meeshy.services.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    _check_keys(raw, _SERVICE_KEYS, where)
    base = DEFAULTS["services"].get(name, {})
    merged = {**{k: None for k in _SERVICE_KEYS}, **base, **raw}
    policy = str(merged["schema_policy"] or "none")
    if policy not in POLICIES:
        raise ConfigError(
            f"{where}.schema_policy is {policy!r}", hint=f"use one of {', '.join(POLICIES)}"
        )
    variants = []
    for vname, vraw in (merged["variants"] or {}).items():
        if not isinstance(vraw, Mapping):
            raise ConfigError(f"{where}.variants.{vname} must be a mapping")
        _check_keys(vraw, _VARIANT_KEYS, f"{where}.variants.{vname}")
        variants.append(
            Variant(
                name=str(vname),
                build_args=_pairs(vraw.get("build_args"), f"{where}.variants.{vname}.build_args"),
                tags=_strings(vraw.get("tags"), f"{where}.variants.{vname}.tags"),
            )
        )
    for required in ("dockerfile", "image"):
        if not merged[required]:
            raise ConfigError(f"{where}.{required} is not set", hint="add it to invoke.yaml")
    default_variant = str(merged["default_variant"] or "")
    if variants and default_variant not in {v.name for v in variants}:
        raise ConfigError(f"{where}.default_variant {default_variant!r} is not a variant")
    return Service(
        name=name,
        dockerfile=str(merged["dockerfile"]),
        image=str(merged["image"]),
        version_file=str(merged["version_file"] or ""),
        schema_policy=policy,  # type: ignore[arg-type]
        build_args=_pairs(merged["build_args"], f"{where}.build_args"),
        tags=_strings(merged["tags"], f"{where}.tags"),
        push_tags=_strings(merged["push_tags"], f"{where}.push_tags"),
        load=bool(merged["load"]),
        schema_paths=_strings(merged["schema_paths"], f"{where}.schema_paths"),
        variants=tuple(variants),
        default_variant=default_variant,
    )


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge like Invoke does: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def resolve(
    raw: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    project_dir: Path,
    cwd: Path | None = None,
    root: str | None = None,
    registry: str | None = None,
    docker_context: str | None = None,
    builder: str | None = None,
) -> Settings:
    """Resolve Invoke's merged ``meeshy`` config, the env and the flags into Settings.

    A relative ``root`` from config is relative to ``project_dir`` (where invoke.yaml lives);
    one from ``--root`` or ``MEESHY_ROOT`` is relative to ``cwd``.
    """
    data = dict(raw)
    _check_keys(data, set(DEFAULTS), "meeshy")
    merged = deep_merge(defaults(), data)
    cwd = cwd or Path.cwd()
    if root:
        root_path = cwd / root
    elif env.get("MEESHY_ROOT"):
        root_path = cwd / env["MEESHY_ROOT"]
    else:
        root_path = project_dir / str(merged["root"])
    root_path = root_path.resolve()
    if not root_path.is_dir():
        raise ConfigError(
            f"monorepo root {root_path} is not a directory",
            hint="pass --root PATH or set MEESHY_ROOT",
        )
    reg = registry if registry is not None else env.get("DOCKER_REGISTRY") or merged["registry"]
    services_raw = merged["services"]
    if not isinstance(services_raw, Mapping) or not services_raw:
        raise ConfigError("meeshy.services must be a non-empty mapping")
    services = tuple(_service(str(n), s) for n, s in services_raw.items())
    names = {s.name for s in services}
    all_ = _strings(merged["all"], "meeshy.all")
    for n in all_:
        if n not in names:
            raise ConfigError(f"meeshy.all names unknown service {n!r}")
    ctx = docker_context if docker_context is not None else str(merged["docker_context"] or "")
    return Settings(
        root=root_path,
        registry=str(reg).rstrip("/"),
        tag=str(merged["tag"]),
        schema=str(merged["schema"]),
        context=str(merged["context"]),
        docker_context=ctx,
        builder=builder if builder is not None else str(merged["builder"] or ""),
        all=all_,
        services=services,
    )


def read_version(root: Path, version_file: str) -> str:
    """The service version from its VERSION file; 1.0.0 when missing (as the Makefile)."""
    if not version_file:
        return DEFAULT_VERSION
    path = root / version_file
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return DEFAULT_VERSION
    except OSError as exc:
        raise ConfigError(f"{version_file}: cannot read ({exc.strerror})") from exc
    if not VERSION_RE.match(text):
        raise ConfigError(
            f"{version_file}: {text[:40]!r} is not a version like 1.2.3",
            hint="write MAJOR.MINOR.PATCH in that file",
        )
    return text


def build_date(now: dt.datetime | None = None) -> str:
    """UTC now as the Makefile's ``date -u +%Y-%m-%dT%H:%M:%SZ``."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def vcs_ref(root: Path) -> str:
    """``git rev-parse --short HEAD`` in the monorepo, or ``local``."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "local"
    ref = out.stdout.strip()
    return ref if out.returncode == 0 and ref else "local"
