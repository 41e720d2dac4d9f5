"""staging.tag's plan, decided from the images' data (no engine). Its all-or-nothing
application and rollback run on the real engine: tests/integration/images/
test_images_tags_engine.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tasks.lib.config import SCHEMA_LABEL, Settings, resolve
from tasks.lib.errors import ConfigError, MissingImageError, StaleImageError
from tasks.lib.images import freshness, refs, tags
from tasks.lib.images.store import LocalImage

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
