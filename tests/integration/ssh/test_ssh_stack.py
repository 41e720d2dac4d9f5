"""stack.* through a real sshd on loopback, as a user runs them against the production server:
``--context meeshy-prod-test`` (an ssh_config alias with its own Port and ``HostName``) and
``DOCKER_HOST=ssh://root@127.0.0.1:PORT``.

The stack is small (busybox stand-ins under a namespace unique to the run): a database with a
healthcheck, a gateway serving ``/health`` on a port published on every address, a frontend
serving ``/`` on a port published on 127.0.0.1 only. Its host ports and a greeting come from
the stack's env file, so the file must reach compose through the link too. Every run must open
exactly ONE SSH session and leave no ssh process and no socket file; every compose call must go
through that session (with ``--context``, ``DOCKER_HOST`` points at nothing: a compose call
that ignored the link would fail)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tasks.lib.config import resolve
from tests.cli import reaped
from tests.conftest import EXAMPLE
from tests.integration.ssh.sshd import ALIAS, Result, Sshd, inv, popen, sshd
from tests.integration.stack.stack_world import StackWorld, compose_ps, docker_sdk, free_ports

__all__ = ["sshd"]  # the fixture, imported explicitly

pytestmark = [pytest.mark.engine]

DEV_FILE = "infrastructure/docker/compose/docker-compose.dev.yml"
ENV_FILE = "infrastructure/envs/.env.example"

HEALTH = (
    '    healthcheck:\n      test: ["CMD-SHELL", "wget -q -O /dev/null '
    'http://127.0.0.1:$$PORT/health"]\n      interval: 1s\n      timeout: 2s\n'
    "      retries: 30\n"
)


def small_stack(ns: str, uid: str) -> str:
    return f"""\
# stack.* over SSH (run {uid}): ports and GREETING come from the env file
services:
  database:
    image: busybox:latest
    init: true
    command:
      - sh
      - -c
      - >-
        echo starting; sleep 1; touch /ready;
        echo "database ready {uid} $${{GREETING}}"; exec sleep 600
    environment:
      GREETING: "${{GREETING:-no env file}}"
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
      timeout: 2s
      retries: 60

  gateway:
    image: {ns}/meeshy-gateway:latest
    init: true
    depends_on:
      database:
        condition: service_healthy
    environment:
      PORT: "3000"
    ports:
      - "${{GATEWAY_PORT:?GATEWAY_PORT comes from the env file}}:3000"
{HEALTH}
  frontend:
    image: {ns}/meeshy-web:latest
    init: true
    depends_on: [gateway]
    environment:
      PORT: "3100"
    ports:
      - "127.0.0.1:${{WEB_PORT:?WEB_PORT comes from the env file}}:3100"
{HEALTH}"""


class SshStack:
    """One small stack in a copy of the example monorepo, its images and its env."""

    def __init__(self, world: StackWorld) -> None:
        self.world = world
        self.gateway_port, self.web_port = free_ports(2)
        self.greeting = f"hello-{world.uid}"

    @property
    def project(self) -> str:
        return self.world.project("dev")

    def env(self) -> dict[str, str]:
        return self.world.env()

    def compose_argv(self, transport: str, *args: str, profile: str = "") -> str:
        """The compose command a dry run shows: the engine as a person names it (``--context
        ALIAS``; nothing with DOCKER_HOST, which the shell passes on), then the stack's flags."""
        root = self.world.root
        engine = TRANSPORTS[transport][0]
        return shlex.join([
            str(shutil.which("docker")), *engine, "compose", "--file", str(root / DEV_FILE),
            *(["--profile", profile] if profile else []), "--env-file", str(root / ENV_FILE),
            "--project-name", self.project, *args,
        ])  # fmt: skip

    def write(self) -> None:
        root = self.world.root
        (root / DEV_FILE).write_text(small_stack(self.world.ns, self.world.uid), encoding="utf-8")
        (root / ENV_FILE).write_text(
            f"GREETING={self.greeting}\nGATEWAY_PORT={self.gateway_port}\n"
            f"WEB_PORT={self.web_port}\n",
            encoding="utf-8",
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshStack]:
    root = tmp_path_factory.mktemp("sshstack") / "meeshy"
    shutil.copytree(EXAMPLE, root, symlinks=True)
    world = StackWorld(root)
    with docker_sdk() as client:
        try:
            sha = resolve({"root": str(root)}, env={}, project_dir=root).schema_sha256
            assert sha
            world.build(client, sha)
            st = SshStack(world)
            st.write()
            yield st
        finally:
            world.cleanup(client)
            left = world.leftovers(client)
            assert not left, f"left on the engine: {left}"


@pytest.fixture(autouse=True)
def no_leftovers(sshd: Sshd) -> Iterator[None]:
    assert sshd.leftovers() == [], "leftovers before the test"
    yield
    assert sshd.wait_no_leftovers() == []


@pytest.fixture
def down_after(stack: SshStack) -> Iterator[None]:
    """Whatever a test left running of the stack goes, also when it failed."""
    yield
    subprocess.run(
        ["docker", "compose", "-p", stack.project, "down", "--remove-orphans", "--volumes"],
        capture_output=True,
        check=False,
        timeout=120,
    )


TRANSPORTS = {
    # --context wins over DOCKER_HOST: a compose call that skipped the task's link would try
    # this socket and fail
    "context": (("--context", ALIAS), {"DOCKER_HOST": "unix:///nonexistent/meeshy-test.sock"}),
    "docker-host": ((), {}),
}


def run(
    sshd: Sshd, stack: SshStack, transport: str, *args: str, code: int = 0, logins: int = 1
) -> Result:
    """One task run: it must end with ``code`` after exactly ``logins`` SSH logins."""
    flags, extra = TRANSPORTS[transport]
    env = {**stack.env(), **extra}
    if transport == "docker-host":
        env["DOCKER_HOST"] = sshd.docker_host()
    before = sshd.logins()
    result = inv(sshd, *args, *flags, **env)
    assert result.code == code, result
    assert sshd.logins() - before == logins, (
        f"{sshd.logins() - before} SSH sessions for one run, not {logins}:\n{result}"
    )
    return result


def _states(project: str) -> dict[str, str]:
    return {row["Service"]: row["State"] for row in compose_ps(project)}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_stack_tasks_over_ssh(
    sshd: Sshd, stack: SshStack, transport: str, down_after: None
) -> None:
    project = stack.project
    uid = stack.world.uid

    # the dry run names the engine as a person would, and needs no link: `compose config`
    # asks no engine
    r = run(sshd, stack, transport, "stack.up", "--dry-run", logins=0)
    assert r.out.splitlines()[1] == stack.compose_argv(transport, "up", "--detach"), r
    assert _states(project) == {}

    r = run(sshd, stack, transport, "stack.up", "--timeout", "90")
    assert f"{project} is up" in r.out, r
    assert "env file" not in r.err, r  # it was found and passed
    assert _states(project) == {
        "database": "running",
        "gateway": "running",
        "frontend": "running",
    }

    r = run(sshd, stack, transport, "stack.status", "--json")
    status = {row["service"]: row for row in json.loads(r.out)["services"]}
    assert set(status) == {"database", "gateway", "frontend"}, r
    assert {s["state"] for s in status.values()} == {"running"}, r
    assert {s["health"] for s in status.values()} == {"healthy"}, r

    r = run(sshd, stack, transport, "stack.health", "--json")
    report = json.loads(r.out)
    assert report["ok"] is True, r
    checks = {(c["kind"], c["service"]): c for c in report["checks"]}
    assert checks["http", "gateway"]["status"] == "pass", r
    # made from the server's side, through the link to what ssh connects to (HostName
    # 127.0.0.1), not the alias itself
    assert checks["http", "gateway"]["check"] == (
        f"http://127.0.0.1:{stack.gateway_port}/health"
    ), r
    assert checks["http", "gateway"]["via"] == "ssh link to 127.0.0.1", r
    assert checks["http", "frontend"]["check"] == f"http://127.0.0.1:{stack.web_port}/", r
    assert checks["http", "frontend"]["via"] == "ssh link to 127.0.0.1", r
    assert checks["http", "frontend"]["status"] == "pass", r
    assert checks["http", "translator"]["status"] == "skipped", r

    r = run(sshd, stack, transport, "stack.logs", "--service", "database")
    assert f"database ready {uid} {stack.greeting}" in r.out, r

    r = run(sshd, stack, transport, "stack.urls", "--json")
    urls = {u["url"]: u["service"] for u in json.loads(r.out)["urls"]}
    assert urls[f"http://127.0.0.1:{stack.gateway_port}"] == "gateway", r
    assert urls[f"http://127.0.0.1:{stack.web_port}"] == "frontend", r

    r = run(sshd, stack, transport, "stack.pull", "--dry-run", "--json")
    items = {i["service"]: i["action"] for i in json.loads(r.out)["items"]}
    assert items == {"database": "present", "gateway": "present", "frontend": "present"}, r
    r = run(sshd, stack, transport, "stack.pull", "--all", "--dry-run")
    pulls = [ln for ln in r.out.splitlines() if " compose " in ln]
    assert pulls == [
        stack.compose_argv(transport, "pull", "--", svc, profile="*")
        for svc in ("database", "frontend", "gateway")
    ], r

    r = run(sshd, stack, transport, "stack.down")
    assert f"{project} is down" in r.out, r
    assert _states(project) == {}


def _popen(sshd: Sshd, stack: SshStack, *args: str) -> subprocess.Popen[str]:
    return popen(
        sshd,
        *args,
        "--context",
        ALIAS,
        **stack.env(),
        DOCKER_HOST="unix:///nonexistent/meeshy-test.sock",
    )


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    import signal

    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_ctrl_c_over_ssh_stops_waiting_and_following_and_closes_the_link(
    sshd: Sshd, stack: SshStack, down_after: None
) -> None:
    """SIGINT to the task alone: stack.up stops waiting (what started stays up, one line, 130)
    and stack.logs --follow stops following (130); neither leaves an ssh process or socket."""
    import time

    project = stack.project
    with reaped(_popen(sshd, stack, "stack.up", "--timeout", "120")) as proc:
        deadline = time.monotonic() + 60
        while not _states(project) and time.monotonic() < deadline:  # compose has started
            time.sleep(0.1)
        assert _states(project), "stack.up started nothing"
        code, _out, err = _interrupt(proc)
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    # compose up may still be creating the stack (the signal ended the link: the engine
    # cannot be asked how far it got), or done with it
    assert last.endswith(
        f"`docker compose up` of {project} was interrupted and the stack may be partly "
        "created: rerun `inv stack.up --env dev` to finish it, or take it down with "
        "`inv stack.down --env dev`"
    ) or ("stopped waiting for" in last and "stays up" in last), err
    assert sshd.wait_no_leftovers() == []
    assert _states(project), "what started should stay up"

    with reaped(_popen(sshd, stack, "stack.logs", "--follow", "--service", "database")) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "database ready" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "database ready" in seen, seen
        code, _out, err = _interrupt(proc)
    assert code == 130, err
    assert sshd.wait_no_leftovers() == []


def test_health_over_ssh_checks_from_the_servers_side(
    sshd: Sshd, stack: SshStack, down_after: None
) -> None:
    """A server whose name this machine cannot resolve (reached with a ProxyCommand): every
    HTTP check goes through the run's link, the loopback-only port included, with one login;
    stack.urls names the server's host."""
    from tests.integration.ssh.sshd import REMOTE, REMOTE_HOSTNAME

    if shutil.which("busybox") is None:
        pytest.skip("busybox (nc) is needed for the ProxyCommand")
    project = stack.project
    run(sshd, stack, "context", "stack.up", "--timeout", "90")
    before = sshd.logins()
    r = inv(sshd, "stack.health", "--json", "--context", REMOTE, **stack.env())
    assert r.code == 0, r
    assert sshd.logins() - before == 1, r
    checks = {(c["kind"], c["service"]): c for c in json.loads(r.out)["checks"]}
    via = f"ssh link to {REMOTE_HOSTNAME}"
    assert checks["http", "gateway"]["check"] == f"http://127.0.0.1:{stack.gateway_port}/health"
    assert checks["http", "frontend"]["check"] == f"http://127.0.0.1:{stack.web_port}/"
    assert checks["http", "gateway"]["via"] == via, r
    assert checks["http", "frontend"]["via"] == via, r
    assert checks["http", "gateway"]["status"] == "pass", r
    assert checks["http", "frontend"]["status"] == "pass", r
    r = inv(sshd, "stack.urls", "--json", "--context", REMOTE, **stack.env())
    assert r.code == 0, r
    urls = {u["url"] for u in json.loads(r.out)["urls"]}
    assert f"http://{REMOTE_HOSTNAME}:{stack.gateway_port}" in urls, r
    assert sshd.wait_no_leftovers() == []
    assert _states(project)


def test_a_dry_run_needs_no_reachable_server(sshd: Sshd, stack: SshStack) -> None:
    """`stack.up --dry-run` against a server that cannot be reached: the plan is printed and
    nothing tries to connect."""
    before = sshd.logins()
    r = inv(
        sshd,
        "stack.up",
        "--dry-run",
        DOCKER_HOST="ssh://root@meeshy-nohost.invalid",
        **stack.env(),
    )
    assert r.code == 0, r
    assert "dry run: would start" in r.out, r
    assert "compose" in r.out and "up" in r.out, r
    assert sshd.logins() == before
    assert sshd.wait_no_leftovers() == []
