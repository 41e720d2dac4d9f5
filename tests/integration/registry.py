"""A real Docker registry on loopback for integration tests.

:class:`LocalRegistry` runs Debian's ``docker-registry serve CONFIG`` on a free 127.0.0.1 port
with its storage in a temp dir, waits until ``/v2/`` answers, and stops it on exit (also after a
partial start, and when the process already died). It can be stopped and started again on the
same port and storage, to test "registry down, then back". The engine treats 127.0.0.0/8 as an
insecure registry by default, so pushes go over plain HTTP.

Use the ``registry`` fixture (import it into the test module explicitly)::

    from tests.integration.registry import registry  # noqa: F401
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tasks.lib.build.plan import INPUTS_LABEL

REGISTRY_BIN = "docker-registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    """``docker-registry`` on ``127.0.0.1:<port>``; a context manager with stop/start."""

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="t4-registry-"))
        self.port = port or free_port()
        self.storage = self.workdir / "storage"
        self.config = self.workdir / "config.yml"
        self.log = self.workdir / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: what ``--registry-url`` takes."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _write_config(self) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n",
            encoding="utf-8",
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        binary = shutil.which(REGISTRY_BIN)
        if binary is None:
            raise RuntimeError(f"{REGISTRY_BIN} is not installed (apt-get install docker-registry)")
        self._write_config()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [binary, "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log.read_text(encoding="utf-8", errors="replace")[-800:]
                self._proc = None
                raise RuntimeError(f"docker-registry exited at start:\n{tail}")
            if self.answers():
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.url}/v2/ in {timeout}s")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def get_json(self, path: str) -> Any:
        """GET ``/v2/<path>`` and decode; None on 404."""
        try:
            with urllib.request.urlopen(f"{self.url}/v2/{path}", timeout=5) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def tags(self, name: str) -> list[str]:
        """Tags of repository ``name`` (e.g. ``t4reg/meeshy-web``); [] when unknown."""
        data = self.get_json(f"{name}/tags/list")
        return sorted((data or {}).get("tags") or [])

    def __enter__(self) -> LocalRegistry:
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

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def registry() -> Iterator[LocalRegistry]:
    """A fresh, running registry on loopback; stopped and deleted after the test."""
    if shutil.which(REGISTRY_BIN) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but {REGISTRY_BIN} is not installed")
        pytest.skip(f"{REGISTRY_BIN} is not installed (apt-get install docker-registry)")
    with LocalRegistry() as reg:
        yield reg


# --------------------------------------------------------------------------- example images

# one namespace per test session: two sessions on one engine (developers, CI) never share it
SESSION_NAMESPACE = f"t4reg{uuid.uuid4().hex[:8]}"
EXAMPLE = Path(__file__).resolve().parents[2] / "example"
_BUILT: dict[str, Any] = {}


@contextlib.contextmanager
def own_namespace(prefix: str) -> Iterator[str]:
    """A registry namespace of the test's own; at the end every image under it goes, and so
    does every image its builds left untagged (a rebuild moves the tags to a new image and
    the old one stays, dangling): the engine as the test found it."""
    import docker

    ns = f"{prefix}{uuid.uuid4().hex[:8]}"
    client = docker.from_env()
    try:
        before = {i["Id"] for i in client.api.images(all=True)}
        yield ns
    finally:
        try:
            remove_namespace(ns)
            for img in client.api.images(filters={"dangling": True}):
                if img["Id"] not in before and INPUTS_LABEL in (img.get("Labels") or {}):
                    with contextlib.suppress(docker.errors.APIError):
                        client.api.remove_image(img["Id"], force=True)
        finally:
            client.close()


def remove_namespace(namespace: str) -> None:
    """Remove every local tag in ``namespace`` (also ``host:port/namespace/...`` retags)."""
    import docker

    client = docker.from_env()
    try:
        for image in client.images.list():
            for tag in image.tags:
                first, _, rest = tag.partition("/")
                repo = rest if rest and ":" in first else tag
                if repo.startswith(f"{namespace}/"):
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(tag, force=True)
    finally:
        client.close()


def build_image(context: Path, ref: str, dockerfile: str | None = None) -> None:
    """``docker buildx build --load`` of the folder ``context`` as ``ref``; ``dockerfile``:
    its Dockerfile's text, written first."""
    context.mkdir(parents=True, exist_ok=True)
    if dockerfile is not None:
        (context / "Dockerfile").write_text(dockerfile)
    subprocess.run(
        ["docker", "buildx", "build", "--load", "-q", "-t", ref, str(context)],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def own_base(sdk: Any, dockerfiles: Iterable[Path], prefix: str) -> Iterator[str]:
    """A base image of the test's own, ``<name>:latest`` a tag of busybox, that
    ``dockerfiles`` are FROM instead of busybox, so the test can retag it without touching
    the shared busybox; its ``:latest`` and ``:other`` go afterwards (untagging busybox, or
    removing the test's own image when it retagged the name)."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    sdk.api.tag("busybox:latest", name, "latest")
    for df in dockerfiles:
        df.write_text(df.read_text().replace("FROM busybox", f"FROM {name}"))
    try:
        yield name
    finally:
        for tag in ("latest", "other"):
            rm = ["docker", "image", "rm", f"{name}:{tag}"]
            subprocess.run(rm, check=False, capture_output=True)


def build_other_image(workdir: Path, ref: str) -> None:
    """Build ``ref``: busybox plus a file of its own, so another image ID (alpine is busybox
    on the test engine). ``workdir`` is a new folder for its context."""
    build_image(workdir, ref, f"FROM busybox\nRUN echo {uuid.uuid4().hex} > /m\n")


def build_unrelated_image(workdir: Path, ref: str) -> None:
    """Build ``ref``: busybox's files and one of its own in a single layer of its own, so
    an image that shares no layer with busybox (not built FROM it) yet runs as it does."""
    build_image(
        workdir,
        ref,
        f"FROM busybox AS files\nRUN echo {uuid.uuid4().hex} > /m\n"
        "FROM scratch\nCOPY --from=files / /\n",
    )


def build_example(root: Path, namespace: str, services: tuple[str, ...] = ()) -> None:
    """Build the example images under ``namespace`` through build_flow (gate + BuildKit)."""
    from tasks.build import BuildFlags, build_plan, run_plan
    from tasks.lib.build.plan import Target
    from tasks.lib.config import defaults, resolve
    from tasks.lib.output import Output

    settings = resolve(defaults(), env={}, project_dir=root, root=str(root), registry=namespace)
    names = services or settings.all
    plan = build_plan(settings, [Target(n) for n in names], BuildFlags())
    run_plan(Output(plain=True), plan, dry_run=False)


@pytest.fixture(scope="session")
def example_images() -> Iterator[str]:
    """The example monorepo's images built once per session as ``t4reg/meeshy-*``; the
    namespace's images are removed at the end. Yields the namespace."""
    if "error" in _BUILT:
        pytest.fail(f"building the example images failed earlier: {_BUILT['error']}")
    if not _BUILT:
        remove_namespace(SESSION_NAMESPACE)
        try:
            build_example(EXAMPLE, SESSION_NAMESPACE)
        except Exception as exc:
            _BUILT["error"] = str(exc)
            raise
        _BUILT["done"] = True
    yield SESSION_NAMESPACE
    remove_namespace(SESSION_NAMESPACE)
    _BUILT.clear()
