"""What must hold before a stack changes: staging's preflight before ``stack.up --env staging``
(separate from prod, app images fresh by ``staging.tag``'s rules) and the safety of
``stack.down`` (never prod's volumes, never a volume prod uses, never a stack holding prod's
project name).

The judgements are pure (:func:`separation_error`, :func:`judge_images`, :func:`refuse_down`,
:func:`removable_volumes`); :func:`staging_preflight` and :func:`plan_down` gather what they
judge (compose's configurations, the local images, prod's mounts). Nothing prints: warnings come
back as lines, clashes as data, and a refusal that follows warnings as ``error`` for the task to
raise once it has shown them (a refusal before any warning is raised at once)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from tasks.lib.compose.separation import Clash, clashes, shared_volumes
from tasks.lib.config import Settings
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError, EngineUnavailable, Interrupted, TaskError
from tasks.lib.stack.images import AppImage, Found, app_images, refuse_stale, stale_lines
from tasks.lib.stack.plan import PROD, ComposeCall, Stack, down_call, down_hint, resolve_stack
from tasks.lib.stack.spec import ProjectSpec, parse_config

# -- staging's preflight --------------------------------------------------------------------------


@dataclass(frozen=True)
class Preflight:
    """What staging's preflight found: ``error`` set means refused, nothing started."""

    warnings: tuple[str, ...] = ()
    clashes: tuple[Clash, ...] = ()
    images: tuple[AppImage, ...] = ()
    error: TaskError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "warnings": list(self.warnings),
            "clashes": [c.to_json() for c in self.clashes],
            "images": [i.to_json() for i in self.images],
            "error": self.error.line() if self.error else None,
        }


def separation_error(stack: Stack, prod: Stack, found: Sequence[Clash]) -> ConfigError:
    """The refusal naming everything ``stack`` shares with prod."""
    return ConfigError(
        f"refused, nothing started: {stack.file.name} shares with "
        f"{prod.file.name}: " + "; ".join(c.describe() for c in found),
        hint="regenerate it (`inv staging.compose --force`) or fix the edit",
    )


def judge_images(
    apps: Sequence[AppImage], settings: Settings, stack: str, *, allow_stale: bool
) -> Preflight:
    """Fresh app images pass; ``allow_stale`` turns the stale ones into warnings; otherwise
    the refusal :func:`~tasks.lib.stack.images.refuse_stale` gives."""
    if allow_stale:
        warnings = tuple(f"--allow-stale: {line}" for line in stale_lines(apps))
        return Preflight(warnings=warnings, images=tuple(apps))
    try:
        refuse_stale(apps, settings, stack=stack)
    except TaskError as exc:
        return Preflight(images=tuple(apps), error=exc)
    return Preflight(images=tuple(apps))


def staging_preflight(
    settings: Settings,
    stack: Stack,
    config: Mapping[str, Any],
    spec: ProjectSpec,
    target: EngineTarget,
    *,
    allow_stale: bool,
    dry_run: bool,
) -> Preflight:
    """Before staging starts: separate from prod (checked again now, by the check
    staging.compose made: either file may have been edited since), app images fresh by
    staging.tag's rules. Without an engine a dry run warns that the images were not checked;
    a real run is refused (EngineUnavailable)."""
    from tasks.lib.engine import connect
    from tasks.lib.images.store import find_images
    from tasks.lib.stack import compose
    from tasks.lib.stack.images import app_services

    warnings: list[str] = []
    prod = resolve_stack(settings, PROD, must_exist=False)
    if not prod.file.is_file():
        warnings.append(
            f"prod compose file {prod.file} not found: staging's separation not checked"
        )
    else:
        found = clashes(compose.config(prod, target), config)
        if found:
            return Preflight(clashes=tuple(found), error=separation_error(stack, prod, found))
    refs = [ref for _svc, _app, ref in app_services(spec, settings)]
    images: Found
    try:
        with connect(target) as client:
            images = find_images(client, refs)
    except Interrupted:
        raise
    except TaskError as exc:
        if _fatal(exc, dry_run):
            return Preflight(warnings=tuple(warnings), error=exc)
        warnings.append(f"{exc.line()}; app images not checked")
        return Preflight(warnings=tuple(warnings))
    judged = judge_images(
        app_images(spec, settings, images), settings, stack.name, allow_stale=allow_stale
    )
    return replace(judged, warnings=(*warnings, *judged.warnings))


# -- stack.down ----------------------------------------------------------------------------------


def refuse_prod_project(stack: Stack, prod: Stack, *, why: str = "") -> None:
    """ConfigError for a stack other than prod holding prod's project name: compose would
    take its containers for this stack's (a down removes them; an up replaces them with this
    file's services, on prod's project-scoped volumes). ``why``: said after the name."""
    if not stack.is_prod and prod.project == stack.project:
        raise ConfigError(
            f"refused: stack {stack.name} has prod's project name {stack.project}"
            + (f" ({why})" if why else ""),
            hint=f"give meeshy.stacks.{stack.name}.project its own name",
        )


def refuse_down(stack: Stack, prod: Stack, *, volumes: bool) -> None:
    """ConfigError for ``down --volumes`` of prod, and for any other stack holding prod's
    project name (its down would take prod's containers)."""
    if volumes and stack.is_prod:
        raise ConfigError(
            "refused: `stack.down --env prod --volumes` would delete prod's data",
            hint="take prod down without --volumes; remove a volume by hand if you mean it",
        )
    refuse_prod_project(stack, prod)


def removable_volumes(
    stack: Stack,
    config: Mapping[str, Any],
    prod_config: Mapping[str, Any] | None,
    prod_mounted: Iterable[str] = (),
) -> list[str]:
    """The volumes ``down --volumes`` removes (the file's non-external ones, by Docker name,
    sorted); ConfigError naming those prod's file names or prod's containers mount."""
    shared = shared_volumes(config, prod_config, prod_mounted)
    if shared:
        raise ConfigError(
            f"refused, nothing removed: `stack.down --env {stack.name} --volumes` would "
            f"delete volumes prod uses: {', '.join(shared)}",
            hint=f"give them their own names in {stack.file.name}, or drop --volumes",
        )
    volumes = parse_config(config, stack.project).volumes.values()
    return sorted(name for name, external in volumes if not external)


@dataclass(frozen=True)
class DownPlan:
    """``stack.down``: the compose call, the volumes it removes, the argv a dry run shows;
    ``error`` set means refused, nothing removed."""

    stack: Stack
    call: ComposeCall
    volumes: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error: TaskError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.stack.to_json(),
            "argv": list(self.argv) or None,
            "volumes": list(self.volumes),
            "warnings": list(self.warnings),
            "error": self.error.line() if self.error else None,
        }


def plan_down(
    settings: Settings, stack: Stack, target: EngineTarget, *, volumes: bool, dry_run: bool
) -> DownPlan:
    """Refusals first (:func:`refuse_down`); with ``volumes``, the volumes removed, checked
    against prod's file and prod's running containers (a dry run without an engine checks the
    file only; a real one is refused)."""
    from tasks.lib.engine import connect
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers

    prod = resolve_stack(settings, PROD, must_exist=False)
    refuse_down(stack, prod, volumes=volumes)
    call = down_call(volumes=volumes)
    removed: list[str] = []
    warnings: tuple[str, ...] = ()
    # compose down reads the file too: one it refuses is refused here, nothing done, with
    # the way down without it (as for a missing file)
    config = compose.config(stack, target, hint=f"fix it; {down_hint(settings, stack.name)}")
    if volumes:
        prod_config = compose.config(prod, target) if prod.file.is_file() else None
        if prod_config is None:
            warnings = (f"prod compose file {prod.file} not found: only running prod checked",)
        mounted: list[str] = []
        try:
            with connect(target) as client:
                mounted = [m for ct in project_containers(client, prod.project) for m in ct.mounts]
        except Interrupted:
            raise
        except TaskError as exc:
            if _fatal(exc, dry_run):
                return DownPlan(stack, call, warnings=warnings, error=exc)
        try:
            removed = removable_volumes(stack, config, prod_config, mounted)
        except ConfigError as exc:
            return DownPlan(stack, call, warnings=warnings, error=exc)
    argv = tuple(compose.argv(stack, target, call)) if dry_run else ()
    return DownPlan(stack, call, tuple(removed), argv, warnings)


@contextmanager
def stopped_down(plan: DownPlan) -> Iterator[None]:
    """A signal while ``compose down`` runs (it is stopped with the task): the line says the
    stack may be partly down, and that rerunning the same down finishes it."""
    try:
        yield
    except Interrupted as exc:
        stack = plan.stack
        volumes = " --volumes" if "--volumes" in plan.call.args else ""
        left = ", its volumes maybe not removed" if volumes else ""
        raise Interrupted(
            exc.signum,
            f"{exc.message}: `docker compose down` of {stack.project} was stopped before it "
            f"ended: the stack may be partly down{left}"
            f" (rerun `inv stack.down --env {stack.name}{volumes}` to finish it)",
        ) from None


def _fatal(exc: TaskError, dry_run: bool) -> bool:
    """Whether an error reaching the engine ends the run: always, but for a dry run without
    an engine (it goes on, saying what it did not check)."""
    return not (dry_run and isinstance(exc, EngineUnavailable))
