"""The images a stack runs: which are Meeshy app images (gateway, translator, web: matched by
the repository's last component, ``.../meeshy-<svc>:<tag>``, as configured in
``meeshy.services.*.image``), whether each is built from the current shared schema (label
``me.meeshy.schema.sha256``: the ``staging.tag`` rule), and whether a container still runs the
build its image reference names now."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tasks.lib.config import SCHEMA_LABEL, Settings
from tasks.lib.errors import MissingImageError, StaleImageError
from tasks.lib.stack.spec import ProjectSpec, image_basename

if TYPE_CHECKING:
    import docker

SchemaState = Literal["current", "stale", "unlabelled", "missing", "unknown"]


@dataclass(frozen=True)
class LocalImage:
    ref: str
    id: str | None  # None: not in the local image store
    labels: Mapping[str, str]


def local_images(client: docker.DockerClient, refs: Iterable[str]) -> dict[str, LocalImage]:
    """One inspect per distinct reference (absent ones have ``id`` None)."""
    from docker.errors import ImageNotFound

    out: dict[str, LocalImage] = {}
    for ref in dict.fromkeys(r for r in refs if r):
        try:
            img = client.images.get(ref)
        except ImageNotFound:
            out[ref] = LocalImage(ref, None, {})
            continue
        out[ref] = LocalImage(ref, str(img.id), dict(img.labels or {}))
    return out


def schema_state(image: LocalImage | None, current: str | None) -> SchemaState:
    if image is None or image.id is None:
        return "missing"
    label = image.labels.get(SCHEMA_LABEL, "")
    if not label:
        return "unlabelled"
    if current is None:
        return "unknown"
    return "current" if label == current else "stale"


@dataclass(frozen=True)
class AppImage:
    service: str  # compose service (``frontend``)
    app: str  # Meeshy service (``web``)
    ref: str
    schema: SchemaState

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "app": self.app, "image": self.ref, "schema": self.schema}


def app_services(spec: ProjectSpec, settings: Settings) -> list[tuple[str, str, str]]:
    """(compose service, Meeshy service, image ref) for every service running an app image."""
    by_image = {s.image: s.name for s in settings.services}
    return [
        (s.name, by_image[image_basename(s.image)], s.image)
        for s in spec.services
        if s.image and image_basename(s.image) in by_image
    ]


def app_images(
    spec: ProjectSpec, settings: Settings, found: Mapping[str, LocalImage]
) -> list[AppImage]:
    current = settings.schema_sha256
    return [
        AppImage(svc, app, ref, schema_state(found.get(ref), current))
        for svc, app, ref in app_services(spec, settings)
    ]


def refuse_stale(images: Iterable[AppImage], settings: Settings, *, stack: str) -> None:
    """Raise when an app image is not proven to be the current schema's: StaleImageError
    (exit 4), or MissingImageError when the only problem is images not present here.
    (``--allow-stale`` callers show :func:`stale_lines` as warnings instead.)"""
    images = list(images)
    lines = stale_lines(images, settings)
    if not lines:
        return
    bad = [img for img in images if img.schema != "current"]
    if all(img.schema == "missing" for img in bad):
        raise MissingImageError(
            f"refused, nothing started: stack {stack} runs images not present here: "
            + "; ".join(lines),
            hint="build and tag them (`inv build.all staging.tag`), or pull them "
            f"(`inv stack.pull --env {stack}`); --allow-stale runs them unchecked",
        )
    raise StaleImageError(
        f"refused, nothing started: stack {stack} runs images not built from the current "
        f"schema ({settings.schema}): " + "; ".join(lines),
        hint="rebuild and retag (`inv build.all staging.tag`), or pass --allow-stale",
    )


def stale_lines(images: Iterable[AppImage], settings: Settings) -> list[str]:
    words = {
        "stale": "built from another schema",
        "unlabelled": "carries no schema label",
        "missing": "not present locally",
        "unknown": f"schema {settings.schema} not found, cannot check",
    }
    return [
        f"{img.service}: {img.ref} {words[img.schema]}" for img in images if img.schema != "current"
    ]


def current_build(container_image_id: str, local: LocalImage | None) -> bool | None:
    """Does the container run the image its reference names now? None when unknown."""
    if local is None or not container_image_id:
        return None
    if local.id is None:
        return False
    return local.id == container_image_id
