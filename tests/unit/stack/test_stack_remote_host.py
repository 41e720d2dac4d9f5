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
from tasks.lib.stack.health import (
    Fetch,
    HttpCheck,
    beyond_reach,
    engine_host,
    http_rows,
    is_loopback,
)
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


# a gateway published on the engine's loopback only, a frontend on every address
MIXED = (
    _c("gateway", Port(3000, 3000, "tcp", "127.0.0.1")),
    _c("frontend", Port(3100, 3100, "tcp", "0.0.0.0")),
)
MIXED_CHECKS = (HttpCheck("gateway", 3000, "/health"), HttpCheck("web", 3100, "/"))


def recording_fetch() -> tuple[list[str], Fetch]:
    """A direct HTTP GET that answers 200 and records the URLs asked."""
    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> tuple[int | None, str]:
        fetched.append(url)
        return 200, ""

    return fetched, fetch


def test_a_remote_engines_loopback_port_is_not_checked_from_here(settings: Settings) -> None:
    fetched, fetch = recording_fetch()

    containers, checks = list(MIXED), MIXED_CHECKS
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


class Link:
    """A stand-in for the SSH link's forwards: records what was asked, answers per URL."""

    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.asked: list[tuple[str, int]] = []
        self.fetched: list[tuple[str, str]] = []
        self.codes = codes or {}

    def reach(self, host_ip: str, port: int) -> str | None:
        self.asked.append((host_ip, port))
        return f"/tmp/link/port-{len(self.asked) - 1}.sock"

    def fetch_via(self, sock: str, url: str, timeout: float) -> tuple[int | None, str]:
        self.fetched.append((sock, url))
        return self.codes.get(url, 200), ""


def _no_direct(url: str, timeout: float) -> tuple[int | None, str]:
    raise AssertionError(f"checked from this machine: {url}")


def test_over_ssh_every_check_is_made_from_the_servers_side(settings: Settings) -> None:
    """Through the link, as `make health` run on the server: a loopback-only port, one on
    every address, and also when ssh's HostName is itself 127.0.0.1 (behind a ProxyJump, a
    VM's forwarded port): this machine's own ports are never what is checked."""
    containers, checks = list(MIXED), MIXED_CHECKS
    for host in ("meeshy.me", "127.0.0.1"):
        link = Link({"http://127.0.0.1:3100/": 503})
        rows = http_rows(
            SPEC,
            containers,
            settings,
            host,
            fetch=_no_direct,
            checks=checks,
            reach=link.reach,
            fetch_via=link.fetch_via,
        )
        assert link.asked == [("127.0.0.1", 3000), ("127.0.0.1", 3100)]
        assert link.fetched == [
            ("/tmp/link/port-0.sock", "http://127.0.0.1:3000/health"),
            ("/tmp/link/port-1.sock", "http://127.0.0.1:3100/"),
        ]
        assert [(r.check, r.status, r.detail, r.via) for r in rows] == [
            ("http://127.0.0.1:3000/health", Status.PASS, "HTTP 200", f"ssh link to {host}"),
            ("http://127.0.0.1:3100/", Status.FAIL, "HTTP 503", f"ssh link to {host}"),
        ]
        assert rows[0].to_json()["via"] == f"ssh link to {host}"


def test_when_the_link_cannot_forward(settings: Settings) -> None:
    """ssh refuses the forward: a loopback-only port is skipped with why and the command to
    run there; a port on every address is checked directly, as without a link."""
    from tasks.lib.errors import EngineUnavailable

    def refused(host_ip: str, port: int) -> str | None:
        raise EngineUnavailable("ssh could not add a forward to 127.0.0.1:3000: refused")

    fetched, fetch = recording_fetch()

    containers, checks = list(MIXED), MIXED_CHECKS
    rows = http_rows(
        SPEC, containers, settings, "meeshy.me", fetch=fetch, checks=checks, reach=refused
    )
    assert rows[0].status == Status.SKIPPED
    assert "(ssh could not add a forward to 127.0.0.1:3000: refused)" in rows[0].detail
    assert "curl -sf http://127.0.0.1:3000/health" in rows[0].detail
    assert (rows[1].status, rows[1].via) == (Status.PASS, "")
    assert fetched == ["http://meeshy.me:3100/"]


def test_ctrl_c_while_the_link_adds_a_forward_is_not_swallowed(settings: Settings) -> None:
    import signal

    from tasks.lib.errors import Interrupted

    def interrupted(host_ip: str, port: int) -> str | None:
        raise Interrupted(signal.SIGINT)

    containers = [_c("gateway", Port(3000, 3000, "tcp", "127.0.0.1"))]
    with pytest.raises(Interrupted):
        http_rows(
            SPEC,
            containers,
            settings,
            "meeshy.me",
            fetch=_no_direct,
            checks=(HttpCheck("gateway", 3000, "/health"),),
            reach=interrupted,
        )


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
