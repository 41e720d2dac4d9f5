"""``stack.pull``: pull only what is missing locally (the Makefile's
``_pull-missing-images``), or with ``--all`` every image a registry can give (``docker-pull``:
``compose pull``), and say which images are local builds that no registry has (the Makefile
suggests ``make build-all-docker`` when a pull fails) and how to build them.

:func:`plan_pull` says what to do per service, :func:`pull_result` and
:func:`compose_build_result` judge what came of it from the local store before and after
(pure: the task runs compose and looks the images up)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tasks.lib.config import Settings
from tasks.lib.errors import TaskError
from tasks.lib.images.refs import Ref
from tasks.lib.images.store import LocalImage
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
    present: bool | None = None  # in the local store before; None: not looked up (no engine)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "image": self.image,
            "action": self.action,
            "app": self.app or None,
            "present": self.present,
        }


@dataclass(frozen=True)
class PullResult:
    service: str
    image: str
    status: Status
    detail: str = ""
    hint: str = ""
    present: bool = True  # in the local store after the pull

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "image": self.image,
            "status": self.status.value,
            "detail": self.detail,
            "hint": self.hint or None,
            "present": self.present,
        }


def plan_pull(
    spec: ProjectSpec,
    found: Found | None,
    settings: Settings,
    services: Sequence[str] = (),
    *,
    every: bool = False,
) -> list[PullItem]:
    """What to do per service: pull what is missing (``every``: every image not built by
    compose, present or not, as ``compose pull``); a service with a ``build`` section is
    built by compose, never pulled. ``found`` None (no engine, dry run) pulls everything."""
    apps = {svc: app for svc, app, _ref in app_services(spec, settings)}
    items: list[PullItem] = []
    for s in spec.services:
        if services and s.name not in services:
            continue
        present = None if found is None else found.get(s.image) is not None
        if present and not every:
            action: Action = "present"
        elif s.has_build:
            action = "compose-build"
        else:
            action = "pull"
        items.append(PullItem(s.name, s.image, action, apps.get(s.name, ""), present))
    return items


def compose_build_command(service: str, compose_file: str) -> str:
    return f"docker compose -f {compose_file} build {service}"


def compose_build_result(item: PullItem, compose_file: str) -> PullResult:
    """A service compose builds: present, or missing with the line that builds it."""
    hint = f"built by compose: `{compose_build_command(item.service, compose_file)}`"
    if item.present:
        return PullResult(item.service, item.image, Status.UP_TO_DATE, "present", hint)
    return PullResult(item.service, item.image, Status.NOT_BUILT, "missing", hint, False)


def pull_result(
    item: PullItem,
    settings: Settings,
    before: LocalImage | None,
    after: LocalImage | None,
    error: str = "",
) -> PullResult:
    """What came of ``compose pull SERVICE``: the local image before and after it, and the
    error compose ended with ("" when it succeeded).

    Pulled: ``done`` (new, or replacing another image: its id is named, and for an app image
    how to build it from this checkout again), ``up to date`` (the registry's is the one
    here). Not pulled: an app image is a local build no registry has (``not built`` with the
    line that builds it when missing; ``skipped`` when the local build is kept), any other
    image ``failed``."""
    svc, ref = item.service, item.image
    if not error and after is not None:
        if before is None:
            return PullResult(svc, ref, Status.DONE, "pulled")
        if before.id == after.id:
            return PullResult(svc, ref, Status.UP_TO_DATE, "pulled: no newer image")
        hint = f"rebuild it from this checkout: `inv {build_command(item, settings)}`"
        return PullResult(
            svc, ref, Status.DONE, f"pulled (replaced {before.short_id})", hint if item.app else ""
        )
    why = error or "not found"
    if item.app and after is not None:
        return PullResult(
            svc, ref, Status.SKIPPED, f"no registry has it ({why}): local build kept",
            build_hint(item, settings),
        )  # fmt: skip
    if item.app:
        return PullResult(
            svc, ref, Status.NOT_BUILT, f"cannot be pulled ({why})", build_hint(item, settings),
            present=False,
        )  # fmt: skip
    return PullResult(svc, ref, Status.FAILED, why, present=after is not None)


def failure(results: Sequence[PullResult], stack: str) -> TaskError | None:
    """The one line a pull ends with when an image is still missing, or a pull failed (its
    older local image kept); None when all is well."""
    bad = [r for r in results if r.status.bad]
    if not bad:
        return None
    missing = [r for r in bad if not r.present]
    kept = [r for r in bad if r.present]
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} image(s) still missing: "
            + ", ".join(f"{r.service} ({r.image})" for r in missing)
        )
    if kept:
        parts.append(
            f"{len(kept)} pull(s) failed, the local image kept: "
            + ", ".join(f"{r.service} ({r.image}: {r.detail})" for r in kept)
        )
    hint = "build the local ones as shown above" if any(r.hint for r in bad) else None
    return TaskError(f"stack {stack}: " + "; ".join(parts), hint=hint)


def build_command(item: PullItem, settings: Settings) -> str:
    """The ``inv`` tasks that make an app image locally: ``build.<svc>`` (with ``--registry``
    when the reference is under another namespace), then ``staging.tag`` for a ``:staging``
    image; "" for an image that is not an app image."""
    if not item.app:
        return ""
    ref = Ref.parse(item.image)
    repo, tag = ref.repository, ref.tag or "latest"
    namespace = repo.rsplit("/", 1)[0] if "/" in repo else ""
    reg = f" --registry {namespace}" if namespace != settings.registry else ""
    build = f"build.{item.app}{reg}"
    return f"{build} staging.tag{reg}" if tag == "staging" else build


def build_hint(item: PullItem, settings: Settings) -> str:
    """How to make an app image locally (``a local build: `inv build.web```); "" for others."""
    command = build_command(item, settings)
    return f"a local build: `inv {command}`" if command else ""
