"""One place that decides which Docker engine every call talks to.

python-on-whales (the CLI) and the docker SDK (the API) are both built from one
:class:`EngineTarget`, so they always reach the same engine: an explicit ``--context NAME``
wins, else ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the CLI's current context.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.lib.errors import ConfigError, EngineUnavailable

if TYPE_CHECKING:
    import docker
    import python_on_whales

START_HINT = (
    "start it with `inv docker.ensure` (Linux: `sudo systemctl start docker`, "
    "macOS: `open -a Docker`; on this project's CI machines: `bash .ci/install-engine.sh --start`)"
)


@dataclass(frozen=True)
class EngineTarget:
    """Which engine to talk to: a Docker context name, or none for the environment's default."""

    context: str = ""
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), compare=False)

    @property
    def effective_context(self) -> str:
        """The context the docker CLI would use: ``--context``, else none when ``DOCKER_HOST``
        is set, else ``DOCKER_CONTEXT``, else the current context of ``config.json``."""
        if self.context:
            return self.context
        if self.env.get("DOCKER_HOST"):
            return ""
        return self.env.get("DOCKER_CONTEXT") or current_context(self.env)

    def cli_prefix(self) -> list[str]:
        """``docker`` plus the global flags python-on-whales will add for this target."""
        ctx = self.effective_context if self.context else ""
        return ["docker", "--context", ctx] if ctx else ["docker"]

    def describe(self) -> str:
        """The host that will be tried, for error messages."""
        ctx = self.effective_context
        if ctx and ctx != "default":
            host = context_host(ctx, self.env)
            return f"{host} (Docker context {ctx!r})"
        return self.env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _docker_config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


def current_context(env: Mapping[str, str]) -> str:
    """The CLI's current context from ``config.json`` (what ``docker`` uses without flags)."""
    try:
        data = json.loads((_docker_config_dir(env) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("currentContext") or "") if isinstance(data, dict) else ""


def _context_tls(name: str, env: Mapping[str, str]) -> Any:
    """TLS settings stored with a context (``contexts/tls/<sha256(name)>/docker``), or None."""
    import hashlib

    tls_dir = (
        _docker_config_dir(env)
        / "contexts"
        / "tls"
        / hashlib.sha256(name.encode()).hexdigest()
        / "docker"
    )
    ca, cert, key = (tls_dir / f for f in ("ca.pem", "cert.pem", "key.pem"))
    if not (cert.is_file() and key.is_file()):
        return None
    from docker.tls import TLSConfig

    return TLSConfig(
        client_cert=(str(cert), str(key)),
        ca_cert=str(ca) if ca.is_file() else None,
        verify=ca.is_file(),
    )


def context_host(name: str, env: Mapping[str, str]) -> str:
    """The Docker endpoint of context ``name``; ConfigError if there is no such context."""
    if name == "default":
        return env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    meta_root = _docker_config_dir(env) / "contexts" / "meta"
    if meta_root.is_dir():
        for meta in meta_root.glob("*/meta.json"):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if data.get("Name") == name:
                host = data.get("Endpoints", {}).get("docker", {}).get("Host")
                return str(host or "?")
    raise ConfigError(
        f"Docker context {name!r} does not exist",
        hint="list them with `docker context ls`, create one with `docker context create`",
    )


def _connect(target: EngineTarget, timeout: int) -> docker.DockerClient:
    import docker

    ctx = target.effective_context
    if ctx and ctx != "default":
        # From the context's own endpoint: docker 7.2's from_context() silently falls back to
        # the default engine when the config dir has no config.json.
        return docker.DockerClient(
            base_url=context_host(ctx, target.env),
            tls=_context_tls(ctx, target.env) or False,
            timeout=timeout,
        )
    return docker.DockerClient.from_env(
        environment=dict(target.env), timeout=timeout, use_context=False
    )


def sdk_client(target: EngineTarget, *, timeout: int = 60) -> docker.DockerClient:
    """A docker SDK client for ``target``; EngineUnavailable when it does not answer."""
    from docker.errors import DockerException as SdkError

    client = None
    try:
        client = _connect(target, timeout)
        client.ping()
    except ConfigError:
        raise
    except Exception as exc:  # the SDK's errors, requests' connection errors and the like
        if client is not None:
            client.close()
        detail = "" if isinstance(exc, SdkError) else f" ({type(exc).__name__})"
        raise EngineUnavailable(
            f"Cannot reach the Docker engine at {target.describe()}{detail}", hint=START_HINT
        ) from exc
    return client


def whales_client(target: EngineTarget) -> python_on_whales.DockerClient:
    """A python-on-whales client for the same engine as :func:`sdk_client`."""
    from python_on_whales import DockerClient

    ctx = target.context  # DOCKER_HOST / DOCKER_CONTEXT / current context: the CLI reads them
    if ctx and ctx != "default":
        context_host(ctx, target.env)
        return DockerClient(context=ctx)
    return DockerClient()


def ping(target: EngineTarget) -> dict[str, Any]:
    """Fail fast (without starting anything) when the engine does not answer."""
    client = sdk_client(target, timeout=10)
    try:
        return dict(client.version())
    finally:
        client.close()
