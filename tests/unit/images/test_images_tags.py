"""staging.tag's plan and its all-or-nothing application (no engine: a reference store)."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest

from tasks.lib.config import SCHEMA_LABEL, Settings, resolve
from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    Interrupted,
    MissingImageError,
    StaleImageError,
)
from tasks.lib.images import freshness, refs, tags
from tasks.lib.images.store import LocalImage, find_images
from tests.unit.images.fakes import FakeClient

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
CURRENT = "a" * 64
OTHER = "b" * 64
RULES = [freshness.SchemaLabel(CURRENT)]
INPUTS = "me.meeshy.inputs.sha256"


@pytest.fixture
def s() -> Settings:
    return resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="t4unit")


def img(ref: str, schema: str | None = CURRENT) -> LocalImage:
    labels = {SCHEMA_LABEL: schema} if schema is not None else {}
    digest = hashlib.sha256(ref.encode()).hexdigest()
    return LocalImage(f"sha256:{digest}", (ref,), 1_795_504_217, 1000, labels)


def refs3(s: Settings) -> list[tuple[str, str, str]]:
    return tags.staging_refs(s, refs.select_services(s, []), "latest", "staging")


def test_staging_refs(s: Settings) -> None:
    assert refs3(s) == [
        ("gateway", "t4unit/meeshy-gateway:latest", "t4unit/meeshy-gateway:staging"),
        ("translator", "t4unit/meeshy-translator:latest", "t4unit/meeshy-translator:staging"),
        ("web", "t4unit/meeshy-web:latest", "t4unit/meeshy-web:staging"),
    ]


def test_staging_refs_bad_flags(s: Settings) -> None:
    assert tags.staging_refs(s, [s.service("web")], "v1", "rc") == [
        ("web", "t4unit/meeshy-web:v1", "t4unit/meeshy-web:rc")
    ]
    with pytest.raises(ConfigError, match="both 'x'"):
        tags.staging_refs(s, [], "x", "x")
    with pytest.raises(ConfigError, match="--to '-bad'"):
        tags.staging_refs(s, [], "latest", "-bad")


def test_plan_all_present(s: Settings) -> None:
    wanted = refs3(s)
    found: dict[str, LocalImage | None] = {src: img(src) for _, src, _ in wanted}
    found["t4unit/meeshy-web:staging"] = img("old")
    plan = tags.plan_staging_tags(wanted, found, RULES, allow_stale=False)
    assert [(a.source, a.target) for a in plan.actions] == [(r[1], r[2]) for r in wanted]
    assert plan.stale == ()
    assert [a.previous_id for a in plan.actions] == [None, None, img("old").id]
    assert plan.to_json(dry_run=True)["tags"][0]["target"] == "t4unit/meeshy-gateway:staging"


def test_plan_missing_refuses_all(s: Settings) -> None:
    wanted = refs3(s)
    found: dict[str, LocalImage | None] = {src: img(src) for _, src, _ in wanted}
    found["t4unit/meeshy-translator:latest"] = None
    with pytest.raises(MissingImageError) as info:
        tags.plan_staging_tags(wanted, found, RULES, allow_stale=True)
    msg = info.value.line()
    assert "t4unit/meeshy-translator:latest" in msg
    assert "no tag was changed" in msg
    assert "meeshy-gateway" not in msg


@pytest.mark.parametrize("label", [OTHER, None], ids=["other-schema", "unlabelled"])
def test_plan_stale_refused(s: Settings, label: str | None) -> None:
    wanted = refs3(s)
    found: dict[str, LocalImage | None] = {src: img(src) for _, src, _ in wanted}
    found["t4unit/meeshy-web:latest"] = img("t4unit/meeshy-web:latest", schema=label)
    with pytest.raises(StaleImageError) as info:
        tags.plan_staging_tags(wanted, found, RULES, allow_stale=False)
    msg = info.value.line()
    assert info.value.exit_code == 4
    assert "not built from the current schema" in msg
    assert "t4unit/meeshy-web:latest" in msg
    assert "inv build.all" in msg
    assert "--allow-stale" in msg
    assert "gateway" not in msg


def test_plan_allow_stale(s: Settings) -> None:
    wanted = refs3(s)
    found: dict[str, LocalImage | None] = {src: img(src) for _, src, _ in wanted}
    found["t4unit/meeshy-web:latest"] = img("t4unit/meeshy-web:latest", schema=OTHER)
    plan = tags.plan_staging_tags(wanted, found, RULES, allow_stale=True)
    assert len(plan.actions) == 3
    assert plan.stale == ("t4unit/meeshy-web:latest",)


def test_plan_without_schema_file(s: Settings) -> None:
    wanted = refs3(s)
    found: dict[str, LocalImage | None] = {src: img(src) for _, src, _ in wanted}
    rules = [freshness.SchemaLabel(None)]
    with pytest.raises(ConfigError, match="schema file is missing"):
        tags.plan_staging_tags(wanted, found, rules, allow_stale=False)
    assert len(tags.plan_staging_tags(wanted, found, rules, allow_stale=True).actions) == 3


def test_a_freshness_rule_plugs_in(s: Settings) -> None:
    """Another rule (e.g. issue 8's input-key label) is one object with problem/__call__."""

    class InputsLabel:
        problem = None

        def __call__(self, service: str, image: LocalImage) -> freshness.Verdict:
            ok = image.label(INPUTS) == {"web": "k1"}.get(service)
            return freshness.Verdict(ok, INPUTS, "k1", "?", "", "inputs ?")

    wanted = refs3(s)
    found: dict[str, LocalImage | None] = {src: img(src) for _, src, _ in wanted}
    web = "t4unit/meeshy-web:latest"
    found[web] = LocalImage("sha256:w", (web,), 1, 1, {SCHEMA_LABEL: CURRENT, INPUTS: "k1"})
    with pytest.raises(StaleImageError) as info:
        tags.plan_staging_tags(wanted, found, [*RULES, InputsLabel()], allow_stale=False)
    line = info.value.line()
    assert "t4unit/meeshy-gateway:latest (inputs ?)" in line
    assert web not in line  # its key matches
    # the schema did not change: the line must not say it did (a hostile review saw it)
    assert line.startswith("not what the checkout would build now (input key k1): ")
    assert "schema" not in line


def _engine(s: Settings) -> tuple[FakeClient, tags.TagPlan]:
    fake = FakeClient()
    for _, src, _ in refs3(s):
        fake.add(src, **{SCHEMA_LABEL: CURRENT})
    old = fake.add("t4unit/meeshy-gateway:staging", "sha256:old")
    assert old == "sha256:old"
    wanted = refs3(s)
    found = find_images(fake.sdk(), [r for _, a, b in wanted for r in (a, b)])
    assert fake.api.list_calls == 1  # sources and targets: one engine call
    return fake, tags.plan_staging_tags(wanted, found, RULES, allow_stale=False)


def test_apply_writes_every_tag(s: Settings) -> None:
    fake, plan = _engine(s)
    record = tags.apply_tags(fake.sdk(), plan)
    assert record.complete
    for a in plan.actions:
        assert fake.api.refs[a.target] == a.image_id


def test_apply_failure_rolls_back(s: Settings) -> None:
    fake, plan = _engine(s)
    before = dict(fake.api.refs)
    fake.api.fail_on.add("t4unit/meeshy-web:staging")
    with pytest.raises(CommandFailed) as info:
        tags.apply_tags(fake.sdk(), plan)
    assert fake.api.refs == before  # the old gateway:staging is back, translator's removed
    line = info.value.line()
    assert "tagging t4unit/meeshy-web:latest as t4unit/meeshy-web:staging failed" in line
    assert (
        "rolled back t4unit/meeshy-gateway:staging, t4unit/meeshy-translator:staging "
        "(put back as they were): no tag was changed"
    ) in line


def test_signal_midway_rolls_back_the_tag_being_written(s: Settings) -> None:
    """The signal arrives after the engine wrote the 2nd tag but before the call returned."""
    fake, plan = _engine(s)
    before = dict(fake.api.refs)

    def interrupt(ref: str) -> None:
        if ref == "t4unit/meeshy-translator:staging":
            raise Interrupted(signal.SIGINT)

    fake.api.on_tag = interrupt
    record = tags.TagRecord(plan)
    with pytest.raises(Interrupted) as info:
        tags.apply_tags(fake.sdk(), plan, record)
    assert fake.api.refs == before
    assert not record.complete
    assert info.value.exit_code == 130
    line = info.value.line()
    assert line.startswith("interrupted by SIGINT while tagging; rolled back ")
    assert "t4unit/meeshy-translator:staging" in line  # the one being written too
    assert "no tag was changed" in line


def test_signal_after_every_tag_undoes_nothing(s: Settings) -> None:
    fake, plan = _engine(s)
    record = tags.apply_tags(fake.sdk(), plan)
    exc = tags.interrupted_after(Interrupted(signal.SIGTERM), plan)
    assert record.complete
    assert exc.exit_code == 143
    assert "after every tag was written" in exc.line()
    assert "the tagging is complete" in exc.line()


def test_rollback_that_fails_says_which_tag(s: Settings) -> None:
    fake, plan = _engine(s)
    fake.api.fail_on.add("t4unit/meeshy-web:staging")
    real_tag = fake.api.tag

    def tag_then_break(image: str, repo: str, tag: str, force: bool = False) -> bool:
        if image == "sha256:old":  # putting gateway:staging back fails too
            from docker.errors import APIError

            raise APIError("engine gone")
        return real_tag(image, repo, tag, force)

    fake.api.tag = tag_then_break  # type: ignore[method-assign]
    with pytest.raises(CommandFailed) as info:
        tags.apply_tags(fake.sdk(), plan)
    assert "the rollback failed for t4unit/meeshy-gateway:staging" in info.value.line()


def test_a_rollback_leaves_a_tag_another_run_moved_and_says_so(s: Settings) -> None:
    """Two staging.tag at once (on two machines: the lock is per machine): while this run
    tags, another one writes gateway:staging; this run then fails and undoes. Putting its
    saved old image back would undo the other run's tag and leave a mix: it is left as the
    other run wrote it, and the line says so."""
    fake, plan = _engine(s)
    before = dict(fake.api.refs)
    theirs = "sha256:" + "c" * 64
    fake.api.fail_on.add("t4unit/meeshy-web:staging")

    def other_run(ref: str) -> None:
        if ref == "t4unit/meeshy-translator:staging":  # after this run wrote gateway's
            fake.api.refs["t4unit/meeshy-gateway:staging"] = theirs

    fake.api.on_tag = other_run
    with pytest.raises(CommandFailed) as info:
        tags.apply_tags(fake.sdk(), plan)
    assert fake.api.refs["t4unit/meeshy-gateway:staging"] == theirs  # not put back
    assert fake.api.refs.get("t4unit/meeshy-translator:staging") == before.get(
        "t4unit/meeshy-translator:staging"
    )  # this run's own is undone
    assert (
        "the rollback failed for t4unit/meeshy-gateway:staging: another run tagged it "
        "cccccccccccc meanwhile: left as it is (check those tags by hand)"
    ) in info.value.line()
