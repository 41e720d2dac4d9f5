"""``stack.pull``: pull only what is missing locally, and say which images are local builds
that no registry has (the Makefile's ``_pull-missing-images`` suggests ``make
build-all-docker`` when a pull fails) and how to build them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tasks.lib.config import Settings
from tasks.lib.images.refs import Ref
from tasks.lib.progress import Status
from tasks.lib.stack.images import Found, app_services
from tasks.lib.stack.spec import ProjectSpec

Action = Literal["present", "pull", "compose-build"]


@dataclass(frozen=True)
class PullItem:
    service: str
    image: str
    action: Action
    app: str = ""  # the Meeshy service when it is an app image


@dataclass(frozen=True)
class PullResult:
    service: str
    image: str
    status: Status
    detail: str = ""
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "image": self.image,
            "status": self.status.value,
            "detail": self.detail,
            "hint": self.hint or None,
        }


def plan_pull(
    spec: ProjectSpec,
    found: Found | None,
    settings: Settings,
    services: Sequence[str] = (),
) -> list[PullItem]:
    """What to do per service; ``found`` None (no engine, dry run) pulls everything."""
    apps = {svc: app for svc, app, _ref in app_services(spec, settings)}
    items: list[PullItem] = []
    for s in spec.services:
        if services and s.name not in services:
            continue
        if found is not None and found.get(s.image) is not None:
            action: Action = "present"
        elif s.has_build:
            action = "compose-build"
        else:
            action = "pull"
        items.append(PullItem(s.name, s.image, action, apps.get(s.name, "")))
    return items


def build_hint(item: PullItem, settings: Settings) -> str:
    """How to make an app image locally: ``inv build.<svc>`` (with ``--registry`` when the
    reference is under another namespace), then ``staging.tag`` for a ``:staging`` image."""
    if not item.app:
        return ""
    ref = Ref.parse(item.image)
    repo, tag = ref.repository, ref.tag or "latest"
    namespace = repo.rsplit("/", 1)[0] if "/" in repo else ""
    reg = f" --registry {namespace}" if namespace != settings.registry else ""
    build = f"build.{item.app}{reg}"
    if tag == "staging":
        return f"a local build: `inv {build} staging.tag{reg}`"
    return f"a local build: `inv {build}`"
