"""Configuration in one place, resolved once into frozen dataclasses.

Override order (lowest first): :func:`defaults` (``TOP_KEYS``, ``DEFAULT_SERVICES``) -> the
project's ``invoke.yaml`` (or any Invoke config file) -> ``INVOKE_MEESHY_*`` env vars ->
``MEESHY_ROOT`` / ``DOCKER_REGISTRY`` -> task flags. Invoke merges the first three into
``c.config.meeshy``; :func:`resolve` applies the rest and validates. The defaults equal the
Makefile's (``../shared/spec/meeshy.md``).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import datetime as dt

from tasks.lib.errors import ConfigError

Policy = Literal["generate", "copy", "none"]
POLICIES: tuple[str, ...] = ("generate", "copy", "none")
SCHEMA_LABEL = "me.meeshy.schema.sha256"
SCHEMA_PATH_LABEL = "me.meeshy.schema.path"
# Patterns as text: `re` compiles each on first use and keeps it (loading config, which every
# run does, `inv --list` included, compiles none).
VERSION_RE = r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$"
DEFAULT_VERSION = "1.0.0"
# Docker's reference grammar (distribution/reference): [domain[:port]/]component(/component)*
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PORT = r"(?::\d{1,5})"
# A first component is a registry host only with a dot, a port, or as localhost (as Docker).
DOMAIN = rf"(?:localhost{_PORT}?|{HOST_LABEL}(?:\.{HOST_LABEL})+{_PORT}?|{HOST_LABEL}{_PORT})"
REGISTRY_RE = rf"^(?:{DOMAIN}/)?{COMPONENT}(?:/{COMPONENT})*$|^{DOMAIN}$"
PROJECT_RE = r"^[a-z0-9][a-z0-9_-]*$"  # compose's rule for project names
TAG_RE = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# a buildx builder's name, or a docker context's (buildx takes either for --builder)
BUILDER_RE = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"


def _meta(help_: str) -> dict[str, str]:
    return {"help": help_}


@dataclass(frozen=True)
class Variant:
    """A build variant of a service (the translator's cpu/gpu images)."""

    name: str
    build_args: tuple[tuple[str, str], ...] = field(
        default=(), metadata=_meta("build args of this variant, before the service's own")
    )
    tags: tuple[str, ...] = field(default=(), metadata=_meta("tag patterns ({version})"))
    load: bool = field(default=False, metadata=_meta("pass --load (the Makefile does for some)"))


@dataclass(frozen=True)
class Service:
    """One image. Every config key of a service is a field here, declared once: the config
    defaults, the validation and ``invoke.example.yaml`` (checked by a test) follow it."""

    name: str
    dockerfile: str = field(default="", metadata=_meta("Dockerfile, relative to root"))
    image: str = field(default="", metadata=_meta("image name under the registry"))
    version_file: str = field(default="", metadata=_meta("VERSION file (1.0.0 if missing)"))
    schema_policy: Policy = field(default="none", metadata=_meta("generate | copy | none"))
    build_args: tuple[tuple[str, str], ...] = field(default=(), metadata=_meta("build args"))
    tags: tuple[str, ...] = field(default=(), metadata=_meta("tag patterns ({version})"))
    push_tags: tuple[str, ...] = field(default=(), metadata=_meta("tags images.push pushes"))
    load: bool = field(default=False, metadata=_meta("pass --load"))
    schema_paths: tuple[str, ...] = field(
        default=(), metadata=_meta("where images.validate looks for the schema in the image")
    )
    variants: tuple[Variant, ...] = field(default=(), metadata=_meta("build variants"))
    default_variant: str = field(default="", metadata=_meta("variant built by default"))

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
        raise ConfigError(
            f"unknown {self.name} variant {wanted!r}",
            hint=did_you_mean(wanted, [v.name for v in self.variants]),
        )

    def loads(self, variant: Variant | None) -> bool:
        """``--load`` belongs to the variant when there is one (the Makefile passes it for
        translator cpu and gpu, not for gpu-cu121), else to the service."""
        return variant.load if variant is not None else self.load

    def to_config(self) -> dict[str, Any]:
        """This service as config data (what ``invoke.yaml`` would say)."""
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if f.name == "variants":
                value = {
                    v.name: {"build_args": dict(v.build_args), "tags": list(v.tags), "load": v.load}
                    for v in value
                }
            elif f.name == "build_args":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        return data


DEFAULT_SERVICES: tuple[Service, ...] = (
    Service(
        name="gateway",
        dockerfile="services/gateway/Dockerfile",
        image="meeshy-gateway",
        version_file="services/gateway/VERSION",
        schema_policy="generate",
        build_args=(("PACKAGE_MANAGER", "bun"),),
        tags=("v{version}", "latest"),
        push_tags=("v{version}", "latest"),
        schema_paths=(
            "/app/dist/packages/shared/prisma/schema.prisma",
            "/app/packages/shared/prisma/schema.prisma",
        ),
    ),
    Service(
        name="translator",
        dockerfile="services/translator/Dockerfile",
        image="meeshy-translator",
        version_file="services/translator/VERSION",
        schema_policy="generate",
        push_tags=("v{version}", "latest", "cpu"),
        schema_paths=("/workspace/shared/prisma/schema.prisma",),
        variants=(
            Variant(
                "cpu",
                (("TORCH_BACKEND", "cpu"),),
                ("v{version}-cpu", "v{version}", "latest", "cpu"),
                load=True,
            ),
            Variant("gpu", (("TORCH_BACKEND", "gpu"),), ("v{version}-gpu", "gpu"), load=True),
            Variant("gpu-cu121", (("TORCH_BACKEND", "gpu-cu121"),), ("v{version}-gpu-cu121",)),
            Variant("gpu-cu118", (("TORCH_BACKEND", "gpu-cu118"),), ("v{version}-gpu-cu118",)),
        ),
        default_variant="cpu",
    ),
    Service(
        name="web",
        dockerfile="apps/web/Dockerfile",
        image="meeshy-web",
        version_file="apps/web/VERSION",
        schema_policy="copy",
        build_args=(("PACKAGE_MANAGER", "bun"),),
        tags=("v{version}", "latest"),
        push_tags=("v{version}", "latest"),
    ),
)

# Top-level keys: name -> (default, help). Every key Invoke may override must exist in the
# defaults (INVOKE_MEESHY_* env vars only override existing keys); ``services`` comes from
# DEFAULT_SERVICES. ``all`` is a comma-separated string (a YAML list works too) so that
# ``INVOKE_MEESHY_ALL=gateway,web`` works: Invoke cannot cast an env var onto a list.
TOP_KEYS: dict[str, tuple[Any, str]] = {
    "root": (".", "the Meeshy monorepo (relative to the config file); or MEESHY_ROOT / --root"),
    "registry": ("isopen", "image namespace; or DOCKER_REGISTRY / --registry"),
    "tag": ("latest", "the tag staging.tag starts from"),
    "schema": ("packages/shared/prisma/schema.prisma", "the shared Prisma schema, in root"),
    "context": (".", "build context, relative to root (the Makefile uses the repo root)"),
    "docker_context": ("", "a Docker context name; or --context"),
    "builder": ("", "a buildx builder; or --builder"),
    "all": ("gateway,translator,web", "what build.all builds (comma-separated or a list)"),
    "ssh": (
        {
            "config": "",
            "connect_timeout": 10,
            "socket": "/var/run/docker.sock",
            "tty": True,
            "nodelay": True,
        },
        "reaching an ssh:// engine: an ssh_config file (-F; default ~/.ssh/config), ssh's "
        "ConnectTimeout in seconds, the Docker socket on the server, a pty session beside "
        "the forward (sshd sends at once only then; false for forward-only keys), a TCP "
        "connection with Nagle's algorithm off (false: ssh connects itself)",
    ),
}

# Named compose stacks (``stack.* --env NAME``): compose file, project name and env file, all
# relative to root; the Makefile's three plus the staging file ``staging.compose`` writes.
_COMPOSE_DIR = "infrastructure/docker/compose"
_ENV_EXAMPLE = "infrastructure/envs/.env.example"
DEFAULT_STACKS: dict[str, dict[str, str]] = {
    env: {
        "file": f"{_COMPOSE_DIR}/docker-compose.{env}.yml",
        "project": f"meeshy-{env}",
        "env_file": _ENV_EXAMPLE,
    }
    for env in ("dev", "local", "prod", "staging")
}
STACK_KEYS = ("file", "project", "env_file")


def defaults() -> dict[str, Any]:
    """A fresh copy of the defaults (for ``Collection.configure``)."""
    data: dict[str, Any] = {k: copy.deepcopy(v[0]) for k, v in TOP_KEYS.items()}
    data["services"] = {s.name: s.to_config() for s in DEFAULT_SERVICES}
    data["stacks"] = copy.deepcopy(DEFAULT_STACKS)
    return data


ENV_PREFIX = "INVOKE_MEESHY_"


def check_env_vars(config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Refuse the ``INVOKE_MEESHY_*`` variables Invoke would silently misread: one that names
    no setting of the merged config (Invoke ignores it: a typo changes nothing), one that names
    a group of settings (Invoke reads variables for single settings only, and ignores it too),
    and one for a yes/no setting holding anything but 1, 0 or nothing (Invoke takes ``false``
    as true)."""
    known: dict[str, Any] = {}
    dotted: dict[str, str] = {}

    def walk(data: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in data.items():
            here = (*path, str(key))
            var = ENV_PREFIX + "_".join(here).upper()
            known[var], dotted[var] = value, ".".join(("meeshy", *here))
            if isinstance(value, Mapping):
                walk(value, here)

    walk(config, ())
    for var in sorted(v for v in environ if v.startswith(ENV_PREFIX)):
        if var not in known:
            # compared without the prefix every name shares, which would make any two close
            leaves = [
                n.removeprefix(ENV_PREFIX) for n, v in known.items() if not isinstance(v, Mapping)
            ]
            close = closest(var.removeprefix(ENV_PREFIX), leaves)
            raise ConfigError(
                f"{var} names no meeshy setting (Invoke would ignore it)",
                hint=f"did you mean {ENV_PREFIX}{close}?"
                if close
                else "unset it (README: Configuration)",
            )
        if isinstance(known[var], Mapping):  # Invoke reads variables for leaves only
            under = dotted[var] + "."
            keys = [
                v
                for v, d in dotted.items()
                if d.startswith(under) and not isinstance(known[v], Mapping)
            ]
            raise ConfigError(
                f"{var} names the group {dotted[var]}, not one setting (Invoke would ignore it)",
                hint=f"set {dotted[var]} in invoke.yaml"
                + (f", or a setting in it ({', '.join(keys[:3])})" if keys else ""),
            )
        if isinstance(known[var], bool) and environ[var].strip() not in ("", "0", "1"):
            raise ConfigError(
                f"{var}={environ[var]!r}: Invoke reads anything but 0 or nothing as true",
                hint="set it to 1 or 0",
            )


def _must_match(value: str, pattern: str, where: str, what: str, hint: str) -> str:
    """``value`` if it matches ``pattern``, else one line: ``where`` gave it, it is not
    ``what``, and ``hint``."""
    if not re.match(pattern, value):
        raise ConfigError(f"{where} {value!r} is not {what}", hint=hint)
    return value


def check_tag(tag: str, where: str) -> str:
    """``tag`` if Docker accepts it as a tag, else one line naming ``where`` it came from."""
    return _must_match(
        tag,
        TAG_RE,
        where,
        "a valid Docker tag",
        "use letters, digits, '_', '.' and '-' (at most 128, not starting with . or -)",
    )


def check_builder(name: str, where: str) -> str:
    """``name`` if buildx could know a builder (or docker context) by it, or empty (the
    default builder); else one line naming ``where`` it came from, before any build runs."""
    hint = (
        "name one from 'docker buildx ls' (letters, digits, '_', '.', '+', '-'; not starting "
        "with '-'), or leave it empty for the default"
    )
    return name and _must_match(name, BUILDER_RE, where, "a builder name", hint)


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The one choice close to ``value`` (a typo of it), else None."""
    import difflib

    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``did you mean 'x'?`` when one choice is close, else the list of choices."""
    choices = list(choices)
    close = closest(value, choices)
    known = ", ".join(choices) if choices else "(none)"
    return f"did you mean {close!r}? (known: {known})" if close else f"choose one of {known}"


@dataclass(frozen=True)
class StackConfig:
    """A compose stack ``stack.* --env NAME`` works on (paths relative to root)."""

    name: str
    file: str
    project: str
    env_file: str


DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class SshOptions:
    """How to reach an ``ssh://`` engine (config ``meeshy.ssh``)."""

    config: str = ""
    """An ssh_config file passed as ``-F``; empty: ssh's own (``~/.ssh/config``)."""
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT
    """Seconds for ssh's ``ConnectTimeout`` (TCP connect and banner exchange, per hop)."""
    socket: str = DEFAULT_SOCKET
    """The Docker socket on the server (rootless Docker: ``/run/user/UID/docker.sock``)."""
    tty: bool = True
    """Hold a pty session open beside the forward (``-tt`` + ``ssh.KEEPER``, joined through the
    forward's own control socket): sshd sends small packets at once (TCP_NODELAY) only for pty
    sessions, and without it each BuildKit/gRPC exchange can wait on Nagle + delayed ACK (a
    cached build: 0.8 s instead of 0.4 s). A server that refuses it (``no-pty``) ends only the
    session; off: no session (the forward and its control socket stay)."""
    nodelay: bool = True
    """Make the TCP connection with Nagle's algorithm off (``tasks/lib/ssh_dial.py`` as ssh's
    ``ProxyCommand`` with ``ProxyUseFdpass``): ssh's own connect leaves it on until a pty
    session, and each login then waits once on the server's delayed ACK (~40 ms). Never used
    where the host's ssh_config has a ProxyCommand or ProxyJump (theirs apply), binds a local
    address, canonicalizes names or retries; off: ssh connects itself."""

    @property
    def start_deadline(self) -> float:
        """Seconds to wait for the forward: connect (per ProxyJump hop) plus authentication."""
        return 3.0 * self.connect_timeout + 5.0


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
    stacks: tuple[StackConfig, ...] = ()

    def stack(self, name: str) -> StackConfig:
        for st in self.stacks:
            if st.name == name:
                return st
        raise ConfigError(
            f"unknown stack --env {name!r}",
            hint=did_you_mean(name, [st.name for st in self.stacks]),
        )

    ssh: SshOptions = field(default_factory=SshOptions)

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise ConfigError(
            f"unknown service {name!r}", hint=did_you_mean(name, [s.name for s in self.services])
        )

    def repository(self, service: Service) -> str:
        return f"{self.registry}/{service.image}" if self.registry else service.image

    def version(self, service: Service) -> str:
        return read_version(self.root, service.version_file)

    def version_fallback(self, service: Service) -> str | None:
        """A warning when the service's VERSION file is configured but absent: its tags then
        say 1.0.0 (the Makefile's fallback), which a misspelled path would make silently."""
        if not service.version_file or (self.root / service.version_file).exists():
            return None
        return (
            f"{service.version_file} not found: {service.name} is tagged as version "
            f"{DEFAULT_VERSION} (the Makefile's fallback); create the file or fix "
            f"meeshy.services.{service.name}.version_file"
        )

    @functools.cached_property
    def schema_sha256(self) -> str | None:
        """The sha256 of the monorepo's shared schema (read once); None when it is missing."""
        path = self.root / self.schema
        return file_sha256(path) if path.is_file() else None


# -- validation -------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__}"


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{where} must be a string, got {_kind(value)}", hint="fix invoke.yaml (quote it)"
        )
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {_kind(value)}")
    return value


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of NAME: value, got {_kind(value)}")
    out = []
    for k, v in value.items():
        if isinstance(v, Mapping | list | tuple) or v is None:
            raise ConfigError(f"{where}.{k} must be a string, got {_kind(v)}")
        out.append((str(k), str(v).lower() if isinstance(v, bool) else str(v)))
    return tuple(out)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list of strings, got {_kind(value)}")
    for v in value:
        if not isinstance(v, str):
            raise ConfigError(f"{where} must be a list of strings, got {_kind(v)} in it")
    return tuple(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {_kind(value)}", hint="fix invoke.yaml")
    return value


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = sorted(allowed)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"unknown config key {where}.{key}",
                hint=f"fix invoke.yaml or INVOKE_* env; {did_you_mean(str(key), allowed)}",
            )


def check_registry(value: str, where: str) -> str:
    """A registry/namespace as Docker's reference grammar takes it (``isopen``,
    ``ghcr.io/acme``, ``127.0.0.1:5000/team``); empty means unqualified names."""
    hint = "use lowercase words separated by / (e.g. isopen, ghcr.io/acme, localhost:5000/team)"
    return value and _must_match(value, REGISTRY_RE, where, "a registry/namespace", hint)


_SERVICE_FIELDS = {f.name: f for f in fields(Service) if f.name != "name"}
_VARIANT_FIELDS = {f.name for f in fields(Variant) if f.name != "name"}
_DEFAULT_BY_NAME = {s.name: s for s in DEFAULT_SERVICES}


def _variant(name: str, raw: Any, where: str) -> Variant:
    raw = _mapping(raw, where)
    _check_keys(raw, _VARIANT_FIELDS, where)
    return Variant(
        name=name,
        build_args=_pairs(raw.get("build_args"), f"{where}.build_args"),
        tags=_strings(raw.get("tags"), f"{where}.tags"),
        load=_bool(raw.get("load", False), f"{where}.load"),
    )


def _service(name: str, raw: Any) -> Service:
    where = f"meeshy.services.{name}"
    raw = _mapping(raw, where)
    _check_keys(raw, _SERVICE_FIELDS, where)
    base = _DEFAULT_BY_NAME.get(name, Service(name=name)).to_config()
    merged = {**base, **raw}
    policy = _string(merged["schema_policy"], f"{where}.schema_policy")
    if policy not in POLICIES:
        raise ConfigError(
            f"{where}.schema_policy is {policy!r}", hint=did_you_mean(policy, POLICIES)
        )
    variants_raw = merged["variants"] or {}
    variants = tuple(
        _variant(str(vname), vraw, f"{where}.variants.{vname}")
        for vname, vraw in _mapping(variants_raw, f"{where}.variants").items()
    )
    strings = {
        k: _string(merged[k] if merged[k] is not None else "", f"{where}.{k}")
        for k in ("dockerfile", "image", "version_file", "default_variant")
    }
    for required in ("dockerfile", "image"):
        if not strings[required]:
            raise ConfigError(f"{where}.{required} is not set", hint="add it to invoke.yaml")
    if variants and strings["default_variant"] not in {v.name for v in variants}:
        raise ConfigError(
            f"{where}.default_variant {strings['default_variant']!r} is not a variant",
            hint=did_you_mean(strings["default_variant"], [v.name for v in variants]),
        )
    return Service(
        name=name,
        dockerfile=strings["dockerfile"],
        image=strings["image"],
        version_file=strings["version_file"],
        schema_policy=policy,  # type: ignore[arg-type]
        build_args=_pairs(merged["build_args"], f"{where}.build_args"),
        tags=_strings(merged["tags"], f"{where}.tags"),
        push_tags=_strings(merged["push_tags"], f"{where}.push_tags"),
        load=_bool(merged["load"], f"{where}.load"),
        schema_paths=_strings(merged["schema_paths"], f"{where}.schema_paths"),
        variants=variants,
        default_variant=strings["default_variant"],
    )


def _stacks(value: Any) -> tuple[StackConfig, ...]:
    out = []
    for name, entry in _mapping(value, "meeshy.stacks").items():
        where = f"meeshy.stacks.{name}"
        raw = _mapping(entry, where)
        _check_keys(raw, STACK_KEYS, where)
        values = {k: _string(raw.get(k, ""), f"{where}.{k}") for k in STACK_KEYS}
        for required in ("file", "project"):
            if not values[required]:
                raise ConfigError(f"{where}.{required} is not set", hint="add it to invoke.yaml")
        if not re.match(PROJECT_RE, values["project"]):
            raise ConfigError(
                f"{where}.project {values['project']!r} is not a compose project name",
                hint="lowercase letters, digits, - and _, starting with a letter or digit",
            )
        out.append(StackConfig(name=str(name), **values))
    return tuple(out)


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A list of names, from a YAML list or a comma-separated string (env vars)."""
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    return _strings(value, where)


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
    raw: Any,
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
    checked = check_config(raw)
    merged = checked.merged
    cwd = cwd or Path.cwd()
    if root:
        root_path = cwd / root
    elif env.get("MEESHY_ROOT"):
        root_path = cwd / env["MEESHY_ROOT"]
    else:
        root_path = project_dir / str(merged["root"])
    try:
        root_path = root_path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ConfigError(
            f"monorepo root {root_path} cannot be resolved ({exc})",
            hint="pass --root PATH or set MEESHY_ROOT",
        ) from None
    if not root_path.is_dir():
        raise ConfigError(
            f"monorepo root {root_path} is not a directory",
            hint="pass --root PATH or set MEESHY_ROOT",
        )
    if registry is not None:
        reg = check_registry(registry.rstrip("/"), "--registry")
    elif env.get("DOCKER_REGISTRY"):
        reg = check_registry(env["DOCKER_REGISTRY"], "DOCKER_REGISTRY")
    else:
        reg = checked.registry
    ctx = docker_context if docker_context is not None else str(merged["docker_context"] or "")
    return Settings(
        root=root_path,
        registry=reg,
        tag=checked.tag,
        schema=str(merged["schema"]),
        context=str(merged["context"]),
        docker_context=ctx,
        builder=check_builder(builder, "--builder")
        if builder is not None
        else check_builder(str(merged["builder"] or ""), "meeshy.builder"),
        all=checked.all,
        services=checked.services,
        stacks=checked.stacks,
        ssh=checked.ssh,
    )


@dataclass(frozen=True)
class CheckedConfig:
    """The ``meeshy`` config checked whole, before flags, environment and disk are asked."""

    merged: dict[str, Any]
    registry: str
    tag: str
    all: tuple[str, ...]
    services: tuple[Service, ...]
    stacks: tuple[StackConfig, ...]
    ssh: SshOptions


def check_config(raw: Any) -> CheckedConfig:
    """Every key and value of Invoke's merged ``meeshy`` config, checked: what every task
    runs first, also those that read only a key or two (volumes.*, docker.ensure), so a
    typo in the config file is refused wherever it is met."""
    data = dict(_mapping(raw, "meeshy"))
    _check_keys(data, [*TOP_KEYS, "services", "stacks"], "meeshy")
    merged = deep_merge(defaults(), data)
    top = {k: merged[k] for k in TOP_KEYS if k not in ("all", "ssh")}
    for key, value in top.items():
        _string(value, f"meeshy.{key}")
    services_raw = _mapping(merged["services"], "meeshy.services")
    if not services_raw:
        raise ConfigError("meeshy.services must be a non-empty mapping")
    services = tuple(_service(str(n), s) for n, s in services_raw.items())
    names = [s.name for s in services]
    all_ = _names(merged["all"], "meeshy.all")
    if not all_:
        raise ConfigError(
            "meeshy.all is empty", hint="name what build.all builds, e.g. gateway,web"
        )
    if len(set(all_)) != len(all_):
        twice = next(n for n in all_ if all_.count(n) > 1)
        raise ConfigError(f"meeshy.all names {twice!r} twice", hint="name each service once")
    for n in all_:
        if n not in names:
            raise ConfigError(
                f"meeshy.all names unknown service {n!r}", hint=did_you_mean(n, names)
            )
    return CheckedConfig(
        merged=merged,
        registry=check_registry(str(merged["registry"]), "meeshy.registry"),
        tag=check_tag(_string(merged["tag"], "meeshy.tag"), "meeshy.tag"),
        all=all_,
        services=services,
        stacks=_stacks(merged["stacks"]),
        ssh=ssh_options(merged["ssh"]),
    )


def ssh_options(raw: Any) -> SshOptions:
    """``meeshy.ssh`` (config file, connect timeout, server socket, tty session, dialer)
    validated."""
    data = _mapping(raw, "meeshy.ssh")
    _check_keys(data, [f.name for f in fields(SshOptions)], "meeshy.ssh")
    merged = {**TOP_KEYS["ssh"][0], **data}
    timeout = merged["connect_timeout"]
    if isinstance(timeout, str) and timeout.strip().isdigit():
        timeout = int(timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(
            f"meeshy.ssh.connect_timeout must be whole seconds >= 1, got {_kind(timeout)}"
        )
    sock = _string(merged["socket"], "meeshy.ssh.socket")
    if not sock.startswith("/"):
        raise ConfigError(
            f"meeshy.ssh.socket must be an absolute path on the server, got {sock!r}",
            hint="e.g. /var/run/docker.sock, or /run/user/1000/docker.sock for rootless Docker",
        )
    config = _string(merged["config"], "meeshy.ssh.config")
    return SshOptions(
        config=str(Path(config).expanduser()) if config else "",
        connect_timeout=timeout,
        socket=sock,
        tty=_bool(merged["tty"], "meeshy.ssh.tty"),
        nodelay=_bool(merged["nodelay"], "meeshy.ssh.nodelay"),
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path`` (through a symlink: of its target). Here, not in the
    gate, so that reading settings does not import the gate."""
    import hashlib

    from tasks.lib.fsread import open_file

    digest = hashlib.sha256()
    with open_file(path) as fh:
        for chunk in iter(lambda: fh.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_version(root: Path, version_file: str) -> str:
    """The service version from its VERSION file; 1.0.0 when missing (as the Makefile)."""
    if not version_file:
        return DEFAULT_VERSION
    from tasks.lib.fsread import read_text

    path = root / version_file
    try:
        text = read_text(path).strip()
    except FileNotFoundError:
        return DEFAULT_VERSION
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{version_file}: not text (byte {exc.start} is not UTF-8)",
            hint="write MAJOR.MINOR.PATCH in that file",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{version_file}: cannot read ({exc.strerror})") from exc
    if not re.match(VERSION_RE, text):
        raise ConfigError(
            f"{version_file}: {text[:40]!r} is not a version like 1.2.3",
            hint="write MAJOR.MINOR.PATCH in that file",
        )
    return text


def build_date(now: dt.datetime | None = None) -> str:
    """UTC now as the Makefile's ``date -u +%Y-%m-%dT%H:%M:%SZ``."""
    import datetime as dt

    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def vcs_ref(root: Path) -> str:
    """``git rev-parse --short HEAD`` in the monorepo, or ``local``."""
    import subprocess

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
