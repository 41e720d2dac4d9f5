"""``stack.up``: the plan (compose's configuration read once, the services selected, staging's
preflight, the compose call and the services waited for), the start watched through the
progress protocol, and what a failed start leaves to show (each failed service's last log
lines, compose's own output). Nothing prints: :mod:`tasks.lib.stack.view` renders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.lib.config import Settings
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import CommandFailed, Interrupted, TaskError
from tasks.lib.progress import Progress
from tasks.lib.stack.checks import Preflight
from tasks.lib.stack.plan import STAGING, ComposeCall, Stack, up_call
from tasks.lib.stack.spec import ProjectSpec
from tasks.lib.stack.wait import WaitResult

if TYPE_CHECKING:
    import docker

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
    """Read the stack's configuration (ConfigError for an unknown ``--service``), run staging's
    preflight, and say what ``up`` runs and waits for."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.checks import staging_preflight
    from tasks.lib.stack.spec import parse_config

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


@contextmanager
def stays_up(stack: Stack) -> Iterator[None]:
    """An interrupt while waiting says that what started stays up, and how to take it down."""
    try:
        yield
    except Interrupted as exc:
        raise Interrupted(
            exc.signum,
            f"{exc.message}: stopped waiting for {stack.project}; what started "
            f"stays up (take it down with `inv stack.down --env {stack.name}`)",
        ) from None


def start_and_wait(
    plan: UpPlan, client: docker.DockerClient, progress: Progress, *, timeout: float
) -> WaitResult:
    """``compose up`` in a background thread while the services are watched until ready (see
    :func:`tasks.lib.stack.wait.watch`)."""
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers
    from tasks.lib.stack.wait import Background, watch

    stack, target = plan.stack, plan.target
    background = Background(lambda: compose.stream(stack, target, plan.call)).start()
    return watch(
        lambda: project_containers(client, stack.project),
        plan.expected,
        progress,
        timeout=timeout,
        up=background,
    )


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
    error = CommandFailed(
        result.summary(stack.name, timeout),
        hint=f"what started stays up: `inv stack.status --env {stack.name}`, "
        f"`inv stack.down --env {stack.name}` takes it down",
    )
    return UpFailure(logs, up_output, error)


def urls(plan: UpPlan) -> list[StackUrl]:
    """The URLs the started stack serves, on its engine's host."""
    from tasks.lib.stack.health import engine_host
    from tasks.lib.stack.urls import stack_urls

    return stack_urls(plan.spec, engine_host(plan.target))
