"""``stack.health``: each service's compose health (running, healthy, or a one-shot done) and
the Makefile's HTTP checks (gateway ``/health``, web ``/``, translator ``/health``), made
through the host ports the stack's own containers publish, on the engine's host."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from tasks.lib.compose.ports import url_host
from tasks.lib.config import Settings
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import Interrupted, TaskError
from tasks.lib.images.refs import Ref
from tasks.lib.progress import Status
from tasks.lib.stack.containers import ContainerState, by_service
from tasks.lib.stack.spec import ProjectSpec, ServiceSpec
from tasks.lib.stack.wait import judge_service

if TYPE_CHECKING:
    from tasks.lib.stack.status import Observed


@dataclass(frozen=True)
class HttpCheck:
    app: str  # Meeshy service (meeshy.services key)
    port: int  # in the container
    path: str


# The Makefile's `health`: curl -sf localhost:3000/health, localhost:3100, localhost:8000/health
HTTP_CHECKS = (
    HttpCheck("gateway", 3000, "/health"),
    HttpCheck("web", 3100, "/"),
    HttpCheck("translator", 8000, "/health"),
)

Fetch = Callable[[str, float], tuple[int | None, str]]
Reach = Callable[[str, int], "str | None"]
"""``(host_ip, port)`` of the engine's machine -> a local unix socket that reaches it (forwarded
through the SSH link), or None for engines without one."""
FetchVia = Callable[[str, str, float], tuple[int | None, str]]
"""``(unix socket, url, timeout)``: an HTTP GET of ``url`` through that socket."""


@dataclass(frozen=True)
class HealthRow:
    kind: Literal["compose", "http"]
    service: str
    check: str
    status: Status
    detail: str
    via: str = ""  # "ssh link to HOST": the check was made from the server's side

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "service": self.service,
            "check": self.check,
            "status": self.status.value,
            "detail": self.detail,
            "via": self.via or None,
        }


@dataclass(frozen=True)
class HealthReport:
    env: str
    project: str
    rows: tuple[HealthRow, ...]

    @property
    def ok(self) -> bool:
        return not any(r.status.bad for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "project": self.project,
            "ok": self.ok,
            "checks": [r.to_json() for r in self.rows],
        }

    def failure(self) -> TaskError | None:
        """The one line a failed report ends with; None when every check passed."""
        if self.ok:
            return None
        bad = [f"{r.service} {r.check}: {r.detail}" for r in self.rows if r.status.bad]
        return TaskError(f"stack {self.env}: {len(bad)} check(s) failed: " + "; ".join(bad))


def health_report(seen: Observed) -> HealthReport:
    """Compose's health of every service plus the Makefile's HTTP checks."""
    from tasks.lib.engine import server_port

    spec, containers = seen.spec, seen.containers
    rows = compose_rows(spec, containers) + http_rows(
        spec,
        containers,
        seen.settings,
        engine_host(seen.target),
        reach=lambda host_ip, port: server_port(seen.target, host_ip, port),
    )
    return HealthReport(seen.stack.name, seen.stack.project, tuple(rows))


def engine_host(target: EngineTarget) -> str:
    """The host published ports are reachable on: the engine's host for tcp:// and ssh://
    engines (for ssh://, the machine ssh connects to: an ssh_config alias's ``HostName``),
    else ``localhost``."""
    url = target.host
    parts = urlsplit(url)
    if parts.scheme == "ssh":
        from tasks.lib.engine import server_host_name

        return server_host_name(target)
    if parts.scheme in ("tcp", "http", "https") and parts.hostname:
        return parts.hostname
    return "localhost"


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (a name is not looked up)."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def beyond_reach(host_ip: str, host: str) -> bool:
    """A port bound to a loopback address of the engine's machine, seen from here while that
    machine is another one (``host`` is not loopback): this machine's loopback is not the
    engine's, so a check from here would reach whatever listens here."""
    return is_loopback(host_ip) and not is_loopback(host)


def seen_from_server(host_ip: str) -> str:
    """The address the engine's machine itself reaches a published port at: its loopback for
    a port published on every address, else the address it is bound to."""
    if host_ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host_ip == "::":
        return "::1"
    return host_ip


def http_get(url: str, timeout: float, *, unix_socket: str = "") -> tuple[int | None, str]:
    """GET ``url`` without following redirects (as ``curl -sf``): (status, "") or
    (None, why it failed). ``unix_socket``: connect there instead of to the URL's host and
    port (a port forwarded over SSH); the request is the same."""
    import http.client
    import socket

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(unix_socket)
            except OSError:
                sock.close()
                raise
            self.sock = sock

    parts = urlsplit(url)
    kind = UnixConnection if unix_socket else http.client.HTTPConnection
    conn = kind(parts.hostname or "localhost", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        resp = conn.getresponse()
        resp.read(65536)
        return resp.status, ""
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc) or type(exc).__name__
    finally:
        conn.close()


def http_get_unix(socket_path: str, url: str, timeout: float) -> tuple[int | None, str]:
    """:func:`http_get` through the unix socket ``socket_path``."""
    return http_get(url, timeout, unix_socket=socket_path)


def _not_started(spec: ServiceSpec) -> str:
    return f"not started (profile {', '.join(spec.profiles)})"


def not_running(spec: ServiceSpec, containers: Sequence[ContainerState]) -> str:
    """Why a service has no running container: ``not started (profile full)`` (a profile
    not enabled), ``not created``, or ``not running (exited)``."""
    if not containers:
        return _not_started(spec) if spec.profiles else "not created"
    return f"not running ({containers[0].state})"


def compose_rows(spec: ProjectSpec, containers: Sequence[ContainerState]) -> list[HealthRow]:
    grouped = by_service(list(containers))
    rows: list[HealthRow] = []
    for s in spec.services:
        cs = grouped.get(s.name, [])
        if not cs:
            if s.profiles:
                rows.append(HealthRow("compose", s.name, "state", Status.SKIPPED, _not_started(s)))
            else:
                rows.append(HealthRow("compose", s.name, "state", Status.FAIL, "not created"))
            continue
        verdict = judge_service(cs, {c.id: c.restarts for c in cs})
        status = Status.PASS if verdict.kind == "ready" else Status.FAIL
        rows.append(HealthRow("compose", s.name, "state", status, verdict.reason))
    return rows


def app_service(spec: ProjectSpec, settings: Settings, app: str) -> ServiceSpec | None:
    """The compose service running Meeshy service ``app``: by image (``.../meeshy-web:tag``
    runs in ``frontend``), else the service of that name."""
    image = next((s.image for s in settings.services if s.name == app), "")
    for s in spec.services:
        if image and s.image and Ref.parse(s.image).basename == image:
            return s
    return spec.service(app)


def http_rows(
    spec: ProjectSpec,
    containers: Sequence[ContainerState],
    settings: Settings,
    host: str,
    *,
    fetch: Fetch = http_get,
    timeout: float = 5.0,
    checks: Sequence[HttpCheck] = HTTP_CHECKS,
    reach: Reach | None = None,
    fetch_via: FetchVia | None = None,
) -> list[HealthRow]:
    """The Makefile's HTTP checks through the ports the containers publish on ``host``. With
    ``reach`` (an ``ssh://`` engine: a unix socket in the link's private dir, forwarded over
    the run's connection), every check is made from the server's side, as ``make health`` run
    there would (its loopback, its firewall, a ProxyJump, an ssh_config HostName of
    127.0.0.1 behind a jump host: none matters); a port bound to the server's loopback that
    cannot be reached is skipped with the command to run there."""
    fetch_via = fetch_via or http_get_unix
    grouped = by_service(list(containers))
    rows: list[HealthRow] = []
    for check in checks:
        svc = app_service(spec, settings, check.app)
        what = f"{check.app} {check.path}"
        if svc is None:
            rows.append(HealthRow("http", check.app, what, Status.SKIPPED, "not in this stack"))
            continue
        cs = grouped.get(svc.name, [])
        running = [c for c in cs if c.state == "running"]
        if not running:
            if not cs and svc.profiles:
                rows.append(HealthRow("http", svc.name, what, Status.SKIPPED, _not_started(svc)))
            else:
                rows.append(HealthRow("http", svc.name, what, Status.FAIL, "not running"))
            continue
        bound = running[0].host_port(check.port)
        if bound is None or bound.published is None:
            rows.append(
                HealthRow(
                    "http", svc.name, what, Status.FAIL, f"port {check.port} is not published"
                )
            )
            continue
        server_ip = seen_from_server(bound.host_ip)
        where = f"{url_host(server_ip, server_ip)}:{bound.published}"
        local: str | None = None
        why = ""
        if reach is not None:
            try:
                local = reach(server_ip, bound.published)
            except Interrupted:
                raise
            except TaskError as exc:
                why = f" ({exc.message})"
        if local is not None:
            url = f"http://{where}{check.path}"
            code, error = fetch_via(local, url, timeout)
            rows.append(
                HealthRow(
                    "http",
                    svc.name,
                    url,
                    Status.PASS if code is not None and code < 400 else Status.FAIL,
                    f"HTTP {code}" if code else error,
                    via=f"ssh link to {host}",
                )
            )
            continue
        if beyond_reach(bound.host_ip, host):
            rows.append(
                HealthRow(
                    "http",
                    svc.name,
                    f"http://{url_host(bound.host_ip, host)}:{bound.published}{check.path}",
                    Status.SKIPPED,
                    f"published on {host}'s {bound.host_ip} only: not reachable from here"
                    f"{why} (check it there: `curl -sf http://{where}{check.path}`)",
                )
            )
            continue
        url = f"http://{url_host(bound.host_ip, host)}:{bound.published}{check.path}"
        code, error = fetch(url, timeout)
        if code is not None and code < 400:
            rows.append(HealthRow("http", svc.name, url, Status.PASS, f"HTTP {code}"))
        else:
            rows.append(
                HealthRow("http", svc.name, url, Status.FAIL, f"HTTP {code}" if code else error)
            )
    return rows
