"""``stack.up``: the plan (compose's configuration read once, the services selected, staging's
preflight, the compose call and the services waited for), the start watched through the
progress protocol, and what a failed start leaves to show (each failed service's last log
lines, compose's own output). Nothing prints: :mod:`tasks.lib.stack.view` renders."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.lib.config import Settings
from tasks.lib.engine import EngineTarget, boundary
from tasks.lib.errors import CommandFailed, Interrupted, TaskError
from tasks.lib.progress import Progress
from tasks.lib.stack.checks import Preflight
from tasks.lib.stack.containers import ContainerState
from tasks.lib.stack.plan import PROD, STAGING, ComposeCall, Stack, resolve_stack, up_call
from tasks.lib.stack.spec import ProjectSpec
from tasks.lib.stack.wait import WaitResult

if TYPE_CHECKING:
    import docker

    from tasks.lib.stack import compose
    from tasks.lib.stack.urls import StackUrl


def expected(
    spec: ProjectSpec, services: Sequence[str], profiles: Sequence[str]
) -> tuple[str, ...]:
    """The services ``up`` starts, so the ones waited for: the selected ones and what they
    depend on; without a selection, every service whose profiles are enabled (``*``: all)."""
    if services:
        return spec.with_dependencies(services)
    on = set(profiles)
    return tuple(
        sv.name for sv in spec.services if not sv.profiles or "*" in on or on & set(sv.profiles)
    )


@dataclass(frozen=True)
class UpPlan:
    """``preflight``: staging's (None for any other stack); ``argv``: a dry run's only."""

    stack: Stack
    target: EngineTarget
    spec: ProjectSpec
    call: ComposeCall
    expected: tuple[str, ...]
    preflight: Preflight | None = None
    argv: tuple[str, ...] = ()

    @property
    def error(self) -> TaskError | None:
        """The preflight's refusal: nothing is started."""
        return self.preflight.error if self.preflight is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.stack.to_json(),
            "argv": list(self.argv) or None,
            "expected": list(self.expected),
            "preflight": self.preflight.to_json() if self.preflight else None,
        }


def plan_up(
    settings: Settings,
    stack: Stack,
    target: EngineTarget,
    services: Sequence[str],
    profiles: Sequence[str],
    *,
    allow_stale: bool,
    dry_run: bool,
) -> UpPlan:
    """Read the stack's configuration (ConfigError for an unknown ``--service``, or a stack
    holding prod's project name), run staging's preflight, and say what ``up`` runs and
    waits for."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.checks import refuse_prod_project, staging_preflight
    from tasks.lib.stack.spec import parse_config

    refuse_prod_project(
        stack,
        resolve_stack(settings, PROD, must_exist=False),
        why="its up would replace prod's containers with this file's, on prod's volumes",
    )
    config = compose.config(stack, target)
    spec = parse_config(config, stack.project)
    spec.check_services(services, stack.name)
    spec.check_profiles(profiles, stack.name)
    preflight = None
    if stack.name == STAGING:
        preflight = staging_preflight(
            settings, stack, config, spec, target, allow_stale=allow_stale, dry_run=dry_run
        )
    call = up_call(services, profiles)
    argv = tuple(compose.argv(stack, target, call)) if dry_run else ()
    return UpPlan(stack, target, spec, call, expected(spec, services, profiles), preflight, argv)


class UpInterrupted(Interrupted):
    """A signal while ``compose up`` was still creating the stack (it was stopped)."""


def partly_created(expected: Sequence[str], states: Sequence[ContainerState]) -> str:
    """How far a stopped ``compose up`` got, from the engine: "" when every service it was
    to start runs (nothing is missing), else e.g. "4 of 12 services running, 8 created but
    not started"."""
    from tasks.lib.stack.containers import by_service

    grouped = by_service(list(states))
    counts: dict[str, int] = {}
    for svc in expected:
        cs = grouped.get(svc, [])
        word = "not created" if not cs else cs[0].state
        if word == "created":
            word = "created but not started"
        counts[word] = counts.get(word, 0) + 1
    if counts.get("running", 0) == len(expected):
        return ""
    order = ["running", "created but not started", "not created"]
    words = sorted(counts, key=lambda w: (order.index(w) if w in order else 1, w))
    first, *rest = words
    head = f"{counts[first]} of {len(expected)} service{'s' if len(expected) != 1 else ''} "
    return ", ".join([head + first, *(f"{counts[w]} {w}" for w in rest)])


def up_interrupted(exc: Interrupted, stack: Stack, how_far: str | None) -> UpInterrupted:
    """The one line of a signal that stopped ``compose up`` before it had created the
    stack; ``how_far`` None: the engine could not be asked (the signal ended the SSH link)."""
    state = (
        f"is only partly created ({how_far})" if how_far is not None else "may be partly created"
    )
    return UpInterrupted(
        exc.signum,
        f"{exc.message}: `docker compose up` of {stack.project} was interrupted and the stack "
        f"{state}: rerun `inv stack.up --env {stack.name}` to finish it, or take it down with "
        f"`inv stack.down --env {stack.name}`",
    )


@contextmanager
def stays_up(stack: Stack) -> Iterator[None]:
    """An interrupt while waiting says that what started stays up, and how to take it down
    (one that stopped ``compose up`` itself says so: :class:`UpInterrupted`)."""
    try:
        yield
    except UpInterrupted:
        raise
    except Interrupted as exc:
        raise Interrupted(
            exc.signum,
            f"{exc.message}: stopped waiting for {stack.project}; what started "
            f"stays up (take it down with `inv stack.down --env {stack.name}`)",
        ) from None


@contextmanager
def stopped_on_interrupt(
    plan: UpPlan,
    poll: Callable[[], list[ContainerState]],
    run: compose.Running,
    stop: Callable[[], object],
) -> Iterator[None]:
    """A signal stops ``compose up`` (``stop``) and waits for it; when compose had not
    finished (the signal handler may have ended it already) and the stack is only partly
    created, the signal's line says so (:class:`UpInterrupted`)."""
    try:
        yield
    except Interrupted as exc:
        stop()
        if not run.completed:
            try:
                with boundary(plan.target):
                    how_far: str | None = partly_created(plan.expected, poll())
            except Interrupted:
                raise
            except TaskError:  # the signal ended the engine's link (SSH) too
                how_far = None
            if how_far != "":
                raise up_interrupted(exc, plan.stack, how_far) from None
        raise


def start(plan: UpPlan, client: docker.DockerClient, show: Callable[[Iterable[str]], None]) -> None:
    """``stack.up --no-wait``: ``compose up``, its lines to ``show`` as they come; stopped
    with the task (:func:`stopped_on_interrupt`)."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers

    run = compose.Running(plan.stack, plan.target, plan.call)
    try:
        with stopped_on_interrupt(
            plan, lambda: project_containers(client, plan.stack.project), run, run.stop
        ):
            show(run.lines())
    finally:
        run.stop()  # no-op once it ended


def start_and_wait(
    plan: UpPlan, client: docker.DockerClient, progress: Progress, *, timeout: float
) -> WaitResult:
    """``compose up`` (a :class:`~tasks.lib.stack.compose.Running`) read in a background
    thread while the services are watched until ready (see
    :func:`tasks.lib.stack.wait.watch`). Whatever ends the wait, compose up does not outlive
    it: a timeout or a failed service stops it, and the result shows the stack as it is then
    (:func:`~tasks.lib.stack.wait.recheck`); a signal stops it too
    (:func:`stopped_on_interrupt`)."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers
    from tasks.lib.stack.wait import Background, recheck, watch

    def poll() -> list[ContainerState]:
        return project_containers(client, plan.stack.project)

    run = compose.Running(plan.stack, plan.target, plan.call)
    background = Background(run.lines, stop=run.stop).start()
    try:
        with stopped_on_interrupt(plan, poll, run, background.stop):
            result = watch(poll, plan.expected, progress, timeout=timeout, up=background)
    finally:
        background.stop()  # no-op once it ended
    return recheck(result, poll()) if run.stopped else result


@dataclass(frozen=True)
class ServiceLogs:
    service: str
    reason: str
    lines: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "reason": self.reason, "lines": list(self.lines)}


@dataclass(frozen=True)
class UpFailure:
    """A start that failed: the failed (or, at a timeout, not ready) services with their last
    log lines, ``compose up``'s last lines when it failed itself, and the error to raise."""

    services: tuple[ServiceLogs, ...]
    up_output: tuple[str, ...] | None
    error: CommandFailed

    def to_json(self) -> dict[str, Any]:
        return {
            "services": [s.to_json() for s in self.services],
            "up_output": list(self.up_output) if self.up_output is not None else None,
            "error": self.error.line(),
        }


def failure(plan: UpPlan, result: WaitResult, timeout: float) -> UpFailure | None:
    """None when the stack is up; else what to show (each service's logs are read now) and
    the one line it ends with."""
    if result.ok:
        return None
    from tasks.lib.stack import compose

    stack = plan.stack
    rows = result.failed or (() if result.up_error else result.not_ready)
    logs = tuple(
        ServiceLogs(r.service, r.reason, tuple(compose.last_lines(stack, plan.target, r.service)))
        for r in rows
    )
    up_output = tuple(result.up_error_tail()) if result.up_error is not None else None
    status, down = f"`inv stack.status --env {stack.name}`", f"`inv stack.down --env {stack.name}`"
    if result.up_stopped:
        hint = (
            "`docker compose up` was still starting the stack and was stopped: what it "
            f"started stays up, the rest is not started ({status}; {down} takes it down)"
        )
    else:
        hint = f"what started stays up: {status}, {down} takes it down"
    error = CommandFailed(result.summary(stack.name, timeout), hint=hint)
    return UpFailure(logs, up_output, error)


def urls(plan: UpPlan, containers: Sequence[ContainerState]) -> list[StackUrl]:
    """The URLs the started stack serves, on its engine's host, through the ports the engine
    published; a service it did not start is said to be so, without a URL."""
    from tasks.lib.stack.health import engine_host
    from tasks.lib.stack.urls import stack_urls

    return stack_urls(plan.spec, engine_host(plan.target), containers, file_fallback=False)
