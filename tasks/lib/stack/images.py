"""The images a stack runs: which are Meeshy app images (gateway, translator, web: matched by
the repository's last component, ``.../meeshy-<svc>:<tag>``, as configured in
``meeshy.services.*.image``), whether each is fresh by the rules ``staging.tag`` refuses by
(:mod:`tasks.lib.images.freshness`: today the schema label ``me.meeshy.schema.sha256``), and
whether a container still runs the build its image reference names now.

Local images come from :func:`tasks.lib.images.store.find_images` (one filtered list call for
every reference): a mapping ``ref -> LocalImage | None`` (None: not in the local store)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tasks.lib.config import Settings
from tasks.lib.errors import ConfigError, MissingImageError, StaleImageError
from tasks.lib.images.freshness import default_rules, judge, schema_state
from tasks.lib.images.refs import Ref
from tasks.lib.images.store import LocalImage
from tasks.lib.stack.spec import ProjectSpec

Found = Mapping[str, LocalImage | None]
MISSING = "missing"  # the schema state of an image not in the local store


def schema_word(image: LocalImage | None, current: str | None) -> str:
    """What ``stack.status`` shows of an app image's schema: the images package's state
    (match, stale, unlabelled, unknown), or ``missing``."""
    return MISSING if image is None else schema_state(image, current).value


@dataclass(frozen=True)
class AppImage:
    service: str  # compose service (``frontend``)
    app: str  # Meeshy service (``web``)
    ref: str
    schema: str  # see :func:`schema_word`
    fresh: bool
    why: str = ""  # the rules' words when not fresh

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "app": self.app,
            "image": self.ref,
            "schema": self.schema,
            "fresh": self.fresh,
        }


def app_services(spec: ProjectSpec, settings: Settings) -> list[tuple[str, str, str]]:
    """(compose service, Meeshy service, image ref) for every service running an app image."""
    by_image = {s.image: s.name for s in settings.services}
    return [
        (s.name, by_image[Ref.parse(s.image).basename], s.image)
        for s in spec.services
        if s.image and Ref.parse(s.image).basename in by_image
    ]


def app_images(spec: ProjectSpec, settings: Settings, found: Found) -> list[AppImage]:
    """Each app image judged by :func:`tasks.lib.images.freshness.default_rules`."""
    rules = default_rules(settings)
    current = settings.schema_sha256
    out: list[AppImage] = []
    for svc, app, ref in app_services(spec, settings):
        image = found.get(ref)
        if image is None:
            out.append(AppImage(svc, app, ref, MISSING, False, "not present locally"))
            continue
        failing = [v for v in judge(app, image, rules) if not v.fresh]
        why = "; ".join(v.detail for v in failing)
        out.append(AppImage(svc, app, ref, schema_word(image, current), not failing, why))
    return out


def refuse_stale(images: Iterable[AppImage], settings: Settings, *, stack: str) -> None:
    """Raise when an app image is not fresh: MissingImageError when the only problem is
    images not present here, ConfigError when a rule cannot decide (the schema file is
    missing: as ``staging.tag``), else StaleImageError (exit 4). (``--allow-stale`` callers
    show :func:`stale_lines` as warnings instead.)"""
    images = list(images)
    lines = stale_lines(images)
    if not lines:
        return
    if all(img.schema == MISSING for img in images if not img.fresh):
        raise MissingImageError(
            f"refused, nothing started: stack {stack} runs images not present here: "
            + "; ".join(lines),
            hint="build and tag them (`inv build.all staging.tag`), or pull them "
            f"(`inv stack.pull --env {stack}`); --allow-stale runs them unchecked",
        )
    problems = [r.problem for r in default_rules(settings) if r.problem]
    if problems:
        raise ConfigError(
            f"refused, nothing started: {problems[0]}",
            hint="pass --root (the monorepo), or --allow-stale to run them unchecked",
        )
    raise StaleImageError(
        f"refused, nothing started: stack {stack} runs images not built from the current "
        f"schema ({settings.schema}): " + "; ".join(lines),
        hint="rebuild and retag (`inv build.all staging.tag`), or pass --allow-stale",
    )


def stale_lines(images: Iterable[AppImage]) -> list[str]:
    return [f"{img.service}: {img.ref} {img.why}" for img in images if not img.fresh]


def current_build(container_image_id: str, found: Found, ref: str) -> bool | None:
    """Does the container run the image ``ref`` names now? None when unknown (no image id,
    or ``ref`` not looked up)."""
    if not container_image_id or ref not in found:
        return None
    local = found[ref]
    return local is not None and local.id == container_image_id
