"""What a user sees when the SSH link to the server fails: ssh's own reason and what to do, in
one line, exit 3, never a traceback; and no ssh process or socket file left behind after a
failure or Ctrl-C (SIGINT to the task process alone)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import reaped
from tests.integration.ssh.sshd import (
    ALIAS,
    CHANGED,
    DEAD,
    DENIED,
    SILENT,
    UNKNOWN,
    Sshd,
    inv,
    popen,
    sshd,
)

__all__ = ["sshd"]  # the fixture, imported explicitly

pytestmark = [pytest.mark.engine]


@pytest.fixture(autouse=True)
def no_leftovers(sshd: Sshd) -> Iterator[None]:
    assert sshd.leftovers() == [], "leftovers before the test"
    yield
    assert sshd.wait_no_leftovers() == []


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        pytest.param(
            DEAD,
            "over SSH: connection refused by 127.0.0.1:{dead}: nothing listens for SSH there",
            id="dead-host",
        ),
        pytest.param(
            UNKNOWN,
            "over SSH: the server's host key is unknown (Host key verification failed): check "
            "its fingerprint and accept it once with `ssh -F {config} "
            f"{UNKNOWN}`",
            id="unknown-host-key",
        ),
        pytest.param(
            CHANGED,
            "over SSH: the server's host key has changed (REMOTE HOST IDENTIFICATION HAS "
            f"CHANGED): if {CHANGED} was reinstalled, remove the old key with `ssh-keygen -f "
            '"{dir}/known_hosts_changed" -R "[127.0.0.1]:{port}"`',
            id="changed-host-key",
        ),
        pytest.param(
            DENIED,
            "over SSH: permission denied (publickey): the server refused every key offered",
            id="permission-denied",
        ),
    ],
)
@pytest.mark.parametrize("task", ["images.list", "volumes.size"])
def test_link_failures_are_ssh_s_reason_in_one_line(
    sshd: Sshd, alias: str, expected: str, task: str
) -> None:
    r = inv(sshd, task, "--context", alias)
    assert r.code == 3, r
    line = one_line(r.err)
    assert line.startswith(
        f"ERROR: Cannot reach the Docker engine at ssh://{alias} (Docker context '{alias}')"
    )
    want = expected.format(
        dead=sshd.dead_port, config=sshd.ssh_config, dir=sshd.dir, port=sshd.port
    )
    assert want in line, line


@pytest.mark.parametrize("nodelay", ["1", "0"], ids=["dialer", "ssh-connects"])
def test_the_dialer_fails_in_ssh_s_own_words(sshd: Sshd, nodelay: str) -> None:
    """The same one line whether tasks/lib/ssh_dial.py or ssh itself made the connection."""
    r = inv(sshd, "images.list", "--context", DEAD, INVOKE_MEESHY_SSH_NODELAY=nodelay)
    assert r.code == 3, r
    assert f"connection refused by 127.0.0.1:{sshd.dead_port}: nothing listens" in one_line(r.err)
    r = inv(
        sshd,
        "images.list",
        DOCKER_HOST="ssh://root@no-such-host.invalid",
        INVOKE_MEESHY_SSH_NODELAY=nodelay,
    )
    assert r.code == 3, r
    line = one_line(r.err)
    assert "over SSH: could not resolve host name 'no-such-host.invalid': check the name" in line


def test_silent_host_times_out_after_the_configured_connect_timeout(sshd: Sshd) -> None:
    r = inv(sshd, "images.list", "--context", SILENT, INVOKE_MEESHY_SSH_CONNECT_TIMEOUT="2")
    assert r.code == 3, r
    line = one_line(r.err)
    assert f"over SSH: no answer from 127.0.0.1:{sshd.silent_port} within 2s (timed out)" in line
    assert "raise meeshy.ssh.connect_timeout" in line
    assert r.seconds < 10, r


def test_missing_ssh_client_is_one_line(sshd: Sshd, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # docker but no ssh
    bin_dir.mkdir()
    docker = shutil.which("docker")
    assert docker is not None
    (bin_dir / "docker").symlink_to(docker)
    r = inv(sshd, "volumes.size", "--context", ALIAS, PATH=str(bin_dir))
    assert r.code == 3, r
    assert one_line(r.err) == (
        f"ERROR: Cannot reach the Docker engine at ssh://{ALIAS} (Docker context '{ALIAS}'): "
        "the ssh client is not installed: install OpenSSH (Debian/Ubuntu: `apt-get install "
        "openssh-client`; macOS and Windows 10+ ship it)"
    )


def test_no_docker_socket_on_the_server(sshd: Sshd) -> None:
    r = inv(sshd, "images.list", "--context", ALIAS, INVOKE_MEESHY_SSH_SOCKET="/nonexistent.sock")
    assert r.code == 3, r
    line = one_line(r.err)
    assert "over SSH: nothing answers on the server's Docker socket /nonexistent.sock" in line
    assert "set meeshy.ssh.socket" in line


def test_ensure_says_it_does_not_start_a_remote_engine(sshd: Sshd) -> None:
    r = inv(sshd, "docker.ensure", "--context", UNKNOWN)
    assert r.code == 3, r
    line = one_line(r.err)
    assert "the server's host key is unknown" in line
    assert line.endswith("docker.ensure does not start an engine on another machine")
    r = inv(sshd, "docker.ensure", "--context", ALIAS, INVOKE_MEESHY_SSH_SOCKET="/nope.sock")
    assert r.code == 3, r
    assert "nothing answers on the server's Docker socket /nope.sock" in one_line(r.err)


def test_docker_host_failure_names_the_endpoint(sshd: Sshd) -> None:
    host = f"ssh://root@127.0.0.1:{sshd.dead_port}"
    r = inv(sshd, "volumes.size", DOCKER_HOST=host)
    assert r.code == 3, r
    assert one_line(r.err).startswith(f"ERROR: Cannot reach the Docker engine at {host} over SSH")


def test_bad_ssh_settings_are_config_errors(sshd: Sshd) -> None:
    r = inv(sshd, "volumes.size", "--context", ALIAS, INVOKE_MEESHY_SSH_CONFIG="/nonexistent")
    assert r.code == 2, r
    assert "ssh config file /nonexistent does not exist" in one_line(r.err)
    r = inv(sshd, "volumes.size", "--context", ALIAS, INVOKE_MEESHY_SSH_SOCKET="docker.sock")
    assert r.code == 2, r
    assert "meeshy.ssh.socket must be an absolute path" in one_line(r.err)


# -- SIGINT ----------------------------------------------------------------------------------------


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigint_during_a_build_stops_everything(sshd: Sshd, example_copy: Path) -> None:
    """Ctrl-C while a build runs through the link: 130, one line, the ssh forward, its socket
    and the docker CLI all gone."""
    import psutil

    dockerfile = example_copy / "services/gateway/Dockerfile"
    text = dockerfile.read_text()
    marker = uuid.uuid4().hex
    dockerfile.write_text(
        text.replace(
            "COPY services/gateway/src ./src\n",
            f"COPY services/gateway/src ./src\nRUN echo {marker} && sleep 60\n",
        )
    )
    ns = f"tssh{marker[:6]}"
    proc = popen(
        sshd, "build.gateway", "--context", ALIAS, "--root", str(example_copy), "--registry", ns
    )
    try:
        with reaped(proc):
            task = psutil.Process(proc.pid)

            def building() -> bool:
                kids = task.children(recursive=True)
                for kid in kids:
                    # short-lived children (ssh's dialer) may end or be a zombie meanwhile
                    with contextlib.suppress(psutil.Error):
                        if "buildx" in " ".join(kid.cmdline()):
                            return True
                return False

            assert _wait_for(building, 60), "the build did not start"
            assert sshd.leftovers(), "no SSH forward while building"
            time.sleep(1.0)
            started = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=90)
            assert time.monotonic() - started < 15, "Ctrl-C waited for the build to end"
    finally:
        from tests.integration.registry import remove_namespace

        remove_namespace(ns)
    assert proc.returncode == 130, (out, err)
    errors = [ln for ln in err.splitlines() if not ln.startswith("WARNING: ")]
    assert one_line("\n".join(errors)).startswith("ERROR: interrupted by SIGINT: nothing was built")
    assert sshd.wait_no_leftovers() == []
    # the task names ns; its buildx names the context (the tags come after the build)
    left = [
        p
        for p in psutil.process_iter(["cmdline"])
        if ns in (cmd := " ".join(p.info["cmdline"] or [])) or str(example_copy) in cmd
    ]
    assert left == []


def test_sigint_while_ssh_connects(sshd: Sshd) -> None:
    """Ctrl-C while ssh waits for a silent host: 130 at once, nothing left."""
    timeout = {"INVOKE_MEESHY_SSH_CONNECT_TIMEOUT": "30"}
    with reaped(popen(sshd, "images.list", "--context", SILENT, **timeout)) as proc:
        assert _wait_for(lambda: bool(sshd.leftovers()), 30), "ssh did not start"
        time.sleep(0.5)
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10
    assert proc.returncode == 130, err
    assert one_line(err) == "ERROR: interrupted by SIGINT"


def test_the_link_cut_during_a_volume_copy_is_exit_3_and_the_target_stays_marked(
    sshd: Sshd, sdk: Any
) -> None:
    """The SSH link dies while staging.volumes copies (its ssh killed, as a dropped network
    does): the helper stops with it, and the line says the engine went away over SSH, exit 3
    (the README's code for a lost engine or link), not exit 1 "the helper stopped"; the
    target stays marked incomplete and the source is as it was."""
    import docker
    import psutil

    run_id = uuid.uuid4().hex[:6]
    src, dst = f"meeshy-tssh{run_id}-uploads", f"meeshy-staging-tssh{run_id}-uploads"
    marker = f"{dst}.copy-incomplete"
    fill = "cd /v && for d in $(seq 40); do mkdir $d && (cd $d && seq 500 | xargs touch); done"
    count = ["sh", "-c", "find /v | wc -l"]
    ro = {src: {"bind": "/v", "mode": "ro"}}

    def volumes() -> set[str]:
        return {str(v.name) for v in sdk.volumes.list() if run_id in str(v.name)}

    sdk.volumes.create(src)
    try:
        sdk.containers.run(
            "busybox:latest", ["sh", "-c", fill], volumes={src: {"bind": "/v", "mode": "rw"}},
            network_mode="none", remove=True,
        )  # fmt: skip
        files = sdk.containers.run("busybox:latest", count, volumes=ro, remove=True)
        proc = popen(
            sshd, "staging.volumes", "--context", ALIAS, "--volume", src,
            "--helper-image", "busybox:latest", "--checksum",
        )  # fmt: skip
        with reaped(proc):
            assert _wait_for(lambda: marker in volumes(), 60), "the copy did not start"
            task = psutil.Process(proc.pid)
            links = [k for k in task.children(recursive=True) if k.name() == "ssh"]
            assert links, "no ssh link while copying"
            for k in links:
                with contextlib.suppress(psutil.Error):
                    k.kill()
            out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, (out, err)
        line = [ln for ln in err.splitlines() if ln.startswith("ERROR: ")][-1]
        assert line.startswith(f"ERROR: the Docker engine at ssh://{ALIAS} "), err
        assert "went away over SSH: the link was cut: its ssh was ended by SIGKILL" in line
        assert f"not copied: {dst}" in line
        assert line.endswith(
            ", then rerun; the failed targets stay marked incomplete until a rerun copies them"
        )
        assert marker in volumes()  # never reported done: the next run starts over
        assert sdk.containers.run("busybox:latest", count, volumes=ro, remove=True) == files

        def helpers() -> bool:
            return bool(sdk.containers.list(all=True, filters={"volume": dst}))

        assert _wait_for(lambda: not helpers(), 20), "the helper outlived the link"
    finally:
        for c in sdk.containers.list(all=True, filters={"volume": src}):
            c.remove(force=True)
        for name in sorted(volumes()):
            with contextlib.suppress(docker.errors.NotFound):
                sdk.volumes.get(name).remove(force=True)
