"""Fault injection on the real engine and the real loopback registry, for the engine tests of
the image core (``test_images_tags_engine.py``, ``test_images_push_engine.py``).

* :class:`HookedClient`: the real docker SDK client; a hook, when set, runs around the real
  call (``api.tag``, ``api.push``): it may raise before or after the real call, act on the
  engine in between (another run's retag), stop the registry, or read the real push stream.
  Nothing ever answers in the engine's place. ``api.images`` calls are counted.
* :class:`OwnImages`: small images of a test's own (one layer each, so every one has its own
  ID) in a namespace ``revfk<hex>``; afterwards every reference in that namespace goes, also
  ``host:port/<namespace>/...`` temporary tags and digest references, and so do the images.
* :class:`ManifestGate`: a TCP relay in front of the registry that can hold the manifest
  upload that ends a push, so the engine finishes that push when the test says so.
* :func:`killed_push`: a push run SIGKILLed for real (a forked child) at a hook's point.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import tarfile
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NoReturn

import docker
import pytest

from tasks.lib.progress import NullProgress, Progress

if TYPE_CHECKING:
    from tasks.lib.images.journal import Journal
    from tasks.lib.images.push import PushTarget
    from tests.integration.registry import LocalRegistry

Item = dict[str, Any]
# (image, "repo:tag", the real call) -> what the call returns
TagHook = Callable[[str, str, Callable[[], bool]], bool]
# ("repo:tag", the real call) -> the stream push_one reads
PushHook = Callable[[str, Callable[[], Iterator[Item]]], Iterator[Item]]


class HookedApi(docker.APIClient):
    """The docker SDK's API client on the real engine, with hooks around two calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.list_calls = 0
        self.pushed: list[str] = []  # every push asked for, in order
        self.on_tag: TagHook | None = None
        self.on_push: PushHook | None = None

    def images(
        self, name: str | None = None, quiet: bool = False, all: bool = False, filters: Any = None
    ) -> Any:
        self.list_calls += 1
        return super().images(name, quiet, all, filters)

    def tag(self, image: Any, repository: Any, tag: str | None = None, force: bool = False) -> bool:
        def real() -> bool:
            return super(HookedApi, self).tag(image, repository, tag, force=force)

        if self.on_tag is None:
            return real()
        return self.on_tag(str(image), f"{repository}:{tag}", real)

    def push(
        self,
        repository: str,
        tag: str | None = None,
        stream: bool = False,
        auth_config: Any = None,
        decode: bool = False,
    ) -> Any:
        ref = f"{repository}:{tag}"
        self.pushed.append(ref)

        def real() -> Iterator[Item]:
            return super(HookedApi, self).push(  # type: ignore[no-any-return]
                repository, tag, stream=stream, auth_config=auth_config, decode=decode
            )

        return real() if self.on_push is None else self.on_push(ref, real)


class HookedClient(docker.DockerClient):
    """``docker.from_env()``, with :class:`HookedApi` as its API client."""

    api: HookedApi

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.api = HookedApi(*args, **kwargs)

    @classmethod
    def connect(cls) -> HookedClient:
        client = cls.from_env()
        assert isinstance(client, HookedClient)
        return client


@pytest.fixture
def dead_port() -> Iterator[str]:
    """``127.0.0.1:PORT`` where nothing listens (bound, so no one else takes it): a client
    gets "connection refused" for real."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hooked() -> Iterator[HookedClient]:
    """A :class:`HookedClient` of the test's own (no hook set)."""
    client = HookedClient.connect()
    yield client
    client.close()


class OwnImages:
    """Images made for one test under the namespace ``revfk<hex>``."""

    def __init__(self, sdk: docker.DockerClient) -> None:
        self.sdk = sdk
        self.ns = f"revfk{uuid.uuid4().hex[:8]}"
        self.ids: list[str] = []

    def make(self, ref: str, *, size: int = 0, labels: Mapping[str, str] | None = None) -> str:
        """A new image tagged ``ref`` (one layer: a file of random bytes, ``size`` more than
        a few), with ``labels``; its ID."""
        data = uuid.uuid4().hex.encode() + os.urandom(size)
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as tar:
            info = tarfile.TarInfo("revfk")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        repo, _, tag = ref.rpartition(":")
        changes = [f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in (labels or {}).items()]
        self.sdk.api.import_image_from_data(
            layer.getvalue(), repository=repo, tag=tag, changes=changes or None
        )
        image_id = str(self.sdk.images.get(ref).id)
        self.ids.append(image_id)
        return image_id

    def refs(self) -> dict[str, str]:
        """Every tag and digest reference in the namespace (``host:port/ns/...`` too) -> the
        image it names: what the engine holds of this test, read in one call."""
        return {
            ref: str(entry["Id"])
            for entry in self.sdk.api.images()
            for ref in (entry.get("RepoTags") or []) + (entry.get("RepoDigests") or [])
            if f"{self.ns}/" in ref
        }

    def remove(self) -> None:
        for ref, image_id in self.refs().items():
            if image_id not in self.ids:  # not ours: only the reference goes
                with contextlib.suppress(docker.errors.APIError):
                    self.sdk.api.remove_image(ref, noprune=True)
        for image_id in self.ids:
            with contextlib.suppress(docker.errors.NotFound):
                self.sdk.api.remove_image(image_id, force=True)


@pytest.fixture
def own(sdk: docker.DockerClient) -> Iterator[OwnImages]:
    """The test's own images (``sdk``: the session's client, tests/conftest.py)."""
    images = OwnImages(sdk)
    yield images
    images.remove()


def pushed(reg: LocalRegistry, name: str, tag: str) -> tuple[str, str]:
    """What the registry holds as ``name:tag``: (the manifest's digest, the image ID)."""
    req = urllib.request.Request(
        f"{reg.url}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        digest = str(resp.headers["Docker-Content-Digest"])
        return digest, str(json.load(resp)["config"]["digest"])


class ManifestGate:
    """A TCP relay on loopback in front of ``port``. Until :meth:`open`, a manifest upload
    (``PUT /v2/<name>/manifests/<tag>``) is held before it reaches the registry, with the
    layers already there: the engine's push waits for the registry's answer as it does on a
    slow link, and ends when the gate opens. ``held`` is set once one waits."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.opened = threading.Event()
        self.held = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._start(self._accept)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def open(self) -> None:
        self.opened.set()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            except OSError:
                return
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [conn, upstream]
            self._start(self._relay, conn, upstream, True)
            self._start(self._relay, upstream, conn, False)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _relay(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while chunk := src.recv(65536):
                first = chunk.partition(b"\r\n")[0]
                if requests and first.startswith(b"PUT ") and b"/manifests/" in first:
                    self.held.set()
                    self.opened.wait()
                dst.sendall(chunk)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Stop relaying; every thread has ended when it returns (a fork after it is clean)."""
        self.opened.set()
        with self._lock:
            sockets = [self._server, *self._sockets]
        for sock in sockets:  # wakes the threads up: accept and recv return
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)
        with self._lock:
            for sock in [self._server, *self._sockets]:
                sock.close()


def quiet(keys: Sequence[str]) -> AbstractContextManager[Progress]:
    """The progress view of a push that shows nothing."""
    return NullProgress()


def die() -> NoReturn:
    """SIGKILL this process: no handler, no finally, no cleanup runs."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("SIGKILL did not kill")


def killed_push(
    targets: Sequence[PushTarget], journal: Journal, arm: Callable[[HookedApi], None]
) -> None:
    """Run ``push_images`` in a forked child on a client of its own, ``arm`` setting the hook
    that calls :func:`die`; returns once the child is dead by SIGKILL (fails otherwise)."""
    from tasks.lib.images import push

    pid = os.fork()
    if pid == 0:  # the child: never back into pytest, whatever happens
        try:
            client = HookedClient.connect()
            arm(client.api)
            push.push_images(client, targets, engine="e", journal=journal, progress=quiet)
        finally:
            os._exit(3)  # the hook was not reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), (
        f"the run was not killed: exit {os.waitstatus_to_exitcode(status)}"
    )
    assert os.WTERMSIG(status) == signal.SIGKILL
