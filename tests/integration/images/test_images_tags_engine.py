"""staging.tag's all-or-nothing application (``tags.apply_tags`` and its rollback) on the real
engine, with images of the test's own. Faults are real or injected around the real calls
(:mod:`tests.integration.images.faults`):

* a tag that fails: the source image is removed from the engine after the plan, so the
  engine refuses the tag for real ("No such image");
* a signal in the middle: ``Interrupted`` raised right after the real ``api.tag`` returned;
* another run retagging between two steps: a real retag, through the engine, from a hook
  after the real ``api.tag``;
* a rollback that fails: the old image removed for real, or the engine gone for the undo
  call (the hook sends that one call, for real, to an address where no engine listens).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.lib.config import SCHEMA_LABEL, Settings, resolve
from tasks.lib.errors import CommandFailed, Interrupted
from tasks.lib.images import freshness, refs, tags
from tasks.lib.images.store import find_images, short_id
from tests.integration.images.faults import HookedClient, OwnImages, dead_port, hooked, own

__all__ = ["dead_port", "hooked", "own"]  # the fixtures, imported explicitly

pytestmark = pytest.mark.engine
EXAMPLE = Path(__file__).resolve().parents[3] / "example"
CURRENT = "a" * 64
RULES = [freshness.SchemaLabel(CURRENT)]
SERVICES = ("gateway", "translator", "web")


class Staged:
    """Three fresh sources ``<ns>/meeshy-<svc>:latest``; ``<ns>/meeshy-gateway:staging``
    names an old image; the plan to tag them ``:staging``, made from the engine."""

    def __init__(self, own: OwnImages, client: HookedClient) -> None:
        self.own = own
        self.client = client
        ns = own.ns
        settings: Settings = resolve(
            {}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry=ns
        )
        wanted = tags.staging_refs(
            settings, refs.select_services(settings, []), "latest", "staging"
        )
        self.ids = {src: own.make(src, labels={SCHEMA_LABEL: CURRENT}) for _, src, _ in wanted}
        self.old = own.make(f"{ns}/meeshy-gateway:staging")
        found = find_images(client, [r for _, a, b in wanted for r in (a, b)])
        assert client.api.list_calls == 1  # sources and targets: one engine call
        self.plan = tags.plan_staging_tags(wanted, found, RULES, allow_stale=False)
        assert [a.previous_id for a in self.plan.actions] == [self.old, None, None]
        self.gateway, self.translator, self.web = (f"{ns}/meeshy-{s}" for s in SERVICES)

    def source_gone(self, repo: str) -> None:
        """Remove ``repo:latest``'s image from the engine: tagging it fails for real."""
        self.own.sdk.api.remove_image(f"{repo}:latest")

    def on_tag(self, ref: str, after: Callable[[], object]) -> None:
        """``after()`` runs once the engine wrote ``ref`` (the real call returned)."""

        def hook(image: str, tagged: str, real: Callable[[], bool]) -> bool:
            done = real()
            if tagged == ref:
                after()
            return done

        self.client.api.on_tag = hook


@pytest.fixture
def staged(own: OwnImages, hooked: HookedClient) -> Staged:
    return Staged(own, hooked)


def test_apply_writes_every_tag(staged: Staged, own: OwnImages) -> None:
    before = own.refs()
    record = tags.apply_tags(staged.client, staged.plan)
    assert record.complete
    assert record.written == list(staged.plan.actions)
    # exactly the three targets changed, each to its source's image; the old image is untagged
    assert own.refs() == before | {a.target: a.image_id for a in staged.plan.actions}
    assert staged.old not in own.refs().values()


def test_apply_failure_rolls_back(staged: Staged, own: OwnImages) -> None:
    staged.source_gone(staged.web)
    web_id = staged.ids[f"{staged.web}:latest"]
    before = own.refs()
    with pytest.raises(CommandFailed) as info:
        tags.apply_tags(staged.client, staged.plan)
    assert own.refs() == before  # the old gateway:staging is back, translator's removed
    assert info.value.line() == (
        f"tagging {staged.web}:latest as {staged.web}:staging failed "
        f"(No such image: {web_id}); rolled back {staged.gateway}:staging, "
        f"{staged.translator}:staging (put back as they were): no tag was changed: "
        "check the engine (`inv docker.ensure`) and rerun"
    )


def test_signal_midway_rolls_back_the_tag_being_written(staged: Staged, own: OwnImages) -> None:
    """The signal arrives after the engine wrote the 2nd tag but before the call returned."""
    before = own.refs()

    def interrupt() -> None:
        raise Interrupted(signal.SIGINT)

    staged.on_tag(f"{staged.translator}:staging", interrupt)
    record = tags.TagRecord(staged.plan)
    with pytest.raises(Interrupted) as info:
        tags.apply_tags(staged.client, staged.plan, record)
    assert own.refs() == before
    assert not record.complete
    assert info.value.exit_code == 130
    assert info.value.line() == (
        f"interrupted by SIGINT while tagging; rolled back {staged.gateway}:staging, "
        f"{staged.translator}:staging (put back as they were): no tag was changed"
    )  # the one being written too


def test_signal_after_every_tag_undoes_nothing(staged: Staged, own: OwnImages) -> None:
    record = tags.apply_tags(staged.client, staged.plan)
    tagged = own.refs()
    exc = tags.interrupted_after(Interrupted(signal.SIGTERM), staged.plan)
    assert record.complete
    assert exc.exit_code == 143
    assert "after every tag was written" in exc.line()
    assert "the tagging is complete" in exc.line()
    assert own.refs() == tagged
    assert all(tagged[a.target] == a.image_id for a in staged.plan.actions)


def test_rollback_that_fails_says_which_tag(staged: Staged, own: OwnImages, dead_port: str) -> None:
    """Putting gateway:staging back fails: the engine is gone for that call (the hook sends
    it, for real, to an address where no engine listens; every other call is the engine's)."""
    import docker

    staged.source_gone(staged.web)
    gone = docker.APIClient(base_url=f"tcp://{dead_port}", version="1.41")

    def lose_the_engine(image: str, ref: str, real: Callable[[], bool]) -> bool:
        if image != staged.old:
            return real()
        repo, _, tag = ref.rpartition(":")
        return gone.tag(image, repo, tag, force=True)

    staged.client.api.on_tag = lose_the_engine
    try:
        with pytest.raises(CommandFailed) as info:
            tags.apply_tags(staged.client, staged.plan)
    finally:
        gone.close()
    assert info.value.line().endswith(
        f"the rollback failed for {staged.gateway}:staging: the Docker engine went away: "
        "[Errno 111] Connection refused (check those tags by hand): check the engine (`inv "
        "docker.ensure`) and rerun"
    )
    now = own.refs()
    assert now[f"{staged.gateway}:staging"] == staged.ids[f"{staged.gateway}:latest"]
    assert f"{staged.translator}:staging" not in now  # the undo went on past the failure
    assert f"{staged.web}:staging" not in now


def test_rollback_of_a_tag_whose_old_image_is_gone_says_so(staged: Staged, own: OwnImages) -> None:
    """The old image gateway:staging named is removed (for real) once this run moved the
    tag, before the run fails: it cannot be put back, and the line names it."""
    staged.source_gone(staged.web)
    staged.on_tag(
        f"{staged.gateway}:staging", lambda: own.sdk.api.remove_image(staged.old)
    )  # untagged by this run's tag: removed without force
    with pytest.raises(CommandFailed) as info:
        tags.apply_tags(staged.client, staged.plan)
    assert info.value.line().endswith(
        f"the rollback failed for {staged.gateway}:staging: its old image "
        f"{short_id(staged.old)} is gone (check those tags by hand): check the engine "
        "(`inv docker.ensure`) and rerun"
    )
    now = own.refs()
    assert now[f"{staged.gateway}:staging"] == staged.ids[f"{staged.gateway}:latest"]
    assert f"{staged.translator}:staging" not in now
    assert staged.old not in now.values()


def test_a_rollback_leaves_a_tag_another_run_moved_and_says_so(
    staged: Staged, own: OwnImages
) -> None:
    """Two staging.tag at once (on two machines: the lock is per machine): while this run
    tags, another one writes gateway:staging; this run then fails and undoes. Putting its
    saved old image back would undo the other run's tag and leave a mix: it is left as the
    other run wrote it, and the line says so. The other run's tag is a real retag through
    the engine, right after this run wrote translator:staging."""
    theirs = own.make(f"{own.ns}/other:x")
    staged.source_gone(staged.web)
    before = own.refs()
    staged.on_tag(
        f"{staged.translator}:staging",
        lambda: own.sdk.api.tag(theirs, staged.gateway, "staging", force=True),
    )
    with pytest.raises(CommandFailed) as info:
        tags.apply_tags(staged.client, staged.plan)
    now = own.refs()
    assert now[f"{staged.gateway}:staging"] == theirs  # not put back
    assert now == before | {f"{staged.gateway}:staging": theirs}  # this run's own undone
    assert (
        f"the rollback failed for {staged.gateway}:staging: another run tagged it "
        f"{short_id(theirs)} meanwhile: left as it is (check those tags by hand)"
    ) in info.value.line()
