"""A stack on a remote engine: the host its published ports are looked for on (an ssh_config
alias resolved by the real ``ssh -G``, which connects nowhere), ports bound to that machine's
loopback (never checked from here: this machine's loopback is another one), and the compose
command a dry run shows over SSH (the engine as a person names it; no link opened)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.lib.compose.ports import Port
from tasks.lib.config import Settings, SshOptions, resolve
from tasks.lib.engine import EngineTarget, link_argv
from tasks.lib.progress import Status
from tasks.lib.ssh import Destination, host_name
from tasks.lib.stack import compose
from tasks.lib.stack.containers import ContainerState
from tasks.lib.stack.health import HttpCheck, beyond_reach, engine_host, http_rows, is_loopback
from tasks.lib.stack.plan import Stack, up_call
from tasks.lib.stack.spec import parse_config
from tasks.lib.stack.urls import stack_urls

needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client")


@pytest.fixture
def ssh_config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(
        "Host meeshy-prod\n  HostName 203.0.113.7\n  User root\n  Port 2222\n\n"
        "Host meeshy-local\n  HostName 127.0.0.1\n"
    )
    return path


@needs_ssh
def test_host_name_is_what_ssh_connects_to(ssh_config: Path) -> None:
    options = SshOptions(config=str(ssh_config))
    assert host_name(Destination.parse("ssh://meeshy-prod"), options) == "203.0.113.7"
    assert host_name(Destination.parse("ssh://deploy@meeshy-local:22"), options) == "127.0.0.1"
    assert host_name(Destination.parse("ssh://prod.example"), options) == "prod.example"


def test_host_name_without_ssh_is_the_url_host(ssh_config: Path) -> None:
    options = SshOptions(config=str(ssh_config))
    dest = Destination.parse("ssh://meeshy-prod")
    assert host_name(dest, options, ssh="/nonexistent/ssh") == "meeshy-prod"


def _context(tmp_path: Path, name: str, host: str) -> dict[str, str]:
    """A Docker config dir holding context ``name``, made by the docker CLI itself."""
    config = tmp_path / "docker"
    subprocess.run(
        ["docker", "--config", str(config), "context", "create", name, "--docker", f"host={host}"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return {"DOCKER_CONFIG": str(config)}


@needs_ssh
@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_engine_host_of_an_ssh_context_follows_the_alias(tmp_path: Path, ssh_config: Path) -> None:
    env = _context(tmp_path, "meeshy-prod", "ssh://meeshy-prod")
    options = SshOptions(config=str(ssh_config))
    target = EngineTarget(context="meeshy-prod", env=env, ssh=options)
    assert engine_host(target) == "203.0.113.7"
    target = EngineTarget(env={**env, "DOCKER_HOST": "ssh://meeshy-local"}, ssh=options)
    assert engine_host(target) == "127.0.0.1"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("", False),
        ("10.0.0.5", False),
        ("meeshy.me", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host_ip", "host", "beyond"),
    [
        ("127.0.0.1", "localhost", False),  # a local engine
        ("127.0.0.1", "127.0.0.1", False),  # an ssh:// engine on this machine
        ("127.0.0.1", "meeshy.me", True),
        ("::1", "203.0.113.7", True),
        ("", "meeshy.me", False),  # every address: reachable at the host's name
        ("0.0.0.0", "meeshy.me", False),
        ("10.0.0.5", "meeshy.me", False),
    ],
)
def test_beyond_reach(host_ip: str, host: str, beyond: bool) -> None:
    assert beyond_reach(host_ip, host) is beyond


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return resolve({"root": str(tmp_path)}, env={}, project_dir=tmp_path)


SPEC = parse_config(
    {
        "name": "meeshy-prod",
        "services": {
            "gateway": {"image": "isopen/meeshy-gateway:latest"},
            "frontend": {"image": "isopen/meeshy-web:latest"},
        },
    }
)


def _c(service: str, port: Port) -> ContainerState:
    return ContainerState(
        id=service, name=f"p-{service}-1", service=service, state="running", ports=(port,)
    )


def test_a_remote_engines_loopback_port_is_not_checked_from_here(settings: Settings) -> None:
    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> tuple[int | None, str]:
        fetched.append(url)
        return 200, ""

    containers = [
        _c("gateway", Port(3000, 3000, "tcp", "127.0.0.1")),
        _c("frontend", Port(3100, 3100, "tcp", "0.0.0.0")),
    ]
    checks = (HttpCheck("gateway", 3000, "/health"), HttpCheck("web", 3100, "/"))
    rows = http_rows(SPEC, containers, settings, "meeshy.me", fetch=fetch, checks=checks)
    assert [(r.service, r.check, r.status) for r in rows] == [
        ("gateway", "http://127.0.0.1:3000/health", Status.SKIPPED),
        ("frontend", "http://meeshy.me:3100/", Status.PASS),
    ]
    assert rows[0].detail == (
        "published on meeshy.me's 127.0.0.1 only: not reachable from here "
        "(check it there: `curl -sf http://127.0.0.1:3000/health`)"
    )
    assert fetched == ["http://meeshy.me:3100/"]
    # the same engine seen from its own machine: both checked
    fetched.clear()
    rows = http_rows(SPEC, containers, settings, "127.0.0.1", fetch=fetch, checks=checks)
    assert [r.status for r in rows] == [Status.PASS, Status.PASS]
    assert fetched == ["http://127.0.0.1:3000/health", "http://127.0.0.1:3100/"]


def test_a_remote_engines_loopback_port_is_checked_through_the_link(settings: Settings) -> None:
    """With a way to reach the server's loopback (over SSH: a port forwarded through the
    run's link), such a port is checked there; when the link cannot add it, skipped with why."""
    from tasks.lib.errors import EngineUnavailable

    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> tuple[int | None, str]:
        fetched.append(url)
        return (503, "") if url.endswith("/") else (200, "")

    asked: list[tuple[str, int]] = []

    def reach(host_ip: str, port: int) -> tuple[str, int] | None:
        asked.append((host_ip, port))
        return "127.0.0.1", 41000 + port

    containers = [
        _c("gateway", Port(3000, 3000, "tcp", "127.0.0.1")),
        _c("frontend", Port(3100, 3100, "tcp", "127.0.0.1")),
    ]
    checks = (HttpCheck("gateway", 3000, "/health"), HttpCheck("web", 3100, "/"))
    rows = http_rows(
        SPEC, containers, settings, "meeshy.me", fetch=fetch, checks=checks, reach=reach
    )
    assert asked == [("127.0.0.1", 3000), ("127.0.0.1", 3100)]
    assert fetched == ["http://127.0.0.1:44000/health", "http://127.0.0.1:44100/"]
    assert [(r.check, r.status, r.detail) for r in rows] == [
        (
            "http://127.0.0.1:3000/health (on meeshy.me, through the SSH link)",
            Status.PASS,
            "HTTP 200",
        ),
        ("http://127.0.0.1:3100/ (on meeshy.me, through the SSH link)", Status.FAIL, "HTTP 503"),
    ]

    def refused(host_ip: str, port: int) -> tuple[str, int] | None:
        raise EngineUnavailable("ssh could not add a forward to 127.0.0.1:3000: refused")

    rows = http_rows(
        SPEC, containers[:1], settings, "meeshy.me", fetch=fetch, checks=checks[:1], reach=refused
    )
    assert rows[0].status == Status.SKIPPED
    assert "(ssh could not add a forward to 127.0.0.1:3000: refused)" in rows[0].detail
    assert "curl -sf http://127.0.0.1:3000/health" in rows[0].detail


def test_over_ssh_every_check_is_made_from_the_servers_side(settings: Settings) -> None:
    """A port published on every address is checked at the server's own loopback through the
    link too (as `make health` on the server: its firewall and a ProxyJump do not matter); if
    the link cannot forward, it is checked directly as before."""
    from tasks.lib.errors import EngineUnavailable

    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> tuple[int | None, str]:
        fetched.append(url)
        return 200, ""

    asked: list[tuple[str, int]] = []

    def reach(host_ip: str, port: int) -> tuple[str, int] | None:
        asked.append((host_ip, port))
        return "127.0.0.1", 45000

    containers = [_c("frontend", Port(3100, 3100, "tcp", "0.0.0.0"))]
    checks = (HttpCheck("web", 3100, "/"),)
    rows = http_rows(
        SPEC, containers, settings, "meeshy.me", fetch=fetch, checks=checks, reach=reach
    )
    assert asked == [("127.0.0.1", 3100)]
    assert fetched == ["http://127.0.0.1:45000/"]
    assert rows[0].check == "http://127.0.0.1:3100/ (on meeshy.me, through the SSH link)"
    assert rows[0].status == Status.PASS

    def refused(host_ip: str, port: int) -> tuple[str, int] | None:
        raise EngineUnavailable("ssh could not add a forward")

    fetched.clear()
    rows = http_rows(
        SPEC, containers, settings, "meeshy.me", fetch=fetch, checks=checks, reach=refused
    )
    assert fetched == ["http://meeshy.me:3100/"]
    assert rows[0].status == Status.PASS
    # an engine on this machine (ssh to localhost): checked directly, no forward asked
    asked.clear()
    fetched.clear()
    http_rows(SPEC, containers, settings, "127.0.0.1", fetch=fetch, checks=checks, reach=reach)
    assert asked == [] and fetched == ["http://127.0.0.1:3100/"]


@pytest.mark.parametrize(
    ("host_ip", "seen"),
    [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("::", "::1"), ("10.0.0.5", "10.0.0.5")],
)
def test_seen_from_server(host_ip: str, seen: str) -> None:
    from tasks.lib.stack.health import seen_from_server

    assert seen_from_server(host_ip) == seen


def test_urls_mark_a_remote_engines_loopback() -> None:
    spec = parse_config(
        {
            "services": {
                "gateway": {"ports": [{"target": 3000, "published": "3000", "host_ip": "::1"}]},
                "web": {"ports": [{"target": 3100, "published": "3100"}]},
            }
        }
    )
    assert [(u.url, u.via) for u in stack_urls(spec, "meeshy.me")] == [
        ("http://[::1]:3000", "port 3000, on meeshy.me's loopback only"),
        ("http://meeshy.me:3100", "port 3100"),
    ]
    assert [u.via for u in stack_urls(spec, "localhost")] == ["port 3000", "port 3100"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_dry_run_over_ssh_names_the_engine_and_opens_no_link(tmp_path: Path) -> None:
    env = _context(tmp_path, "meeshy-prod", "ssh://root@203.0.113.7")
    stack = Stack("prod", tmp_path / "prod.yml", "meeshy-prod", tmp_path / ".env")
    docker = str(shutil.which("docker"))
    tail = [
        "compose", "--file", str(tmp_path / "prod.yml"), "--env-file", str(tmp_path / ".env"),
        "--project-name", "meeshy-prod", "up", "--detach",
    ]  # fmt: skip
    by_context = EngineTarget(context="meeshy-prod", env=env)
    assert compose.argv(stack, by_context, up_call()) == [docker, "--context", "meeshy-prod", *tail]
    by_host = EngineTarget(env={**env, "DOCKER_HOST": "ssh://root@203.0.113.7"})
    assert compose.argv(stack, by_host, up_call()) == [docker, *tail]
    assert link_argv(by_context) == [] and link_argv(by_host) == []
