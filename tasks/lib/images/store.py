"""Engine queries about local images: ONE ``GET /images/json`` per question, filtered by
reference on the engine's side, so the cost does not grow with the images a task does not
need. (``client.images.list()`` would inspect every image, one request each; the summary the
list call returns already carries the labels.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.lib.images.refs import Ref

if TYPE_CHECKING:
    import docker

VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"


def short_id(image_id: str) -> str:
    """An image ID as Docker shows it: 12 hex digits, no ``sha256:``."""
    return image_id.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class LocalImage:
    """One local image as the engine's list call describes it. ``tags`` and ``digests``
    are the references the query asked about (the engine filters them too)."""

    id: str
    tags: tuple[str, ...] = ()
    created: int = 0  # seconds since the epoch
    size: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    digests: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def created_iso(self) -> str:
        """``2026-11-02T10:11:12Z`` (UTC), or ``""`` when unknown."""
        if self.created <= 0:
            return ""
        return dt.datetime.fromtimestamp(self.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def label(self, name: str) -> str:
        return str(self.labels.get(name) or "")

    @classmethod
    def from_summary(cls, entry: Mapping[str, Any]) -> LocalImage:
        """From one item of ``GET /images/json`` (``client.api.images()``)."""
        return cls(
            id=str(entry.get("Id") or ""),
            tags=tuple(t for t in entry.get("RepoTags") or () if t and t != "<none>:<none>"),
            created=int(entry.get("Created") or 0),
            size=int(entry.get("Size") or 0),
            labels={str(k): str(v) for k, v in (entry.get("Labels") or {}).items()},
            digests=tuple(d for d in entry.get("RepoDigests") or () if d and "<none>" not in d),
        )


def list_images(client: docker.DockerClient, patterns: Sequence[str]) -> list[LocalImage]:
    """The images with a reference matching any pattern (``isopen/*meeshy*``,
    ``isopen/meeshy-web:latest``, a repository name for its digests): one call."""
    if not patterns:
        return []
    entries = client.api.images(filters={"reference": list(dict.fromkeys(patterns))})
    return [LocalImage.from_summary(e) for e in entries or ()]


def find_images(client: docker.DockerClient, refs: Iterable[str]) -> dict[str, LocalImage | None]:
    """Each ``repo:tag`` (or ``repo@digest``) -> the local image it names, or None: one call
    for all of them (empty references are left out)."""
    wanted = {ref: Ref.parse(ref).familiar for ref in dict.fromkeys(refs) if ref}
    by_ref = index_by_ref(list_images(client, sorted(set(wanted.values()))))
    return {ref: by_ref.get(name) for ref, name in wanted.items()}


def index_by_ref(images: Iterable[LocalImage]) -> dict[str, LocalImage]:
    """``repo:tag`` and ``repo@digest`` (familiar) -> image."""
    return {ref: img for img in images for ref in (*img.tags, *img.digests)}


def engine_message(exc: BaseException) -> str:
    """The first line of what the engine (or the library) said, for a one-line error."""
    from tasks.lib.engine import translate

    mapped = translate(exc)
    text = mapped.message if mapped is not None else str(exc)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
