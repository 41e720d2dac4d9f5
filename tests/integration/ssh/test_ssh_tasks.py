"""Every engine task through a real sshd on loopback, as a user on a laptop runs them against
the production server: ``--context meeshy-prod-test`` (an ssh_config alias with its own Port),
``DOCKER_HOST=ssh://root@127.0.0.1:PORT`` and a ``ProxyJump`` alias.

Each run must open exactly ONE SSH session (the SDK and the docker CLI both go through the
task's forward; the CLI never starts an ssh of its own) and leave no ssh process and no socket
file behind."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.registry import EXAMPLE, LocalRegistry, build_example, registry
from tests.integration.registry import remove_namespace as _remove_namespace
from tests.integration.ssh.sshd import ALIAS, FORWARD_ONLY, JUMP, Sshd, inv, sshd

__all__ = ["registry", "sshd"]  # the fixtures, imported explicitly

pytestmark = [pytest.mark.engine]
SERVICES = ("gateway", "translator", "web")


def remove_namespace(ns: str) -> None:
    _remove_namespace(ns)


@pytest.fixture(scope="module")
def images_ns() -> Iterator[str]:
    """The example's images under a namespace of this module, built on the engine directly."""
    ns = f"tssh{uuid.uuid4().hex[:6]}"
    try:
        build_example(EXAMPLE, ns)
        yield ns
    finally:
        remove_namespace(ns)


@pytest.fixture
def fresh_ns() -> Iterator[str]:
    ns = f"tssh{uuid.uuid4().hex[:6]}"
    yield ns
    remove_namespace(ns)


@pytest.fixture(autouse=True)
def no_leftovers(sshd: Sshd) -> Iterator[None]:
    assert sshd.leftovers() == [], "leftovers before the test"
    yield
    assert sshd.wait_no_leftovers() == []


def run_once(sshd: Sshd, *args: str, sessions: int = 1, **env: str) -> Any:
    """Run a task; it must succeed with exactly ``sessions`` SSH logins."""
    before = sshd.logins()
    result = inv(sshd, *args, **env)
    assert result.code == 0, result
    assert sshd.logins() - before == sessions, (
        f"{sshd.logins() - before} SSH sessions for one run, not {sessions}:\n{result}"
    )
    return result


# -- docker.ensure, volumes.size ------------------------------------------------------------------


def test_ensure_through_a_context(sshd: Sshd) -> None:
    r = run_once(sshd, "docker.ensure", "--context", ALIAS)
    assert f"answers at ssh://{ALIAS} (Docker context '{ALIAS}')" in r.out
    r = run_once(sshd, "docker.ensure", "--context", ALIAS, "--json")
    report = json.loads(r.out)
    assert report["answers"] and report["kind"] == "remote"
    argv = report["ssh"]
    assert argv[:2] == ["ssh", "-nNT"]
    assert "ControlMaster=yes" in argv and "ControlPersist=no" in argv
    assert argv[argv.index("-F") + 1] == str(sshd.ssh_config)
    assert argv[-2:] == ["--", ALIAS]


def test_ensure_through_docker_host_and_proxyjump(sshd: Sshd) -> None:
    r = run_once(sshd, "docker.ensure", DOCKER_HOST=sshd.docker_host())
    assert f"answers at {sshd.docker_host()}" in r.out
    # ProxyJump: one session to the jump host, one through it to the server
    r = run_once(sshd, "docker.ensure", "--context", JUMP, sessions=2)
    assert f"answers at ssh://{JUMP}" in r.out


def test_the_link_connects_with_nagle_off_unless_the_host_has_a_route_of_its_own(
    sshd: Sshd,
) -> None:
    """A plain host: ssh gets its TCP connection from tasks/lib/ssh_dial.py (ProxyUseFdpass)
    and the task works through it; a ProxyJump host: ssh connects itself (the user's route
    wins); meeshy.ssh.nodelay false: ssh connects itself. The dialer leaves no process."""

    def ssh_argv(*args: str, sessions: int = 1, **env: str) -> list[str]:
        r = run_once(sshd, "docker.ensure", *args, "--json", sessions=sessions, **env)
        report = json.loads(r.out)
        assert report["answers"], r
        return list(report["ssh"])

    argv = ssh_argv("--context", ALIAS)
    assert "ProxyUseFdpass=yes" in argv
    command = argv[argv.index("ProxyUseFdpass=yes") + 2]
    assert command.startswith("ProxyCommand=") and command.endswith("ssh_dial.py")
    assert "ProxyUseFdpass=yes" in ssh_argv(DOCKER_HOST=sshd.docker_host())
    jump = ssh_argv("--context", JUMP, sessions=2)
    assert not any(a.startswith(("ProxyCommand", "ProxyUseFdpass")) for a in jump)
    off = ssh_argv("--context", ALIAS, INVOKE_MEESHY_SSH_NODELAY="0")
    assert not any(a.startswith(("ProxyCommand", "ProxyUseFdpass")) for a in off)


def test_the_test_server_never_runs_the_real_users_shell_files(sshd: Sshd) -> None:
    """Sessions of the fixture's sshd (the task's pty session) run with the fixture's own
    empty HOME: the real user's ~/.bashrc is never read (it is the user's, and a heavy one
    skews every timing; a pyenv init there left a lock that made each login spin 60 s)."""
    r = subprocess.run(
        ["ssh", "-F", str(sshd.ssh_config), "-n", "-o", "BatchMode=yes", ALIAS, "echo $HOME"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert r.stdout.strip() == str(sshd.home)
    assert not any(sshd.home.iterdir())  # and nothing was written there


def test_the_link_starts_as_tasks_py_loads_and_the_task_uses_that_one(sshd: Sshd) -> None:
    """prestart_link: the engine named by --context, by Invoke's env config or by DOCKER_HOST
    is reached with ONE login (the task finds the link already open: same endpoint and
    options); a help screen opens none."""
    run_once(sshd, "images.list", "--context", ALIAS, "--json")
    run_once(sshd, "images.list", "--json", INVOKE_MEESHY_DOCKER_CONTEXT=ALIAS)
    run_once(sshd, "volumes.size", "--json", DOCKER_HOST=sshd.docker_host())
    run_once(sshd, "docker.ensure", "--context", ALIAS, INVOKE_MEESHY_SSH_TTY="0")
    run_once(sshd, "images.list", "--context", ALIAS, "--help", sessions=0)
    # a flag Invoke rejects after the link started: Invoke's error, and the link is gone
    # (the no_leftovers fixture checks: no ssh, no socket dir)
    r = inv(sshd, "images.list", "--context", ALIAS, "--no-such-flag")
    assert r.code != 0 and "--no-such-flag" in r.err + r.out, r


def test_volumes_size(sshd: Sshd, sdk: Any) -> None:
    name = f"meeshy-tssh-{uuid.uuid4().hex[:6]}"
    sdk.volumes.create(name)
    try:
        r = run_once(sshd, "volumes.size", "--context", ALIAS, "--json")
        assert name in {row["name"] for row in json.loads(r.out)}
    finally:
        sdk.volumes.get(name).remove(force=True)


# -- images.* --------------------------------------------------------------------------------------


def test_images_list(sshd: Sshd, images_ns: str) -> None:
    common = ("--root", str(EXAMPLE), "--registry", images_ns)
    r = run_once(sshd, "images.list", "--context", ALIAS, *common, "--json")
    repos = {row.get("repository") or row.get("name") for row in json.loads(r.out)}
    assert {f"{images_ns}/meeshy-{s}" for s in SERVICES} <= repos, r.out


def test_images_validate(sshd: Sshd, images_ns: str) -> None:
    run_once(
        sshd, "images.validate", "--context", ALIAS, "--root", str(EXAMPLE), "--registry", images_ns
    )


def test_images_push(sshd: Sshd, images_ns: str, registry: LocalRegistry) -> None:
    r = run_once(
        sshd, "images.push", "--context", ALIAS, "--root", str(EXAMPLE),
        "--registry", images_ns, "--registry-url", registry.host,
    )  # fmt: skip
    assert registry.tags(f"{images_ns}/meeshy-web") == ["latest", "v1.0.41"], r


# -- staging.* -------------------------------------------------------------------------------------


def test_staging_tag_then_push(sshd: Sshd, images_ns: str, registry: LocalRegistry) -> None:
    common = ("--root", str(EXAMPLE), "--registry", images_ns)
    tag = f"s{uuid.uuid4().hex[:6]}"
    try:
        run_once(sshd, "staging.tag", "--context", ALIAS, *common, "--to", tag)
        run_once(
            sshd, "staging.push", "--context", ALIAS, *common, "--to", tag,
            "--registry-url", registry.host,
        )  # fmt: skip
        for svc in SERVICES:
            assert registry.tags(f"{images_ns}/meeshy-{svc}") == [tag]
    finally:
        import docker

        client = docker.from_env()
        for svc in SERVICES:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(f"{images_ns}/meeshy-{svc}:{tag}", force=True)
        client.close()


def test_staging_volumes(sshd: Sshd, sdk: Any) -> None:
    run_id = uuid.uuid4().hex[:6]
    src, dst = f"meeshy-tssh{run_id}-uploads", f"meeshy-staging-tssh{run_id}-uploads"
    sdk.volumes.create(src)
    try:
        sdk.containers.run(
            "busybox:latest",
            ["sh", "-c", "echo hello > /v/a.txt && mkdir /v/d && echo x > /v/d/b"],
            volumes={src: {"bind": "/v", "mode": "rw"}},
            network_mode="none",
            remove=True,
        )
        r = run_once(
            sshd, "staging.volumes", "--context", ALIAS, "--volume", src,
            "--helper-image", "busybox:latest", "--json",
        )  # fmt: skip
        [report] = json.loads(r.out)
        assert report["target"] == dst
        assert report["files"] >= 2
    finally:
        for c in sdk.containers.list(all=True, filters={"volume": src}):
            c.remove(force=True)
        import docker

        for name in (src, dst):
            with contextlib.suppress(docker.errors.NotFound):
                sdk.volumes.get(name).remove(force=True)


# -- builds and release ----------------------------------------------------------------------------


def _exists(sdk: Any, ref: str) -> bool:
    import docker

    try:
        sdk.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_build_gateway_through_a_context(sshd: Sshd, sdk: Any, fresh_ns: str) -> None:
    run_once(sshd, "build.gateway", "--context", ALIAS, "--registry", fresh_ns)
    assert _exists(sdk, f"{fresh_ns}/meeshy-gateway:latest")


def test_build_web_through_proxyjump(sshd: Sshd, sdk: Any, fresh_ns: str) -> None:
    run_once(sshd, "build.web", "--context", JUMP, "--registry", fresh_ns, sessions=2)
    assert _exists(sdk, f"{fresh_ns}/meeshy-web:latest")


def test_build_translator_through_docker_host(sshd: Sshd, sdk: Any, fresh_ns: str) -> None:
    run_once(sshd, "build.translator", "--registry", fresh_ns, DOCKER_HOST=sshd.docker_host())
    assert _exists(sdk, f"{fresh_ns}/meeshy-translator:cpu")


def test_build_all_through_a_context(sshd: Sshd, sdk: Any, fresh_ns: str) -> None:
    run_once(sshd, "build.all", "--context", ALIAS, "--registry", fresh_ns)
    for svc in SERVICES:
        assert _exists(sdk, f"{fresh_ns}/meeshy-{svc}:latest")


def test_release_through_a_context(
    sshd: Sshd, fresh_ns: str, registry: LocalRegistry, example_copy: Path
) -> None:
    r = run_once(
        sshd, "release", "--context", ALIAS, "--root", str(example_copy),
        "--registry", fresh_ns, "--registry-url", registry.host,
    )  # fmt: skip
    assert registry.tags(f"{fresh_ns}/meeshy-gateway") == ["latest", "v1.0.40"], r


def test_two_tasks_on_one_command_line_each_open_and_close_their_link(
    sshd: Sshd, images_ns: str
) -> None:
    common = ("--root", str(EXAMPLE), "--registry", images_ns)
    run_once(
        sshd, "images.list", "--context", ALIAS, *common,
        "volumes.size", "--context", ALIAS, sessions=2,
    )  # fmt: skip


# -- keys limited to forwarding ----------------------------------------------------------------


def test_a_forward_only_key_works_without_the_tty_session(sshd: Sshd, images_ns: str) -> None:
    """``restrict,port-forwarding`` in authorized_keys: no pty. With the default
    (``meeshy.ssh.tty``) the server refuses the session's pty: only the session ends, the
    forward works on (one login); with ``tty: false`` there is no session at all."""
    common = ("--root", str(EXAMPLE), "--registry", images_ns, "--json")
    r = run_once(sshd, "images.list", "--context", FORWARD_ONLY, *common)
    assert images_ns in r.out
    r = run_once(sshd, "images.list", "--context", FORWARD_ONLY, *common, INVOKE_MEESHY_SSH_TTY="0")
    assert images_ns in r.out
    r = run_once(sshd, "docker.ensure", "--context", ALIAS, "--json", INVOKE_MEESHY_SSH_TTY="0")
    assert json.loads(r.out)["ssh"][:2] == ["ssh", "-nNT"]


def _keepers(sshd: Sshd) -> list[Any]:
    """The server's KEEPER processes under this sshd (``sleep 2147483647``, or the login
    shell that runs it while it reads its startup files)."""
    import psutil

    assert sshd._proc is not None
    server = psutil.Process(sshd._proc.pid)
    return [p for p in server.children(recursive=True) if "sleep 2147483647" in _cmdline(p)]


def _cmdline(p: Any) -> str:
    import psutil

    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def test_the_pty_session_joins_the_forward_without_a_second_login(sshd: Sshd) -> None:
    """The session runs KEEPER on a pty on the server, through the forward's control socket
    (one login), started once the forward is up; closing the forward ends it, on the server
    too, and leaves no process or file."""
    import time

    import docker

    from tasks.lib.config import SshOptions
    from tasks.lib.ssh import Forward

    before = sshd.logins()
    options = SshOptions(config=str(sshd.ssh_config))
    with Forward(f"ssh://{ALIAS}", options) as fw:
        assert fw.session is not None and fw.control_path is not None
        client = docker.DockerClient(base_url=fw.url, timeout=10)
        try:
            assert client.ping()
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while not (keepers := _keepers(sshd)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keepers, "no pty session on the server"
        assert all(k.terminal() for k in keepers), "the session has no pty"
        forward_dir = fw.dir
    assert sshd.logins() - before == 1
    assert forward_dir is not None and not forward_dir.exists()
    deadline = time.monotonic() + 10
    while _keepers(sshd) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _keepers(sshd), "the server's session outlived the forward"
    assert sshd.wait_no_leftovers() == []


def test_a_server_port_is_reached_through_the_link_without_a_second_login(sshd: Sshd) -> None:
    """stack.health over SSH checks a port of the server (its loopback included) through a
    unix socket in the link's private dir, forwarded over the run's connection (``ssh -O
    forward`` on its control socket): one login; the socket goes with the link. Also with
    ``tty: false`` (no pty session, the control socket is still there)."""
    import http.server
    import stat
    import threading

    from tasks.lib.config import SshOptions
    from tasks.lib.ssh import Forward
    from tasks.lib.stack.health import http_get_unix

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        for tty in (True, False):
            before = sshd.logins()
            options = SshOptions(config=str(sshd.ssh_config), tty=tty)
            with Forward(f"ssh://{ALIAS}", options) as fw:
                sock = fw.forward_to("127.0.0.1", port)
                assert fw.forward_to("127.0.0.1", port) == sock  # once per endpoint
                assert fw.dir is not None and Path(sock).parent == fw.dir
                assert stat.S_IMODE(fw.dir.stat().st_mode) == 0o700
                url = f"http://127.0.0.1:{port}/health"
                assert http_get_unix(sock, url, 10) == (200, "")
                assert http_get_unix(sock, f"http://127.0.0.1:{port}/nope", 10)[0] == 404
            assert sshd.logins() - before == 1
            assert not Path(sock).exists()
        assert sshd.wait_no_leftovers() == []
    finally:
        server.shutdown()
        server.server_close()


def test_a_users_controlmaster_config_neither_adopts_nor_outlives_the_link(sshd: Sshd) -> None:
    """Many users have ``ControlMaster auto`` + ``ControlPersist`` in ~/.ssh/config, often with
    a master already running. The task's link is still its own (its own login and control
    socket: the user's master is not used, nor its lifetime changed) and leaves nothing: no
    new socket on the user's ControlPath, no ssh process of its own."""
    import subprocess

    import psutil

    user_sockets = sshd.dir / "user-cm"
    user_sockets.mkdir()
    config = sshd.dir / "ssh_config.controlmaster"
    config.write_text(
        "Host *\n"
        "  ControlMaster auto\n"
        f"  ControlPath {user_sockets}/cm-%r@%h:%p\n"
        "  ControlPersist 600\n\n" + sshd.ssh_config.read_text()
    )
    try:
        # the user's own master (in the background, no remote command), as a first `ssh HOST`
        # with that config leaves it
        subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-fNM", ALIAS],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=30, env=sshd.env(),
        )  # fmt: skip
        user_master = sorted(user_sockets.iterdir())
        assert len(user_master) == 1, "the user's master did not start"
        before = sshd.logins()
        r = inv(sshd, "docker.ensure", "--context", ALIAS, INVOKE_MEESHY_SSH_CONFIG=str(config))
        assert r.code == 0, r
        assert sshd.logins() - before == 1, "the task must log in itself, not ride the user's"
        assert sorted(user_sockets.iterdir()) == user_master
        ours = [
            p.info["pid"]
            for p in psutil.process_iter(["pid", "name", "cmdline"])
            if p.info["name"] == "ssh"
            and str(config) in (p.info["cmdline"] or [])
            and "-fNM" not in (p.info["cmdline"] or [])
        ]
        assert ours == [], "an ssh of the task outlived it"
    finally:
        subprocess.run(
            ["ssh", "-F", str(config), "-O", "exit", ALIAS],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=30, check=False, env=sshd.env(),
        )  # fmt: skip
    assert sshd.wait_no_leftovers() == []
