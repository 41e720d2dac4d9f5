"""A second, private Docker engine for integration tests ("engines beyond one machine").

:class:`SecondEngine` starts another ``dockerd`` beside the main one without touching it:

* its own socket (``--host unix:///tmp/d2-XXXX/docker.sock``), ``--data-root``, ``--exec-root``
  and ``--pidfile`` in a short temp dir (unix socket paths are limited to 108 bytes, and the
  managed containerd puts its sockets under the exec-root);
* no ``--containerd``: dockerd then starts its *own* managed containerd, whose state lives
  under the exec-root and data-root, so it cannot clash with the main engine's containerd;
* a bridge of its own (``--bridge d2brXXXX``, created here on a free 10.233.N.0/24 and deleted
  afterwards) with ``--iptables=false --ip-masq=false --ip-forward=false``: no iptables rules
  or sysctls to fight over. NOT ``--bridge=none``: with it, dockerd 20.10 *deletes the host's
  ``docker0``* at start (``removeDefaultBridgeInterface``), which breaks every container and
  ``RUN`` step of the main engine; and BuildKit's ``RUN`` needs a bridge network anyway;
* an empty ``--config-file`` so a machine-wide ``/etc/docker/daemon.json`` (which may set
  ``hosts``) is not read.

It can seed images from the default engine (``docker save`` | ``load``, via the docker SDK) and
create a Docker context pointing at itself. On exit it always cleans up, also after a partial
start or when the process already died: SIGTERM then SIGKILL to dockerd's process group, SIGKILL
to its managed containerd (which runs in a session of its own), lazy unmount of whatever it left
mounted under the temp dir, removal of the temp dir, the bridge and the context.

Use the ``second_engine`` fixture (import it into the test module explicitly)::

    from tests.integration.engine.second_engine import second_engine  # noqa: F401
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

DOCKERD = "dockerd"


def _host_links() -> set[str]:
    """The names of this host's network interfaces."""
    try:
        return {p.name for p in Path("/sys/class/net").iterdir()}
    except OSError:
        return set()


class SecondEngine:
    """A private ``dockerd`` in ``/tmp/d2-XXXX``; a context manager with ``stop()``."""

    def __init__(
        self,
        *,
        seed: Sequence[str] = ("busybox:latest",),
        context: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="d2-", dir="/tmp"))
        self.host = f"unix://{self.workdir}/docker.sock"
        self.context = context or f"t5-{uuid.uuid4().hex[:8]}"
        self.seed_images = tuple(seed)
        self.extra_args = tuple(extra_args)
        self.log = self.workdir / "dockerd.log"
        self.bridge = f"d2br{uuid.uuid4().hex[:6]}"
        self._bridge_created = False
        self._links_before: set[str] | None = None  # host interfaces before it started
        self._proc: subprocess.Popen[bytes] | None = None
        self._context_created = False

    # -- lifecycle ------------------------------------------------------------------------

    def argv(self) -> list[str]:
        w = self.workdir
        return [
            DOCKERD,
            "--host", self.host,
            "--data-root", str(w / "data"),
            "--exec-root", str(w / "exec"),
            "--pidfile", str(w / "docker.pid"),
            "--config-file", str(w / "daemon.json"),
            "--bridge", self.bridge,
            "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            *self.extra_args,
        ]  # fmt: skip

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0) -> None:
        if shutil.which(DOCKERD) is None:
            raise RuntimeError("dockerd is not installed (sudo bash .ci/install-engine.sh)")
        (self.workdir / "daemon.json").write_text("{}\n", encoding="utf-8")
        self._links_before = _host_links()
        self._create_bridge()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killable as a whole
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"second dockerd exited with {self._proc.returncode} at start:\n"
                    + self.log_tail()
                )
            if self.answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"second dockerd did not answer on {self.host} in {timeout}s")

    def answers(self) -> bool:
        """``GET /_ping`` over the socket (not the SDK: it leaks a socket per refused connect)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            try:
                sock.connect(self.host[len("unix://") :])
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = sock.recv(64)
            except OSError:
                return False
        return reply.startswith(b"HTTP/1.") and b" 200 " in reply

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dockerd (SIGTERM, then SIGKILL to its group) and its managed containerd.
        Safe to call twice, and when the process already died."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        if proc is not None:
            _killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (build steps, runc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        containerd = self._containerd_pid()
        if containerd is not None:
            _killpg(containerd, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(containerd, signal.SIGKILL)

    def _containerd_pid(self) -> int | None:
        """The managed containerd, if its pidfile names a live containerd process."""
        try:
            pid = int((self.workdir / "exec/containerd/containerd.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.workdir).encode() in cmdline else None

    def close(self) -> None:
        """Stop everything and remove every trace, whatever state it is in."""
        own: set[str] | None = None
        try:
            own = self._own_network_bridges()
        finally:
            try:
                self.stop()
            finally:
                try:
                    self._unmount_leftovers()
                    shutil.rmtree(self.workdir, ignore_errors=True)
                finally:
                    self._delete_bridge()
                    self._delete_network_bridges(own)
                    self.remove_context()

    def _own_network_bridges(self) -> set[str] | None:
        """The host interfaces of this engine's bridge networks (``br-<id>``, or the name a
        network set), asked while it still runs; None when it cannot say (dead, no answer)."""
        if not self.running:
            return None
        cli = ["docker", "--host", self.host, "network"]
        listed = subprocess.run(
            [*cli, "ls", "-q", "--no-trunc", "--filter", "driver=bridge"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if listed.returncode != 0:
            return None
        ids = listed.stdout.split()
        if not ids:
            return set()
        shown = subprocess.run(
            [*cli, "inspect", "--format",
             '{{.Id}} {{index .Options "com.docker.network.bridge.name"}}', *ids],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if shown.returncode != 0:
            return None
        names = set()
        for line in shown.stdout.splitlines():
            net_id, _, name = line.strip().partition(" ")
            name = name.strip()
            # a missing option prints as Go's "<no value>": the default name then
            names.add(name if name and name != "<no value>" else f"br-{net_id[:12]}")
        return names - {self.bridge}

    def _delete_network_bridges(self, own: set[str] | None) -> None:
        """Delete the host interfaces of the networks it created (compose's ``br-<id>``): a
        stopped dockerd keeps its networks, and with its data-root gone nothing would ever
        remove them; left behind, they use up the main engine's address pools ("could not
        find an available, non-overlapping IPv4 address pool"). ``own``: what the engine
        said it has. When it could not say (it died): the ``br-*`` interfaces that appeared
        while it ran and that the main engine says are none of its networks; nothing when the
        main engine does not answer."""
        if own is None:
            own = self._new_bridges_not_of_the_main_engine()
        for name in sorted(own):
            if Path(f"/sys/class/net/{name}").exists():
                subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)

    def _new_bridges_not_of_the_main_engine(self) -> set[str]:
        if self._links_before is None:
            return set()
        new = {n for n in _host_links() - self._links_before if n.startswith("br-")}
        if not new:
            return set()
        main = subprocess.run(
            ["docker", "--host", "unix:///var/run/docker.sock", "network", "ls", "-q",
             "--no-trunc"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if main.returncode != 0:
            return set()
        ids = main.stdout.split()
        return {n for n in new if not any(i.startswith(n[len("br-") :]) for i in ids)}

    def _create_bridge(self) -> None:
        used = subprocess.run(
            ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
        ).stdout
        free = [n for n in range(1, 255) if f" 10.233.{n}." not in used]
        if not free:
            raise RuntimeError("no free 10.233.N.0/24 subnet for the second engine's bridge")
        subnet = random.choice(free)
        self._bridge_created = True  # from here on, close() deletes it
        for argv in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", f"10.233.{subnet}.1/24", "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            r = subprocess.run(argv, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")

    def _delete_bridge(self) -> None:
        if self._bridge_created:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
            self._bridge_created = False

    def bridge_exists(self) -> bool:
        return Path(f"/sys/class/net/{self.bridge}").exists()

    def _unmount_leftovers(self) -> None:
        """dockerd bind-mounts its data-root on itself; a killed dockerd leaves that behind."""
        prefix = str(self.workdir) + "/"
        try:
            lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        points = [ln.split()[4] for ln in lines if len(ln.split()) > 4]
        for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    # -- what tests use -------------------------------------------------------------------

    def client(self) -> Any:
        """A docker SDK client for this engine (close it)."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def seed(self) -> None:
        """Copy images from the default engine (no network here: nothing can be pulled)."""
        import docker

        if not self.seed_images:
            return
        main = docker.from_env()
        mine = self.client()
        try:
            for ref in self.seed_images:
                # named=ref: with named=True the tarball carries only the first tag
                data = b"".join(main.images.get(ref).save(named=ref))
                mine.images.load(data)
                mine.images.get(ref)  # fail here, not in a build, when the seed is missing
        finally:
            main.close()
            mine.close()

    def create_context(self) -> None:
        subprocess.run(
            ["docker", "context", "create", self.context, "--docker", f"host={self.host}",
             "--description", "second engine of a test (removed afterwards)"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        self._context_created = True

    def remove_context(self) -> None:
        if self._context_created:
            subprocess.run(
                ["docker", "context", "rm", "--force", self.context],
                capture_output=True,
                check=False,
                timeout=30,
            )
            self._context_created = False

    def context_exists(self) -> bool:
        r = subprocess.run(
            ["docker", "context", "ls", "--format", "{{json .}}"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        names = {json.loads(ln)["Name"] for ln in r.stdout.splitlines() if ln.strip()}
        return self.context in names

    def __enter__(self) -> SecondEngine:
        try:
            self.start()
            self.seed()
            self.create_context()
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


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def second_engine_problem() -> str | None:
    """None when a second dockerd can be started here, else why not."""
    if shutil.which(DOCKERD) is None:
        return "dockerd is not installed"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "starting a second dockerd needs root"
    return None


def require_second_engine() -> None:
    """Skip (on a laptop) or fail (under CI=true) when a second engine cannot start here."""
    problem = second_engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but a second engine cannot start: {problem}")
        pytest.skip(f"needs a second engine: {problem}")


@pytest.fixture(scope="module")
def second_engine() -> Iterator[SecondEngine]:
    """A running second engine seeded with busybox and a Docker context for it; removed after
    the module's tests."""
    require_second_engine()
    had_docker0 = main_bridge_present()
    with SecondEngine() as engine:
        yield engine
    if had_docker0 and not main_bridge_present():
        pytest.fail("the second engine removed the main engine's docker0 bridge")


def main_bridge_present() -> bool:
    """The main engine's default bridge interface (a second dockerd must never delete it)."""
    return Path("/sys/class/net/docker0").exists()
