"""A stand-in for the docker SDK client in logic tests (rollback, temporary tags, stream
parsing): a reference store that answers the calls the core makes (``api.images`` with a
``reference`` filter, ``api.tag``, ``api.remove_image``, ``images.push``). The real engine and
registry are exercised in tests/integration and tests/hostile."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from tasks.lib.images.refs import Ref, matches

if TYPE_CHECKING:
    from docker import DockerClient


class FakeApi:
    def __init__(self) -> None:
        self.refs: dict[str, str] = {}  # familiar "repo:tag" or "repo@digest" -> image id
        self.labels: dict[str, dict[str, str]] = {}
        self.fail_on: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.on_tag: Callable[[str], None] | None = None  # after a tag is written
        self.list_calls = 0

    def images(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        self.list_calls += 1
        patterns = filters["reference"]
        by_id: dict[str, dict[str, Any]] = {}
        for ref, image_id in self.refs.items():
            name = ref.partition("@")[0] if "@" in ref else ref
            if not (matches(name, patterns) if "@" not in ref else _name_matches(name, patterns)):
                continue
            entry = by_id.setdefault(
                image_id,
                {
                    "Id": image_id,
                    "RepoTags": [],
                    "RepoDigests": [],
                    "Created": 1_795_504_217,
                    "Size": 1000,
                    "Labels": self.labels.get(image_id, {}),
                },
            )
            entry["RepoDigests" if "@" in ref else "RepoTags"].append(ref)
        return list(by_id.values())

    def tag(self, image: str, repo: str, tag: str, force: bool = False) -> bool:
        from docker.errors import APIError

        ref = Ref.parse(f"{repo}:{tag}").familiar
        self.calls.append(("tag", ref))
        if ref in self.fail_on:
            raise APIError("boom")
        self.refs[ref] = image
        if self.on_tag is not None:
            self.on_tag(ref)
        return True

    def remove_image(self, ref: str, noprune: bool = False) -> None:
        from docker.errors import NotFound

        name = Ref.parse(ref).familiar
        self.calls.append(("remove", name))
        if name not in self.refs:
            raise NotFound(f"No such image: {ref}")
        del self.refs[name]


def _name_matches(name: str, patterns: list[str]) -> bool:
    return matches(f"{name}:x", [p for p in patterns if ":" not in p.rpartition("/")[2]])


class FakeImages:
    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.streams: dict[str, list[dict[str, Any]]] = {}  # ref -> stream (default: OK)
        self.default: list[dict[str, Any]] = []
        self.pushed: list[str] = []
        self.on_push: Callable[[str], None] | None = None

    def push(self, repo: str, tag: str, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        ref = f"{repo}:{tag}"
        self.pushed.append(ref)
        if self.on_push is not None:
            self.on_push(ref)
        items = self.streams.get(ref, self.default)
        yield from items
        digest = next((i["aux"]["Digest"] for i in items if isinstance(i.get("aux"), dict)), None)
        if digest:  # the engine records the pushed digest on the image
            self.api.refs[f"{repo}@{digest}"] = self.api.refs[Ref.parse(ref).familiar]


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeApi()
        self.images = FakeImages(self.api)

    def sdk(self) -> DockerClient:
        return cast("DockerClient", self)

    def add(self, ref: str, image_id: str | None = None, **labels: str) -> str:
        image_id = image_id or "sha256:" + hashlib.sha256(ref.encode()).hexdigest()
        self.api.refs[Ref.parse(ref).familiar] = image_id
        if labels:
            self.api.labels[image_id] = dict(labels)
        return image_id


OK_STREAM: list[dict[str, Any]] = [
    {"status": "The push refers to repository [127.0.0.1:5000/t4/meeshy-web]"},
    {"status": "Preparing", "progressDetail": {}, "id": "7cb1a1351ee7"},
    {"status": "Preparing", "progressDetail": {}, "id": "240facc7c15d"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 33792, "total": 1982256},
        "progress": "[>   ]  33.79kB/1.982MB",
        "id": "240facc7c15d",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 140800},
        "progress": " 140.8kB",
        "id": "7cb1a1351ee7",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "7cb1a1351ee7"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 1984512, "total": 1982256},
        "id": "240facc7c15d",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "240facc7c15d"},
    {"status": "staging: digest: sha256:7eea5e23 size: 736"},
    {"progressDetail": {}, "aux": {"Tag": "staging", "Digest": "sha256:7eea5e23", "Size": 736}},
]
REFUSED = 'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
DOWN_STREAM: list[dict[str, Any]] = [
    {"status": "The push refers to repository [127.0.0.1:5000/t4/meeshy-web]"},
    {"errorDetail": {"message": REFUSED}, "error": REFUSED},
]
