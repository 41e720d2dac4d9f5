"""One place that decides which Docker engine every call talks to.

python-on-whales (the CLI) and the docker SDK (the API) are both built from one
:class:`EngineTarget`, so they always reach the same engine: an explicit ``--context NAME``
wins, else ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the CLI's current context.
Heavy imports happen inside the functions.

An ``ssh://`` engine is reached through ONE system ``ssh`` per task run
(:class:`tasks.lib.ssh.Forward`, a local socket forwarded to the server's Docker socket): the
first client that needs it opens it (an engine task starts it before its libraries load),
every later SDK and CLI call of the run goes through it, and the outermost
:func:`engine_session` (entered by the task adapter: ``cli_task`` and ``running()``) closes
it, also on error and Ctrl-C; anything still open at interpreter exit is closed then. How to
reach such engines (an ssh_config file, the connect timeout, the server's socket path) comes
from config ``meeshy.ssh`` through :func:`use_ssh_options`.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.lib.config import SshOptions
from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    EngineUnavailable,
    MissingImageError,
    TaskError,
)
from tasks.lib.ssh import Destination, Forward

if TYPE_CHECKING:
    import docker
    import python_on_whales

DEFAULT_HOST = "unix:///var/run/docker.sock"
START_HINT = (
    "start it with `inv docker.ensure` (Linux: `sudo systemctl start docker`, "
    "macOS: `open -a Docker`; on this project's CI machines: `bash .ci/install-engine.sh --start`)"
)


@dataclass(frozen=True)
class EngineTarget:
    """Which engine to talk to: a Docker context name, or none for the environment's default."""

    context: str = ""
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), compare=False)
    ssh: SshOptions | None = field(default=None, compare=False)
    """How to reach an ``ssh://`` engine; None: what :func:`use_ssh_options` set (config)."""

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

    @cached_property
    def host(self) -> str:
        """The endpoint as configured (``ssh://…``, ``tcp://…``, ``unix://…``); ConfigError
        for a context that does not exist. Read once per target (it is asked often)."""
        ctx = self.effective_context
        if ctx and ctx != "default":
            return _checked_address(
                context_host(ctx, self.env),
                f"Docker context {ctx!r}",
                "fix it with `docker context update`, or use another context",
            )
        host = self.env.get("DOCKER_HOST") or DEFAULT_HOST
        if not host.startswith(_SCHEMES):
            raise ConfigError(f"DOCKER_HOST {host!r} is not an engine address", hint=_ADDRESS_HINT)
        return _checked_address(host, "DOCKER_HOST", _ADDRESS_HINT)

    @property
    def is_ssh(self) -> bool:
        return self.host.startswith("ssh://")

    @property
    def ssh_options(self) -> SshOptions:
        return self.ssh or _LINKS.options

    def check(self) -> None:
        """Refuse, in one line, an address Docker would not take (a context that does not
        exist, a DOCKER_HOST without a scheme, an ``ssh://`` one that does not parse), before
        something else (compose) reads it. Nothing is contacted."""
        if self.is_ssh:
            Destination.parse(self.host)

    @property
    def identity(self) -> str:
        """One name per engine, however it is reached from here: the endpoint (a context's
        too), a unix socket by its real path (``/var/run`` is a symlink to ``/run``)."""
        host = self.host
        if host.startswith("unix://"):
            return "unix://" + os.path.realpath(host.removeprefix("unix://"))
        return host

    def describe(self) -> str:
        """The host that will be tried, for error messages."""
        ctx = self.effective_context
        if ctx and ctx != "default":
            return f"{self.host} (Docker context {ctx!r})"
        return self.host


_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://", "fd://", "http://", "https://")
_ADDRESS_HINT = "use unix:///path/docker.sock, tcp://HOST:PORT or ssh://[USER@]HOST, or unset it"


def _checked_address(host: str, where: str, hint: str) -> str:
    """``host`` when its host and port parse (a ``tcp://``/``http(s)://`` endpoint); else
    ConfigError naming ``where`` it came from: the docker SDK raised a bare ValueError for a
    port out of range or an unclosed ``[`` (an internal error, exit 70), and compose's
    "unable to resolve docker endpoint" was reported as a bad compose file."""
    from urllib.parse import urlsplit

    if host.startswith(("tcp://", "http://", "https://")):
        try:
            urlsplit(host).port  # noqa: B018 - parsing it is the check
        except ValueError as exc:
            reason = str(exc)
            raise ConfigError(
                f"{where} {host!r} is not an engine address: {reason[:1].lower()}{reason[1:]}",
                hint=hint,
            ) from None
    return host


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
    import hashlib

    meta_root = _docker_config_dir(env) / "contexts" / "meta"
    if meta_root.is_dir():
        # where the docker CLI keeps it (meta/<sha256 of the name>/), then any other
        own = meta_root / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
        others = (m for m in meta_root.glob("*/meta.json") if m != own)
        for meta in itertools.chain([own], others):  # lazily: the others only if needed
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


# -- the SSH links of this process ----------------------------------------------------------------


class _Links:
    """The open SSH forwards of this process, one per (endpoint, options), and the sessions
    that own them. Threads may ask for a link at once (concurrent builds): one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.open: dict[tuple[str, SshOptions], Forward] = {}
        self.depth = 0
        self.options = SshOptions()

    def start(self, target: EngineTarget) -> Forward:
        """The link to ``target``, started (not waited for) if it is not open yet."""
        key = (target.host, target.ssh_options)
        with self.lock:
            link = self.open.get(key)
            if link is not None:
                if link.alive:
                    return link
                raise link.failure()  # it died during the run: its reason is the error
            link = Forward(key[0], key[1], where=target.describe()).start()
            self.open[key] = link
            return link

    def ready(self, link: Forward) -> str:
        """Wait for a started link; a link that fails is closed and forgotten."""
        try:
            link.wait_ready()
        except BaseException:
            with self.lock:
                for key, found in list(self.open.items()):
                    if found is link:
                        del self.open[key]
            link.close()
            raise
        return link.url

    def find(self, target: EngineTarget) -> Forward | None:
        with self.lock:
            return self.open.get((target.host, target.ssh_options))

    def close_all(self) -> None:
        with self.lock:
            links = list(self.open.values())
            self.open.clear()
        for link in links:
            link.close()


_LINKS = _Links()
atexit.register(_LINKS.close_all)


def use_ssh_options(options: SshOptions) -> None:
    """How this process reaches ``ssh://`` engines (config ``meeshy.ssh``); the adapter calls
    it when it resolves a task's config."""
    with _LINKS.lock:
        _LINKS.options = options


@contextmanager
def engine_session() -> Iterator[None]:
    """The lifetime of a task run's engine links: the SSH forwards opened inside the outermost
    session are closed when it ends, however it ends (error, Ctrl-C, SIGTERM)."""
    with _LINKS.lock:
        _LINKS.depth += 1
    try:
        yield
    finally:
        with _LINKS.lock:
            _LINKS.depth -= 1
            last = _LINKS.depth == 0
        if last:
            _LINKS.close_all()


def link(target: EngineTarget) -> str | None:
    """``unix://<forwarded socket>`` for an ``ssh://`` engine (opening the SSH link on first
    use), None for any other engine. EngineUnavailable with ssh's reason when it fails."""
    if not target.is_ssh:
        return None
    return _LINKS.ready(_LINKS.start(target))


def server_port(target: EngineTarget, host_ip: str, port: int) -> str | None:
    """A local unix socket (in the link's private dir) that reaches ``host_ip:port`` of an
    ``ssh://`` engine's server, its loopback included: forwarded through the run's SSH link,
    no second login. None for other engines; EngineUnavailable when the link cannot add it."""
    if not target.is_ssh:
        return None
    forward = _LINKS.start(target)
    _LINKS.ready(forward)
    return forward.forward_to(host_ip, port)


def server_host_name(target: EngineTarget) -> str:
    """The machine an ``ssh://`` engine's ssh connects to (an ssh_config alias's HostName):
    from the run's open link when there is one (its ``ssh -G``, asked once), else asked now."""
    found = _LINKS.find(target)
    if found is not None:
        return found.host_name()
    from tasks.lib.ssh import Destination, host_name

    return host_name(Destination.parse(target.host), target.ssh_options)


def start_link(target: EngineTarget) -> Forward | None:
    """Start the SSH link to ``target`` without waiting (None for other engines): callers
    import the docker libraries while ssh does its handshake, then call :func:`link`."""
    return _LINKS.start(target) if target.is_ssh else None


def link_argv(target: EngineTarget) -> list[str]:
    """The ``ssh`` command of the open link to ``target`` (dry runs, reports); [] if none."""
    found = _LINKS.find(target) if target.is_ssh else None
    return list(found.argv) if found is not None else []


def unreachable(
    target: EngineTarget, exc: BaseException, *, lost: bool = False
) -> EngineUnavailable:
    """The one line for an engine that does not answer (``lost``: it stopped answering during
    the run). Over SSH: ssh's own reason and what to do; else the library's message and how to
    start a local engine."""
    where = target.describe()
    waited = _read_timeout(exc)
    reason = (
        f"it took the connection but sent no answer in {waited} s"
        if waited is not None
        else _library_message(exc)
    )
    said = None
    if target.is_ssh:
        found = _LINKS.find(target)
        said = found.explain(lost=lost) if found is not None else None
    if lost:
        head = f"the Docker engine at {where} went away"
    else:
        head = f"Cannot reach the Docker engine at {where}"
    if said is not None:
        return EngineUnavailable(f"{head} over SSH: {said[0]}", hint=said[1])
    if target.is_ssh:
        ctx = target.effective_context
        check = f"docker --context {ctx} info" if ctx and ctx != "default" else "docker info"
        hint = (
            f"the SSH link is up but not the engine behind it: check it with `{check}` "
            "(docker.ensure does not start a remote engine)"
        )
    elif target.host.startswith("tcp://"):
        hint = "check the engine on that machine (docker.ensure starts only a local engine)"
    elif waited is not None:  # something listens there and does not answer: not a start
        hint = HUNG_HINT
    else:
        hint = START_HINT
    return EngineUnavailable(f"{head}: {reason}", hint=hint)


HUNG_HINT = (
    "it may be hung: check it with `docker info`, restart it if that hangs too "
    "(Linux: `sudo systemctl restart docker`)"
)


def _read_timeout(exc: BaseException) -> str | None:
    """The seconds waited when ``exc`` is a read that timed out (requests' "Read timed out.
    (read timeout=60)"), else None."""
    found = re.search(r"Read timed out\.? \(read timeout=([\d.]+)\)", str(exc))
    return found.group(1) if found else None


def _connect(target: EngineTarget, timeout: int) -> docker.DockerClient:
    start_link(target)  # ssh's handshake overlaps the import of the docker SDK
    import docker

    forwarded = link(target)
    if forwarded is not None:
        client = docker.DockerClient(base_url=forwarded, timeout=timeout)
    elif (ctx := target.effective_context) and ctx != "default":
        # From the context's own endpoint: docker 7.2's from_context() silently falls back to
        # the default engine when the config dir has no config.json.
        client = docker.DockerClient(
            base_url=context_host(ctx, target.env),
            tls=_context_tls(ctx, target.env) or False,
            timeout=timeout,
        )
    else:
        client = docker.DockerClient.from_env(
            environment=dict(target.env), timeout=timeout, use_context=False
        )
    _one_connection_pool(client)
    return client


POOL_URL = "http+docker://localhost"  # the docker SDK's base URL for every unix socket
POOL_PREFIX = "http+docker://"


@cache
def _one_pool_adapter() -> type[Any]:
    """The docker SDK's unix-socket adapter with one pool per socket (made once, when the SDK
    is first used: the SDK is not imported before)."""
    from docker.transport import UnixHTTPAdapter

    class OnePool(UnixHTTPAdapter):
        def get_connection(self, url: str | bytes, proxies: Any = None) -> Any:
            return super().get_connection(POOL_URL, proxies)

    return OnePool


def _one_connection_pool(client: docker.DockerClient) -> None:
    """Reuse one connection for the requests of a unix-socket engine. The docker SDK's unix
    socket adapter (docker 7.x) keys its connection pools by the whole request URL, path and
    query included, so each different request opened a new connection (staging.tag 7,
    images.validate 11); through an SSH link each one is a channel open, a round trip to the
    server. Swapped after the SDK's first request (its version check): two connections in all.
    Other engines (tcp://) already pool by host: unchanged."""
    from docker.transport import UnixHTTPAdapter

    # the mounted adapter itself (requests' Session.adapters): get_adapter() raises for a
    # tcp:// client, and the SDK's fallback then fails on an attribute it never set
    old = client.api.adapters.get(POOL_PREFIX)
    if type(old) is not UnixHTTPAdapter:
        return
    shared = _one_pool_adapter()(
        f"http+unix://{old.socket_path}", old.timeout, max_pool_size=old.max_pool_size
    )
    client.api.mount(POOL_PREFIX, shared)
    old.close()


def sdk_client(target: EngineTarget, *, timeout: int = 60) -> docker.DockerClient:
    """A docker SDK client for ``target``; EngineUnavailable when it does not answer.

    Only connection failures become EngineUnavailable: any other exception is a bug and is
    left to surface as one."""
    try:
        # The SDK asks the engine for its API version as the client is made (version
        # "auto"): that request is the ping.
        return _connect(target, timeout)
    except TaskError:
        raise
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        raise unreachable(target, exc) from exc


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


def answers(client: docker.DockerClient) -> bool:
    """Whether the engine still answers ``client`` (after a failure that may only mean it, or
    the SSH link to it, went away)."""
    try:
        client.ping()
    except Exception:
        return False
    return True


def _is_connection_error(exc: BaseException) -> bool:
    """The engine (or the link to it) is not there: refused, reset, timed out, no socket.
    Never an error about a named file (a socket's errors name none): a checkout's file that
    cannot be read is not the engine going away."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return False
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
    # requests' "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
    inner = re.search(r"\w+Error\(\d+, '([^']+)'\)", line)
    if inner:
        return inner.group(1)
    return line.rstrip(")'\"")[:300]


def translate(exc: BaseException, target: EngineTarget | None = None) -> TaskError | None:
    """The project's error for an exception of the docker SDK, python-on-whales or requests,
    keeping the library's message; None for anything else (a bug: let it surface)."""
    if isinstance(exc, TaskError):
        return exc
    whales = sys.modules.get("python_on_whales.exceptions")
    if whales is not None and isinstance(exc, whales.DockerException):
        argv = [str(a) for a in (getattr(exc, "docker_command", None) or [])]
        stderr = str(getattr(exc, "stderr", "") or "")
        if "Cannot connect to the Docker daemon" in stderr or "error during connect" in stderr:
            return _lost(exc, target)
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
        return _lost(exc, target)
    return None


def _lost(exc: BaseException, target: EngineTarget | None) -> EngineUnavailable:
    if target is not None:
        try:
            return unreachable(target, exc, lost=True)
        except TaskError:  # the context vanished meanwhile: fall through
            pass
    return EngineUnavailable(
        f"the Docker engine went away: {_library_message(exc)}", hint=START_HINT
    )


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
    start_link(target)
    from python_on_whales import DockerClient

    forwarded = link(target)
    if forwarded is not None:  # the CLI talks through the task's SSH link, never its own ssh
        return DockerClient(host=forwarded)
    ctx = target.context  # DOCKER_HOST / DOCKER_CONTEXT / current context: the CLI reads them
    if ctx and ctx != "default":
        context_host(ctx, target.env)
        return DockerClient(context=ctx)
    return DockerClient()


def pusher_note(target: EngineTarget, registry_url: str = "") -> str:
    """Which engine pushes (for dry runs): it resolves ``--registry-url``, not this machine.
    Reads only the Docker config; opens no link."""
    where = target.describe()
    line = f"pushed by the Docker engine at {where}"
    if registry_url:
        line += f"; {registry_url} is resolved there"
        if target.is_ssh or target.host.startswith("tcp://"):
            line += " (on that machine: localhost is the server itself)"
    return line


def ping(target: EngineTarget) -> dict[str, Any]:
    """Fail fast (without starting anything) when the engine does not answer."""
    with connect(target, timeout=10) as client:
        return dict(client.version())
