"""Fault injection on the real engine, for the engine tests of the image core
(``test_images_tags_engine.py``).

* :class:`HookedClient`: the real docker SDK client; a hook, when set, runs around the real
  call (``api.tag``): it may raise before or after the real call, or act on the engine in
  between (another run's retag). Nothing ever answers in the engine's place. ``api.images``
  calls are counted.
* :class:`OwnImages`: small images of a test's own (one layer each, so every one has its own
  ID) in a namespace ``revfk<hex>``; afterwards every reference in that namespace goes, also
  ``host:port/<namespace>/...`` temporary tags and digest references, and so do the images.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import docker
import pytest

# (image, "repo:tag", the real call) -> what the call returns
TagHook = Callable[[str, str, Callable[[], bool]], bool]


class HookedApi(docker.APIClient):
    """The docker SDK's API client on the real engine, with a hook around ``tag``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.list_calls = 0
        self.on_tag: TagHook | None = None

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
def hooked() -> Iterator[HookedClient]:
    """A :class:`HookedClient` of the test's own (no hook set)."""
    client = HookedClient.connect()
    yield client
    client.close()


def short(image_id: str) -> str:
    """How the tasks' lines name an image: 12 hex digits."""
    return image_id.removeprefix("sha256:")[:12]


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
