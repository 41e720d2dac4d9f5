"""A real OpenSSH server on loopback in front of the real engine, for the SSH tests.

:class:`Sshd` runs ``/usr/sbin/sshd -D -e -f <tmp>/sshd_config`` on a free 127.0.0.1 port
with a generated host key and one authorized client key (root, key auth only), and writes
everything a client needs into the same temp dir, so the user's ``~/.ssh`` and ``~/.docker``
are never read or touched:

* ``ssh_config`` with the aliases the tests use: ``meeshy-prod-test`` (HostName 127.0.0.1,
  the non-default Port, User root, IdentityFile, its own UserKnownHostsFile,
  IdentitiesOnly), ``meeshy-jump-test`` (the same server reached through ``ProxyJump
  meeshy-prod-test``), and one alias per failure: a closed port, a silent listener, an empty
  ``known_hosts``, a ``known_hosts`` with another key, a key the server refuses. A ``Host
  127.0.0.1`` block makes ``DOCKER_HOST=ssh://root@127.0.0.1:PORT`` work too.
* a Docker config dir (``DOCKER_CONFIG``) with one Docker context per alias
  (``host=ssh://<alias>``).

:meth:`Sshd.env` is the environment for the real CLI: that ``DOCKER_CONFIG``,
``INVOKE_MEESHY_SSH_CONFIG`` (the project's way to pass ``-F``; real users rely on
``~/.ssh/config``), ``TMPDIR`` inside the temp dir (where the task's forward socket goes, so a
leftover is visible) and no ``DOCKER_HOST``/``DOCKER_CONTEXT`` from the outside.
:meth:`Sshd.leftovers` names any ssh process using this config and any forward dir left.

Use the ``sshd`` fixture (import it into the test module explicitly)::

    from tests.integration.ssh.sshd import sshd  # noqa: F401
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

SSHD = "/usr/sbin/sshd"
PROJECT = Path(__file__).resolve().parents[3]

ALIAS = "meeshy-prod-test"
JUMP = "meeshy-jump-test"
DEAD = "meeshy-dead-test"
SILENT = "meeshy-silent-test"
UNKNOWN = "meeshy-unknown-key-test"
CHANGED = "meeshy-changed-key-test"
DENIED = "meeshy-denied-test"
FORWARD_ONLY = "meeshy-forward-only-test"  # key limited to forwarding: no pty, no shell
# A server known by a name this machine cannot resolve (HostName under .invalid), reached with
# a ProxyCommand: what a task sees of it directly fails; only the SSH link reaches it.
REMOTE = "meeshy-remote-test"
REMOTE_HOSTNAME = "meeshy-remote.invalid"
ALIASES = (ALIAS, JUMP, DEAD, SILENT, UNKNOWN, CHANGED, DENIED, FORWARD_ONLY, REMOTE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "meeshy-test", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


class Sshd:
    """sshd on ``127.0.0.1:<port>`` plus the client files; a context manager."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sshd-", dir="/tmp"))
        self.port = free_port()
        self.dead_port = free_port()  # nothing listens there
        self.ssh_config = self.dir / "ssh_config"
        self.docker_config = self.dir / "docker"
        self.tmp = self.dir / "tmp"
        self.home = self.dir / "home"  # HOME of the sessions: not the real user's
        self.log = self.dir / "sshd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._silent: socket.socket | None = None

    # -- files ------------------------------------------------------------------------------

    def _write_files(self) -> None:
        d = self.dir
        self.tmp.mkdir()
        host_key = _keygen(d / "host_key")
        other_key = _keygen(d / "other_host_key")
        client_key = _keygen(d / "id")
        _keygen(d / "wrong_id")
        limited_key = _keygen(d / "forward_only_id")
        (d / "authorized_keys").write_text(
            f"{client_key}\nrestrict,port-forwarding {limited_key}\n"
        )
        where = f"[127.0.0.1]:{self.port}"
        (d / "known_hosts").write_text(f"{where} {host_key}\n")
        (d / "known_hosts_empty").write_text("")
        (d / "known_hosts_changed").write_text(f"{where} {other_key}\n")
        (d / "sshd_config").write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PidFile none\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "AllowTcpForwarding yes\n"
            "AllowStreamLocalForwarding yes\n"
            "MaxStartups 100\n"
            "LogLevel INFO\n"
            # The sessions (the task's pty session) run the login user's shell, and bash run
            # by sshd reads ~/.bashrc: never the real user's (a pyenv init there spawned
            # hundreds of processes per session, and killing a session mid-rehash left a
            # lock that made every later login spin 60 s). An empty home of the fixture's
            # own instead, and no ~/.ssh/rc.
            f"SetEnv HOME={self.home}\n"
            "PermitUserRC no\n"
        )
        self.home.mkdir()

        def host(alias: str, port: int, known: str = "known_hosts", key: str = "id") -> str:
            return (
                f"Host {alias}\n"
                "  HostName 127.0.0.1\n"
                f"  Port {port}\n"
                "  User root\n"
                f"  IdentityFile {d / key}\n"
                "  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {d / known}\n"
                "  GlobalKnownHostsFile /dev/null\n"
                "  StrictHostKeyChecking yes\n"
            )

        blocks = [
            host(ALIAS, self.port),
            host(JUMP, self.port) + f"  ProxyJump {ALIAS}\n",
            host(DEAD, self.dead_port),
            host(SILENT, self.silent_port),
            host(UNKNOWN, self.port, known="known_hosts_empty"),
            host(CHANGED, self.port, known="known_hosts_changed"),
            host(DENIED, self.port, key="wrong_id"),
            host(FORWARD_ONLY, self.port, key="forward_only_id"),
            host("127.0.0.1", self.port),  # DOCKER_HOST=ssh://root@127.0.0.1:PORT
            host(REMOTE, self.port).replace("HostName 127.0.0.1", f"HostName {REMOTE_HOSTNAME}")
            + f"  HostKeyAlias [127.0.0.1]:{self.port}\n"
            + f"  ProxyCommand {shutil.which('busybox') or 'busybox'} nc 127.0.0.1 {self.port}\n",
        ]
        self.ssh_config.write_text("\n".join(blocks))
        self.docker_config.mkdir()
        for alias in ALIASES:
            subprocess.run(
                ["docker", "--config", str(self.docker_config), "context", "create", alias,
                 "--docker", f"host=ssh://{alias}"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        # a TCP listener that accepts (backlog) and never says a word: ssh's banner timeout
        self._silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._silent.bind(("127.0.0.1", 0))
        self._silent.listen(64)
        self._write_files()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited at start:\n{self.log_text()[-1500:]}")
            if "Server listening" in self.log_text():
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.port} in {timeout}s")

    @property
    def silent_port(self) -> int:
        assert self._silent is not None
        return int(self._silent.getsockname()[1])

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def logins(self) -> int:
        """How many SSH sessions the server has accepted so far."""
        return len(re.findall(r"^Accepted publickey for root", self.log_text(), re.M))

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._silent is not None:
            self._silent.close()
            self._silent = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sshd:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests use ---------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
        env.update(
            DOCKER_CONFIG=str(self.docker_config),
            INVOKE_MEESHY_SSH_CONFIG=str(self.ssh_config),
            TMPDIR=str(self.tmp),
            NO_COLOR="1",
        )
        env.update(extra)
        return env

    def docker_host(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def leftovers(self) -> list[str]:
        """ssh processes that use this config, and forward dirs left in the task's TMPDIR."""
        import psutil

        found = []
        for p in psutil.process_iter(["pid", "name", "cmdline"]):
            cmd = p.info.get("cmdline") or []
            if p.info.get("name") == "ssh" and str(self.ssh_config) in cmd:
                found.append(f"ssh process {p.info['pid']}: {' '.join(cmd)}")
        found += [f"left behind: {x}" for x in sorted(self.tmp.glob("meeshy-ssh-*"))]
        return found

    def wait_no_leftovers(self, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left


class Result:
    def __init__(self, code: int, out: str, err: str, seconds: float) -> None:
        self.code, self.out, self.err, self.seconds = code, out, err, seconds

    def __repr__(self) -> str:
        return (
            f"<inv exit={self.code} in {self.seconds:.1f}s\n"
            f"stdout:\n{self.out}\nstderr:\n{self.err}>"
        )


def inv(sshd: Sshd, *args: str, **env: str) -> Result:
    """The real CLI (``python -m invoke``) from the project root, through ``sshd``'s config."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=sshd.env(**env),
        timeout=900,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def popen(sshd: Sshd, *args: str, **env: str) -> subprocess.Popen[str]:
    """The real CLI in the background, through ``sshd``'s config, in a session of its own: a
    signal sent to it reaches the task alone, as CI and ``timeout`` send it."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT,
        env=sshd.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def sshd_problem() -> str | None:
    if not Path(SSHD).is_file():
        return "openssh-server is not installed (bash .ci/install-engine.sh)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "openssh-client is not installed"
    if os.geteuid() != 0:
        return "the test sshd logs in as root and needs root to start"
    return None


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    """A running sshd on loopback in front of the engine, with its client config and Docker
    contexts; everything removed after the module."""
    problem = sshd_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but the test sshd cannot start: {problem}")
        pytest.skip(problem)
    with Sshd() as server:
        yield server
