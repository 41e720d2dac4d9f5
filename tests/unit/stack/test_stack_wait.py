"""The waiting rule and the watch loop, on scripted container states and a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tasks.lib.errors import CommandFailed
from tasks.lib.progress import Status
from tasks.lib.stack.containers import ContainerState
from tasks.lib.stack.wait import (
    Background,
    Readiness,
    WaitResult,
    judge,
    judge_service,
    recheck,
    watch,
)


def _c(service: str = "s", **kw: Any) -> ContainerState:
    base = ContainerState(
        id=f"id-{service}", name=f"p-{service}-1", service=service, state="running"
    )
    return replace(base, **kw)


@pytest.mark.parametrize(
    ("container", "baseline", "expected"),
    [
        pytest.param(_c(), 0, Readiness("ready", "running"), id="running"),
        pytest.param(_c(health="healthy"), 0, Readiness("ready", "healthy"), id="healthy"),
        pytest.param(
            _c(health="starting"), 0, Readiness("waiting", "health: starting"), id="starting"
        ),
        pytest.param(_c(health="unhealthy"), 0, Readiness("failed", "unhealthy"), id="unhealthy"),
        pytest.param(_c(state="created"), 0, Readiness("waiting", "created"), id="created"),
        pytest.param(
            _c(state="exited", exit_code=3),
            0,
            Readiness("failed", "exited with code 3"),
            id="exit-3",
        ),
        pytest.param(
            _c(state="exited", exit_code=0, restart_policy="no"),
            0,
            Readiness("ready", "completed (exit 0)"),
            id="one-shot-done",
        ),
        pytest.param(
            _c(state="exited", exit_code=0, restart_policy="unless-stopped"),
            0,
            Readiness("failed", "exited with code 0"),
            id="server-exited-0",
        ),
        pytest.param(
            _c(state="restarting", exit_code=1),
            0,
            Readiness("failed", "exited with code 1, restarting"),
            id="restarting",
        ),
        pytest.param(
            _c(restarts=2),
            1,
            Readiness("failed", "exited and was restarted once"),
            id="restarted-between-polls",
        ),
        pytest.param(
            _c(state="restarting", restarts=3, exit_code=1),
            0,
            Readiness("failed", "exited with code 1, restarted 3 times"),
            id="restarting-again",
        ),
        pytest.param(_c(restarts=2), 2, Readiness("ready", "running"), id="old-restarts"),
        pytest.param(_c(state="paused"), 0, Readiness("failed", "paused"), id="paused"),
    ],
)
def test_judge(container: ContainerState, baseline: int, expected: Readiness) -> None:
    assert judge(container, baseline) == expected


def test_judge_service() -> None:
    a = _c(id="a", name="p-s-1")
    b = _c(id="b", name="p-s-2", state="exited", exit_code=2)
    assert judge_service([], {}) == Readiness("waiting", "not created yet")
    assert judge_service([a, b], {}) == Readiness("failed", "p-s-2: exited with code 2")
    assert judge_service([a, replace(b, state="created")], {}).kind == "waiting"
    assert judge_service([a, replace(b, id="b", state="running")], {}).kind == "ready"


@dataclass
class Recorder:
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        self.events.append(("start", key, text))

    def update(
        self, key: str, *, text: str | None = None, stage: str | None = None, **_: object
    ) -> None:
        self.events.append(("update", key, f"{stage}|{text}"))

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        self.events.append(("finish", key, f"{status.value}|{text}"))

    def finished(self) -> dict[str, str]:
        return {k: v for kind, k, v in self.events if kind == "finish"}


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _script(*frames: Sequence[ContainerState]) -> Callable[[], list[ContainerState]]:
    """Poll results in order; the last one repeats."""
    seq = list(frames)

    def poll() -> list[ContainerState]:
        return list(seq.pop(0) if len(seq) > 1 else seq[0])

    return poll


def _watch(
    poll: Callable[[], list[ContainerState]],
    services: Sequence[str],
    *,
    timeout: float = 30,
    up: Any = None,
    settle: float = 0,
) -> tuple[WaitResult, Recorder, Clock]:
    rec, clock = Recorder(), Clock()
    result = watch(
        poll, services, rec, timeout=timeout, up=up, settle=settle, clock=clock, sleep=clock.sleep
    )
    return result, rec, clock


def test_becomes_healthy() -> None:
    db = _c("db", health="starting")
    web = _c("web")
    created = replace(db, state="created", health="")
    poll = _script([created], [db, web], [db, web], [replace(db, health="healthy"), web])
    result, rec, clock = _watch(poll, ["db", "web"])
    assert result.ok
    assert clock.now == 3.0
    assert rec.finished() == {"db": "up|healthy", "web": "up|running"}
    # not started: the engine shows no health yet, though db has a check
    assert ("update", "db", "created|0 restarts") in rec.events
    assert ("update", "web", "running|no healthcheck, 0 restarts") in rec.events
    assert ("update", "db", "running|health starting, 0 restarts") in rec.events
    assert ("update", "web", "-|not created yet") in rec.events


def test_exit_fails_at_once() -> None:
    poll = _script([_c("db", health="starting"), _c("job", state="exited", exit_code=3)])
    result, rec, clock = _watch(poll, ["db", "job"])
    assert not result.ok
    assert clock.now == 0
    assert rec.finished() == {
        "db": "cancelled|health: starting",
        "job": "failed|exited with code 3",
    }
    assert result.summary("staging", 30) == "stack staging: job exited with code 3"


def test_unhealthy_fails_at_once() -> None:
    poll = _script([_c("db", health="starting")], [_c("db", health="unhealthy")])
    result, _rec, clock = _watch(poll, ["db"])
    assert [r.reason for r in result.failed] == ["unhealthy"]
    assert clock.now == 1.0


def test_timeout_names_what_is_not_ready() -> None:
    poll = _script([_c("db", health="starting"), _c("web")])
    result, rec, clock = _watch(poll, ["db", "web"], timeout=5)
    assert result.timed_out
    assert clock.now == 5.0
    assert rec.finished()["db"] == "failed|not ready: health: starting"
    assert result.summary("dev", 5) == "stack dev: not ready after 5s: db (health: starting)"


class FakeUp:
    def __init__(self, done_after: int, error: CommandFailed | None = None) -> None:
        self.polls = 0
        self.done_after = done_after
        self.error_value = error
        self.output = ["Container x  Started"]

    @property
    def done(self) -> bool:
        self.polls += 1
        return self.polls > self.done_after

    @property
    def error(self) -> CommandFailed | None:
        return self.error_value


def test_waits_for_up_to_finish() -> None:
    up = FakeUp(done_after=2)
    result, _rec, clock = _watch(_script([_c("web")]), ["web"], up=up)
    assert result.ok
    assert clock.now == 2.0


def test_up_error_fails() -> None:
    err = CommandFailed("`docker compose up` for p failed: dependency failed", output="boom\n")
    result, _rec, _clock = _watch(_script([_c("web", state="created")]), ["web"], up=FakeUp(0, err))
    assert not result.ok
    assert result.summary("dev", 9) == (
        "stack dev: `docker compose up` for p failed: dependency failed"
    )
    assert result.up_error_tail() == ["Container x  Started"]
    nothing_streamed = replace(result, up_output=())
    assert nothing_streamed.up_error_tail() == ["boom"]


def test_background_keeps_lines_and_error() -> None:
    def lines() -> list[str]:
        raise CommandFailed("nope")

    bg = Background(lambda: iter(["a", "b"])).start()
    bg.join(5)
    assert bg.done and bg.output == ["a", "b"] and bg.error is None
    bad = Background(lines).start()
    bad.join(5)
    assert isinstance(bad.error, CommandFailed)


def test_ready_must_last_the_settle_window() -> None:
    running = _c("web")
    poll = _script([running], [running], [replace(running, restarts=1)])
    result, rec, clock = _watch(poll, ["web"], settle=2)
    assert not result.ok
    assert clock.now == 2.0
    assert rec.finished() == {"web": "failed|exited and was restarted once"}
    result, _rec, clock = _watch(_script([running]), ["web"], settle=2)
    assert result.ok
    assert clock.now == 2.0


def test_settle_restarts_when_a_service_is_not_ready_again() -> None:
    ok, starting = _c("db", health="healthy"), _c("db", health="starting")
    poll = _script([ok], [starting], [ok], [ok], [ok])
    result, _rec, clock = _watch(poll, ["db"], settle=2)
    assert result.ok
    assert clock.now == 4.0


def test_recheck_shows_the_stack_as_a_stopped_up_left_it() -> None:
    """compose up stopped at a timeout: each service not failed is judged again as the
    engine shows it now; a failed one keeps its reason."""
    timed_out, _rec, _clock = _watch(
        _script([_c("db", health="starting")]), ["db", "web", "api", "bad"], timeout=0
    )
    failed = replace(timed_out.services[3], kind="failed", reason="exited with code 1")
    result = replace(timed_out, services=(*timed_out.services[:3], failed))
    now = [_c("db", health="starting"), _c("web", state="created")]
    after = recheck(result, now)
    assert after.up_stopped and not after.ok
    assert [(r.service, r.kind, r.reason) for r in after.services] == [
        ("db", "waiting", "health: starting"),
        ("web", "waiting", "created, not started"),
        ("api", "waiting", "not created"),
        ("bad", "failed", "exited with code 1"),
    ]


def test_background_stop_says_whether_it_still_ran() -> None:
    import threading

    release = threading.Event()

    def lines() -> list[str]:
        release.wait(5)
        return ["last"]

    def stop() -> bool:
        release.set()
        return True

    bg = Background(lines, stop=stop).start()
    assert bg.stop() is True
    assert bg.done and bg.output == ["last"]
    assert Background(lambda: iter(())).start().stop() is False
