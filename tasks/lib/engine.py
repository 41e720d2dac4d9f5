"""One place that decides which Docker engine every call talks to.

python-on-whales (the CLI) and the docker SDK (the API) are both built from one
:class:`EngineTarget`, so they always reach the same engine: an explicit ``--context NAME``
wins, else ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the CLI's current context.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    EngineUnavailable,
    MissingImageError,
    TaskError,
)

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
    """A docker SDK client for ``target``; EngineUnavailable when it does not answer.

    Only connection failures become EngineUnavailable: any other exception is a bug and is
    left to surface as one."""
    client = None
    try:
        client = _connect(target, timeout)
        client.ping()
    except ConfigError:
        raise
    except Exception as exc:
        if client is not None:
            client.close()
        if not _is_connection_error(exc):
            raise
        raise EngineUnavailable(
            f"Cannot reach the Docker engine at {target.describe()}: {_library_message(exc)}",
            hint=START_HINT,
        ) from exc
    return client


@contextmanager
def connect(target: EngineTarget, *, timeout: int = 60) -> Iterator[docker.DockerClient]:
    """``with connect(target) as client:`` a pinged SDK client, closed on the way out, with
    the library's exceptions turned into the project's (:func:`boundary`)."""
    client = sdk_client(target, timeout=timeout)
    try:
        with boundary(target):
            yield client
    finally:
        client.close()


def _is_connection_error(exc: BaseException) -> bool:
    """The engine (or the link to it) is not there: refused, reset, timed out, no socket."""
    if isinstance(exc, ConnectionError | TimeoutError | FileNotFoundError):
        return True
    requests = sys.modules.get("requests")
    if requests is not None and isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
    ):
        return True
    sdk = sys.modules.get("docker.errors")
    if sdk is not None and isinstance(exc, sdk.DockerException):
        # from_env()/DockerClient() wrap connection failures in a bare DockerException
        return not isinstance(exc, sdk.APIError)
    return isinstance(exc, OSError)


def _library_message(exc: BaseException) -> str:
    """The library's own message, on one line, without the request dump requests adds."""
    text = str(
        getattr(exc, "explanation", None) or getattr(exc, "stderr", None) or exc or ""
    ).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[-1] if lines else type(exc).__name__
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in line:
            line = line.split(marker, 1)[1]
    return line.rstrip(")'\"")[:300]


def translate(exc: BaseException, target: EngineTarget | None = None) -> TaskError | None:
    """The project's error for an exception of the docker SDK, python-on-whales or requests,
    keeping the library's message; None for anything else (a bug: let it surface)."""
    if isinstance(exc, TaskError):
        return exc
    where = target.describe() if target is not None else "the Docker engine"
    whales = sys.modules.get("python_on_whales.exceptions")
    if whales is not None and isinstance(exc, whales.DockerException):
        argv = [str(a) for a in (getattr(exc, "docker_command", None) or [])]
        stderr = str(getattr(exc, "stderr", "") or "")
        if "Cannot connect to the Docker daemon" in stderr or "error during connect" in stderr:
            return EngineUnavailable(
                f"the Docker engine at {where} went away: {_library_message(exc)}",
                hint=START_HINT,
            )
        return CommandFailed(
            f"`{' '.join(argv[:4])}` failed: {_library_message(exc)}",
            argv=argv,
            return_code=getattr(exc, "return_code", None),
            output=stderr,
        )
    sdk = sys.modules.get("docker.errors")
    if sdk is not None and isinstance(exc, sdk.NotFound):
        return MissingImageError(_library_message(exc))
    if sdk is not None and isinstance(exc, sdk.APIError):
        status = getattr(exc, "status_code", None)
        if status == 400:
            return ConfigError(f"the engine refused it: {_library_message(exc)}")
        return CommandFailed(f"the engine said: {_library_message(exc)}")
    if _is_connection_error(exc):
        return EngineUnavailable(
            f"the Docker engine at {where} went away: {_library_message(exc)}", hint=START_HINT
        )
    return None


@contextmanager
def boundary(target: EngineTarget | None = None) -> Iterator[None]:
    """Where the core meets the engine: library exceptions become the project's errors."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, target)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


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
    with connect(target, timeout=10) as client:
        return dict(client.version())
