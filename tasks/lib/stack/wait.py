"""Wait for a stack after ``compose up``: every service with a healthcheck healthy, every other
one running, a one-shot (restart ``no``/``on-failure``) done once it exited 0, and all of it
still so a moment later (``settle``: a process that crashes a second after it started is
caught). A service that exits (any other way), restarts or turns unhealthy fails the wait at
once.

:func:`judge` is the rule, a pure function; :func:`watch` polls about once a second, reports
each service through the progress protocol (stage = state, text = health and restarts) and
returns a :class:`WaitResult`. ``up`` runs in a :class:`Background` thread meanwhile, so the
view is live while compose itself waits for ``depends_on`` conditions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from tasks.lib.errors import TaskError
from tasks.lib.progress import Progress, Status
from tasks.lib.stack.containers import ContainerState, by_service

Kind = Literal["ready", "waiting", "failed"]
ONE_SHOT_POLICIES = frozenset({"", "no", "on-failure"})


@dataclass(frozen=True)
class Readiness:
    kind: Kind
    reason: str


def judge(c: ContainerState, baseline_restarts: int = 0) -> Readiness:
    """Where one container stands. ``baseline_restarts``: its RestartCount when first seen
    (a restart since then means it exited)."""
    if c.restarts > baseline_restarts:
        n = c.restarts - baseline_restarts
        times = "once" if n == 1 else f"{n} times"
        if c.state == "running":  # the engine forgot the exit code when it restarted it
            return Readiness("failed", f"exited and was restarted {times}")
        return Readiness("failed", f"exited with code {c.exit_code}, restarted {times}")
    if c.state == "running":
        if c.health == "unhealthy":
            return Readiness("failed", "unhealthy")
        if c.health == "starting":
            return Readiness("waiting", "health: starting")
        return Readiness("ready", "healthy" if c.health == "healthy" else "running")
    if c.state in ("exited", "dead"):
        if c.exit_code == 0 and c.restart_policy in ONE_SHOT_POLICIES and c.state == "exited":
            return Readiness("ready", "completed (exit 0)")
        return Readiness("failed", f"exited with code {c.exit_code}")
    if c.state == "restarting":
        return Readiness("failed", f"exited with code {c.exit_code}, restarting")
    if c.state == "paused":
        return Readiness("failed", "paused")
    return Readiness("waiting", c.state or "created")


def judge_service(containers: Sequence[ContainerState], baselines: Mapping[str, int]) -> Readiness:
    """A service is ready when all its containers are; failed when one failed."""
    if not containers:
        return Readiness("waiting", "not created yet")
    verdicts = [(c, judge(c, baselines.get(c.id, 0))) for c in containers]
    for c, v in verdicts:
        if v.kind == "failed":
            who = f"{c.name}: " if len(containers) > 1 else ""
            return Readiness("failed", who + v.reason)
    waiting = [v for _, v in verdicts if v.kind == "waiting"]
    if waiting:
        return waiting[0]
    reasons = {v.reason for _, v in verdicts}
    return Readiness("ready", ", ".join(sorted(reasons)))


@dataclass(frozen=True)
class ServiceWait:
    service: str
    kind: Kind
    reason: str
    state: str
    health: str
    restarts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "result": self.kind,
            "reason": self.reason,
            "state": self.state,
            "health": self.health,
            "restarts": self.restarts,
        }


@dataclass(frozen=True)
class WaitResult:
    ok: bool
    seconds: float
    services: tuple[ServiceWait, ...]
    timed_out: bool = False
    up_error: TaskError | None = None
    up_output: tuple[str, ...] = ()
    up_stopped: bool = False  # compose up still ran when the wait ended, and was stopped

    @property
    def failed(self) -> tuple[ServiceWait, ...]:
        return tuple(s for s in self.services if s.kind == "failed")

    @property
    def not_ready(self) -> tuple[ServiceWait, ...]:
        return tuple(s for s in self.services if s.kind != "ready")

    def summary(self, env: str, timeout: float) -> str:
        """The one line a failed wait ends with."""
        if self.failed:
            return f"stack {env}: " + "; ".join(f"{r.service} {r.reason}" for r in self.failed)
        if self.up_error is not None:
            return f"stack {env}: {self.up_error.message}"
        if self.timed_out:
            return f"stack {env}: not ready after {timeout:g}s: " + "; ".join(
                f"{r.service} ({r.reason})" for r in self.not_ready
            )
        return f"stack {env}: up"

    def up_error_tail(self, n: int = 20) -> list[str]:
        """compose up's last output lines (with its error output when it failed)."""
        # the streamed lines hold stderr too; the error's own copy only when nothing streamed
        extra = str(getattr(self.up_error, "output", "") or "")
        lines = list(self.up_output) or extra.splitlines()
        return [ln.strip() for ln in lines if ln.strip()][-n:]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "timed_out": self.timed_out,
            "up_error": self.up_error.line() if self.up_error else None,
            "up_stopped": self.up_stopped,
            "services": [s.to_json() for s in self.services],
        }


class Background:
    """Run ``lines()`` (compose up's output) to the end in a daemon thread, keeping the lines
    and the TaskError it raised. Daemon: Ctrl-C must not wait for it. ``stop``: ends what
    produces the lines (compose up's process), True when it still ran."""

    def __init__(
        self, lines: Callable[[], Iterable[str]], stop: Callable[[], bool] | None = None
    ) -> None:
        self.output: list[str] = []
        self.error: TaskError | None = None
        self._lines = lines
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="compose-up", daemon=True)

    def _run(self) -> None:
        try:
            for line in self._lines():
                self.output.append(line)
        except TaskError as exc:
            self.error = exc
        except Exception as exc:  # a bug in the reader: report it as the up's failure
            self.error = TaskError(f"reading compose output failed: {exc!r}")

    def start(self) -> Background:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> bool:
        """End it now and wait for its end (its last lines read); True when it still ran."""
        stopped = self._stop() if self._stop is not None else False
        self._thread.join(10)
        return stopped


def recheck(result: WaitResult, states: Sequence[ContainerState]) -> WaitResult:
    """``result`` once compose up was stopped: each service not failed judged again as the
    engine shows it now (a container compose created but did not start stays so)."""
    grouped = by_service(list(states))
    rows: list[ServiceWait] = []
    for r in result.services:
        if r.kind == "failed":
            rows.append(r)
            continue
        cs = grouped.get(r.service, [])
        verdict = judge_service(cs, {c.id: c.restarts for c in cs})
        if verdict.kind == "waiting" and not cs:
            verdict = Readiness("waiting", "not created")
        elif verdict.kind == "waiting" and verdict.reason == "created":
            verdict = Readiness("waiting", "created, not started")
        rows.append(_row(r.service, cs, verdict))
    return replace(result, services=tuple(rows), up_stopped=True)


def _row(service: str, containers: Sequence[ContainerState], verdict: Readiness) -> ServiceWait:
    first = containers[0] if containers else None
    return ServiceWait(
        service=service,
        kind=verdict.kind,
        reason=verdict.reason,
        state=first.state if first else "",
        health=first.health if first else "",
        restarts=sum(c.restarts for c in containers),
    )


def watch(
    poll: Callable[[], list[ContainerState]],
    services: Sequence[str],
    progress: Progress,
    *,
    timeout: float,
    up: Background | None = None,
    interval: float = 1.0,
    settle: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Poll until every service in ``services`` is ready (and ``up`` is done) and stays so for
    ``settle`` seconds (a process that crashes right after starting is caught), one fails,
    ``up`` fails, or ``timeout`` seconds pass."""
    start = clock()
    baselines: dict[str, int] = {}
    reported: dict[str, tuple[str, str, str]] = {}
    for s in services:
        progress.start(s, text="waiting")
    rows: dict[str, ServiceWait] = {}
    ready_since: float | None = None
    while True:
        up_done = up is None or up.done
        states = poll()
        for c in states:
            baselines.setdefault(c.id, c.restarts)
        grouped = by_service(states)
        for s in services:
            containers = grouped.get(s, [])
            verdict = judge_service(containers, baselines)
            row = _row(s, containers, verdict)
            rows[s] = row
            text = _health_text(row) if containers else row.reason
            shown = (row.state or "-", text, row.kind)
            if reported.get(s) != shown:
                reported[s] = shown
                progress.update(s, stage=row.state or "-", text=text)
        elapsed = clock() - start
        ordered = tuple(rows[s] for s in services)
        failed = [r for r in ordered if r.kind == "failed"]
        up_error = up.error if up is not None and up_done else None
        if failed or up_error is not None:
            _finish(progress, ordered)
            return WaitResult(False, elapsed, ordered, up_error=up_error, up_output=_out(up))
        if up_done and all(r.kind == "ready" for r in ordered):
            ready_since = elapsed if ready_since is None else ready_since
            if elapsed - ready_since >= settle:
                _finish(progress, ordered)
                return WaitResult(True, elapsed, ordered, up_output=_out(up))
        else:
            ready_since = None
        if elapsed >= timeout:
            _finish(progress, ordered, timed_out=True)
            return WaitResult(False, elapsed, ordered, timed_out=True, up_output=_out(up))
        sleep(interval)


def _health_text(row: ServiceWait) -> str:
    """Health and restarts. "no healthcheck" only for a running container: the engine shows
    no health for one not started yet, though its image or file may define a check."""
    restarts = f"{row.restarts} restarts"
    if row.health:
        return f"health {row.health}, {restarts}"
    return f"no healthcheck, {restarts}" if row.state == "running" else restarts


def _out(up: Background | None) -> tuple[str, ...]:
    return tuple(up.output) if up is not None else ()


def _finish(progress: Progress, rows: Sequence[ServiceWait], *, timed_out: bool = False) -> None:
    """Ready -> up; failed -> failed; still waiting -> failed at a timeout (it is the reason),
    cancelled when another service failed (nobody waits for it any more)."""
    for r in rows:
        if r.kind == "ready":
            progress.finish(r.service, Status.UP, text=r.reason)
        elif r.kind == "failed" or timed_out:
            progress.finish(
                r.service,
                Status.FAILED,
                text=f"not ready: {r.reason}" if r.kind != "failed" else r.reason,
            )
        else:
            progress.finish(r.service, Status.CANCELLED, text=r.reason)
