"""``staging.tag``: the tag plan, decided in full before the first tag is written, and its
application, all or nothing.

* Every source is looked up (with every target, in one engine call) and judged by the
  freshness rules first: a missing source or a stale image refuses the whole plan.
* If writing a tag fails, or a signal arrives, before every tag is written, the tags written
  so far (and the one being written) are put back as they were: a target that existed points
  at its old image again, a new one is removed. The rollback runs with signals held.
* Once every tag is written the work is done: a signal after that does not undo it
  (:func:`interrupted_after`).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.lib.config import SCHEMA_LABEL, Service, Settings, check_tag
from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    Interrupted,
    MissingImageError,
    StaleImageError,
)
from tasks.lib.images.freshness import Freshness, judge
from tasks.lib.images.refs import Ref, repository
from tasks.lib.images.signals import held_signals
from tasks.lib.images.store import LocalImage, engine_message, find_images, short_id
from tasks.lib.progress import Status

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import docker

    from tasks.lib.engine import EngineTarget


@dataclass(frozen=True)
class TagAction:
    service: str
    source: str
    target: str
    image_id: str
    previous_id: str | None = None  # the image the target named before; None: no such tag
    fresh: bool = True
    why: str = ""  # the freshness rules' words when not fresh

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "source": self.source,
            "target": self.target,
            "image_id": self.image_id,
            "previous_id": self.previous_id,
        }


@dataclass(frozen=True)
class TagPlan:
    actions: tuple[TagAction, ...]

    @property
    def stale(self) -> tuple[str, ...]:
        """Sources tagged although not fresh (``--allow-stale``)."""
        return tuple(a.source for a in self.actions if not a.fresh)

    def to_json(self, *, dry_run: bool, status: Status | None = None) -> dict[str, Any]:
        tags = [a.to_json() | ({"status": status.value} if status else {}) for a in self.actions]
        return {"dry_run": dry_run, "tags": tags, "stale": list(self.stale)}


def staging_refs(
    settings: Settings, services: Sequence[Service], from_tag: str, to_tag: str
) -> list[tuple[str, str, str]]:
    """(service, source ref, target ref) for each service."""
    check_tag(from_tag, "--from")
    check_tag(to_tag, "--to")
    if from_tag == to_tag:
        raise ConfigError(f"--from and --to are both {from_tag!r}", hint="tag to another name")
    out = []
    for svc in services:
        repo = repository(settings, svc)
        out.append((svc.name, f"{repo}:{from_tag}", f"{repo}:{to_tag}"))
    return out


def plan_staging_tags(
    refs: Sequence[tuple[str, str, str]],
    found: Mapping[str, LocalImage | None],
    rules: Sequence[Freshness],
    *,
    allow_stale: bool,
) -> TagPlan:
    """Decide every tag before writing any: missing sources or stale images refuse all.
    ``found`` maps sources (and targets, for the rollback) to the local images."""
    missing = [src for _, src, _ in refs if found.get(src) is None]
    if missing:
        raise MissingImageError(
            f"missing source image(s): {', '.join(missing)}; no tag was changed",
            hint="build them first (`inv build.all`), or choose another --from tag",
        )
    problems = [r.problem for r in rules if r.problem]
    if problems and not allow_stale:
        raise ConfigError(
            problems[0], hint="pass --root (the monorepo), or --allow-stale to tag without it"
        )
    actions: list[TagAction] = []
    bad: list[str] = []
    expected = ""
    for svc, src, dst in refs:
        img = found[src]
        assert img is not None
        failing = [v for v in judge(svc, img, rules) if not v.fresh]
        why = ", ".join(v.state for v in failing)
        if failing:
            bad.append(f"{src} ({why})")
            if not expected:  # what the first stale image fails: the schema, or its inputs
                first = failing[0]
                expected = (
                    f"not built from the current schema ({first.expected})"
                    if first.check == SCHEMA_LABEL
                    else f"not what the checkout would build now (input key {first.expected})"
                )
        before = found.get(dst)
        actions.append(
            TagAction(svc, src, dst, img.id, before.id if before else None, not failing, why)
        )
    if bad and not allow_stale:
        raise StaleImageError(
            f"{expected}: {', '.join(bad)}; no tag was changed",
            hint="`inv build.all` rebuilds them from the checkout, or pass --allow-stale",
        )
    return TagPlan(actions=tuple(actions))


@dataclass
class TagRecord:
    """What :func:`apply_tags` wrote so far; the task reads ``complete`` when a signal
    arrives after the last tag."""

    plan: TagPlan
    written: list[TagAction] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.written) == len(self.plan.actions)


def apply_tags(
    client: docker.DockerClient, plan: TagPlan, record: TagRecord | None = None
) -> TagRecord:
    """Write every tag; if one fails or a signal arrives first, put back the ones written."""
    record = record if record is not None else TagRecord(plan)
    pending: TagAction | None = None
    try:
        for action in plan.actions:
            pending = action
            repo, tag = Ref.parse(action.target).name_and_tag()
            if not client.api.tag(action.image_id, repo, tag, force=True):
                raise CommandFailed(f"the engine refused to tag {action.source}")
            record.written.append(action)
            pending = None
    except BaseException as exc:
        if record.complete:
            raise  # every tag is written: nothing to undo
        undo = [*record.written, *([pending] if pending else [])]
        with held_signals():
            failed = rollback(client, undo)
        signalled = isinstance(exc, Interrupted | KeyboardInterrupt)
        # a refused tag was not written; one cut short by a signal may have been
        summary = undo_summary(undo if signalled else record.written, failed)
        if signalled:
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            name = signal.Signals(signum).name
            raise Interrupted(signum, f"interrupted by {name} while tagging; {summary}") from None
        if not isinstance(exc, Exception):
            raise
        what = f"tagging {pending.source} as {pending.target}" if pending else "tagging"
        raise CommandFailed(
            f"{what} failed ({engine_message(exc)}); {summary}",
            hint="check the engine (`inv docker.ensure`) and rerun",
        ) from exc
    return record


def staging_lock(engine: EngineTarget, registry: str) -> AbstractContextManager[None]:
    """``staging.tag``'s lock of ``registry``'s staging tags on ``engine`` (a second run at
    once is refused, naming the first)."""
    import os

    from tasks.lib import locks

    return locks.holding(
        locks.lock_path("staging-tag", engine, registry, os.environ),
        "staging.tag",
        what="the lock of staging tags",
        refused=f"is tagging {registry}'s staging images on this engine",
        hint="wait for it to end (two at once can leave a mix of old and new tags), or stop it",
    )


def rollback(
    client: docker.DockerClient, actions: Sequence[TagAction]
) -> list[tuple[TagAction, str]]:
    """Put each target back as it was (last written first); returns what could not be. A
    target that no longer names the image this run wrote (another run, or another machine
    on the same engine, tagged it since) is left as it is, and said."""
    from docker.errors import NotFound

    failed: list[tuple[TagAction, str]] = []
    try:  # one call: what each target names now
        now = find_images(client, [a.target for a in actions if a.image_id])
    except Exception:  # no answer: the undo below is tried, and says what failed
        now = {}
    for a in reversed(actions):
        repo, tag = Ref.parse(a.target).name_and_tag()
        if a.target in now and (found := _id(now[a.target])) not in (a.image_id, a.previous_id):
            done = f"tagged it {short_id(found)}" if found else "removed it"
            failed.append((a, f"another run {done} meanwhile: left as it is"))
            continue
        try:
            if a.previous_id:
                client.api.tag(a.previous_id, repo, tag, force=True)
            else:
                client.api.remove_image(a.target, noprune=True)
        except NotFound:
            if a.previous_id:
                failed.append((a, f"its old image {short_id(a.previous_id)} is gone"))
        except Exception as exc:
            failed.append((a, engine_message(exc)))
    return failed


def _id(image: LocalImage | None) -> str | None:
    return image.id if image is not None else None


def undo_summary(undone: Sequence[TagAction], failed: Sequence[tuple[TagAction, str]]) -> str:
    """What the rollback did, for the one error line."""
    if failed:
        bad = "; ".join(f"{a.target}: {why}" for a, why in failed)
        return f"the rollback failed for {bad} (check those tags by hand)"
    if not undone:
        return "no tag was changed"
    return (
        f"rolled back {', '.join(a.target for a in undone)} (put back as they were): "
        "no tag was changed"
    )


def interrupted_after(exc: Interrupted, plan: TagPlan) -> Interrupted:
    """A signal after every tag was written: say that the tagging is complete."""
    name = signal.Signals(exc.signum).name
    return Interrupted(
        exc.signum,
        f"interrupted by {name} after every tag was written "
        f"({', '.join(a.target for a in plan.actions)}): the tagging is complete, "
        "only the listing was cut short",
    )
