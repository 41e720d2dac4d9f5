"""``stack.pull``: pull only what is missing locally (the Makefile's
``_pull-missing-images``), or with ``--all`` every image a registry can give (``docker-pull``:
``compose pull``), and say which images are local builds that no registry has (the Makefile
suggests ``make build-all-docker`` when a pull fails) and how to build them.

:func:`plan_pull` says what to do per service, :func:`pull_result` and
:func:`compose_build_result` judge what came of it from the local store before and after
(pure). :func:`prepare` looks the images up and makes the :class:`PullPlan` a dry run shows;
:func:`execute` runs it, one ``compose pull`` at a time, reporting through the progress
protocol, and returns a :class:`PullRun`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tasks.lib.config import Settings
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import TaskError
from tasks.lib.images.refs import Ref
from tasks.lib.images.store import LocalImage
from tasks.lib.progress import Progress, Status
from tasks.lib.stack.images import Found, app_services
from tasks.lib.stack.plan import Stack
from tasks.lib.stack.spec import ProjectSpec

if TYPE_CHECKING:
    import docker

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


def note(item: PullItem, settings: Settings, compose_file: str) -> str:
    """What a dry run says beside an item: how to build an app image no registry may have, or
    the compose line that builds a service compose builds; "" for others."""
    if item.action == "pull" and item.app:
        return f"{item.service}: if no registry has {item.image}, {build_hint(item, settings)}"
    if item.action == "compose-build":
        build = compose_build_command(item.service, compose_file)
        return f"{item.service}: {item.image} is built by compose, not pulled: `{build}`"
    return ""


@dataclass(frozen=True)
class PullPlan:
    """What ``stack.pull`` does per service. ``found``: the local images before (None: not
    looked up, no engine); ``argvs``: each pull's exact command (a dry run's only);
    ``warnings``: what the plan could not check."""

    stack: Stack
    target: EngineTarget
    items: tuple[PullItem, ...]
    every: bool
    found: Found | None
    notes: dict[str, str]
    argvs: dict[str, list[str]]
    warnings: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def services(self) -> list[str]:
        return [i.service for i in self.items]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.stack.to_json(),
            "dry_run": self.dry_run,
            "all": self.every,
            "items": [{**i.to_json(), "argv": self.argvs.get(i.service)} for i in self.items],
        }


def prepare(
    settings: Settings,
    stack: Stack,
    target: EngineTarget,
    services: Sequence[str] = (),
    *,
    every: bool = False,
    dry_run: bool = False,
) -> PullPlan:
    """Read the stack (ConfigError for an unknown ``--service``), look its images up (one list
    call; a dry run without an engine shows every pull) and plan the pulls."""
    from tasks.lib.engine import connect
    from tasks.lib.errors import EngineUnavailable
    from tasks.lib.images.store import find_images
    from tasks.lib.stack import compose
    from tasks.lib.stack.plan import pull_call

    spec = compose.spec(stack, target)
    spec.check_services(services, stack.name)
    warnings: tuple[str, ...] = ()
    found: Found | None
    try:
        with connect(target) as client:
            found = find_images(client, [sv.image for sv in spec.services])
    except EngineUnavailable as exc:
        if not dry_run:
            raise
        warnings = (f"{exc.line()}; local images not checked, every pull shown",)
        found = None
    items = plan_pull(spec, found, settings, services, every=every)
    argvs = {
        i.service: compose.argv(stack, target, pull_call(i.service))
        for i in items
        if dry_run and i.action == "pull"
    }
    notes = {i.service: note(i, settings, str(stack.file)) for i in items}
    return PullPlan(
        stack, target, tuple(items), every, found, notes, argvs, warnings, dry_run=dry_run
    )


@dataclass(frozen=True)
class PullRun:
    stack: Stack
    results: tuple[PullResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self.stack.to_json(), "images": [r.to_json() for r in self.results]}

    def failure(self) -> TaskError | None:
        return failure(self.results, self.stack.name)


def execute(
    plan: PullPlan, settings: Settings, client: docker.DockerClient, progress: Progress
) -> PullRun:
    """Pull each item in turn (``compose pull SERVICE``, its lines to ``progress``) and judge
    it by the local store after it (:func:`pull_result`); a failed pull is a result, not an
    error."""
    from tasks.lib.errors import CommandFailed
    from tasks.lib.images.store import find_images
    from tasks.lib.stack import compose
    from tasks.lib.stack.plan import pull_call

    stack, found = plan.stack, plan.found
    results: list[PullResult] = []
    for item in plan.items:
        progress.start(item.service, text=item.image)
        if item.action == "present":
            result = PullResult(item.service, item.image, Status.UP_TO_DATE, "present")
        elif item.action == "compose-build":
            result = compose_build_result(item, str(stack.file))
        else:
            error = ""
            try:
                for line in compose.stream(stack, plan.target, pull_call(item.service)):
                    progress.update(item.service, line=line)
            except CommandFailed as exc:
                error = exc.message.split(": ", 1)[-1]
            after = find_images(client, [item.image])[item.image]
            before = found.get(item.image) if found is not None else None
            result = pull_result(item, settings, before, after, error)
        results.append(result)
        shown = result.detail if result.status.bad or result.hint else ""
        progress.finish(item.service, result.status, text=shown)
    return PullRun(stack, tuple(results))
