"""Pushes without an engine: plans, tag sets, the parsing of recorded push streams, the
record of temporary tags. Pushes themselves (temporary tags, in-band errors, signals, killed
runs) run on the real engine and registry: tests/integration/images/
test_images_push_engine.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.config import Settings, resolve
from tasks.lib.errors import ConfigError
from tasks.lib.images import push, refs
from tasks.lib.images.journal import Journal, TempTag

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
URL = "127.0.0.1:5000"


@pytest.fixture
def s() -> Settings:
    return resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="t4unit")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.for_engine("unix:///t4.sock", {"XDG_STATE_HOME": str(tmp_path)})


# ------------------------------------------------------------------ plans and tag sets


def test_plan_pushes_and_tag_sets(s: Settings) -> None:
    svcs = refs.select_services(s, [])
    tag_sets = {svc.name: push.push_tags(s, svc) for svc in svcs}
    assert tag_sets == {
        "gateway": ["v1.0.40", "latest"],
        "translator": ["v1.0.0", "latest", "cpu"],
        "web": ["v1.0.41", "latest"],
    }
    targets = push.plan_pushes(s, svcs, tag_sets, registry_url=URL)
    assert [t.remote for t in targets][:3] == [
        f"{URL}/t4unit/meeshy-gateway:v1.0.40",
        f"{URL}/t4unit/meeshy-gateway:latest",
        f"{URL}/t4unit/meeshy-translator:v1.0.0",
    ]
    assert targets[0].source == "t4unit/meeshy-gateway:v1.0.40"
    assert targets[0].registry == URL
    assert targets[0].temporary
    plain = push.plan_pushes(s, svcs[:1], tag_sets)
    assert [(t.source, t.remote, t.registry, t.temporary) for t in plain] == [
        ("t4unit/meeshy-gateway:v1.0.40", "t4unit/meeshy-gateway:v1.0.40", "docker.io", False),
        ("t4unit/meeshy-gateway:latest", "t4unit/meeshy-gateway:latest", "docker.io", False),
    ]


def test_push_tag_pattern_errors(s: Settings) -> None:
    bad = resolve(
        {"services": {"web": {"push_tags": ["{nope}"]}}},
        env={},
        project_dir=EXAMPLE,
        root=str(EXAMPLE),
    )
    with pytest.raises(
        ConfigError, match=re.escape("meeshy.services.web.push_tags pattern '{nope}' is invalid")
    ):
        push.push_tags(bad, bad.service("web"))
    worse = resolve(
        {"services": {"web": {"push_tags": ["v {version}"]}}},
        env={},
        project_dir=EXAMPLE,
        root=str(EXAMPLE),
    )
    with pytest.raises(
        ConfigError, match=re.escape("push_tags entry 'v 1.0.41' is not a valid Docker tag")
    ):
        push.push_tags(worse, worse.service("web"))


def test_plan_refuses_a_registry_url_that_makes_a_name_docker_refuses(s: Settings) -> None:
    # found by review: the engine refused the temporary tag mid-run (exit 1, no hint)
    svcs = refs.select_services(s, ["web"])
    host = "a" * 250 + ".com:5000"
    with pytest.raises(ConfigError, match="255 characters"):
        push.plan_pushes(s, svcs, {"web": ["latest"]}, registry_url=host)


# ------------------------------------------------------------------ streams

# push streams as the engine sends them (the digest shortened): a push to a registry on
# loopback, and one while that registry was down
OK_STREAM: list[dict[str, Any]] = [
    {"status": "The push refers to repository [127.0.0.1:5000/t4/meeshy-web]"},
    {"status": "Preparing", "progressDetail": {}, "id": "7cb1a1351ee7"},
    {"status": "Preparing", "progressDetail": {}, "id": "240facc7c15d"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 33792, "total": 1982256},
        "progress": "[>   ]  33.79kB/1.982MB",
        "id": "240facc7c15d",
    },
    {
        "status": "Pushing",
        "progressDetail": {"current": 140800},
        "progress": " 140.8kB",
        "id": "7cb1a1351ee7",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "7cb1a1351ee7"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 1984512, "total": 1982256},
        "id": "240facc7c15d",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "240facc7c15d"},
    {"status": "staging: digest: sha256:7eea5e23 size: 736"},
    {"progressDetail": {}, "aux": {"Tag": "staging", "Digest": "sha256:7eea5e23", "Size": 736}},
]
REFUSED = 'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
DOWN_STREAM: list[dict[str, Any]] = [
    {"status": "The push refers to repository [127.0.0.1:5000/t4/meeshy-web]"},
    {"errorDetail": {"message": REFUSED}, "error": REFUSED},
]


@pytest.mark.parametrize(
    ("item", "error"),
    [
        pytest.param(
            {"errorDetail": {"message": "denied"}, "error": "denied"}, "denied", id="both"
        ),
        pytest.param({"error": "only error"}, "only error", id="error-only"),
        pytest.param({"errorDetail": {"message": "detail only"}}, "detail only", id="detail"),
        pytest.param({"status": "Pushed", "id": "x"}, None, id="status"),
        pytest.param({"progressDetail": {}, "aux": {"Digest": "sha256:1"}}, None, id="aux"),
    ],
)
def test_stream_error(item: dict[str, Any], error: str | None) -> None:
    assert push.stream_error(item) == error


def test_push_state_success() -> None:
    state = push.PushState("r")
    for item in OK_STREAM:
        state.feed(item)
    assert state.error is None
    assert state.digest == "sha256:7eea5e23"
    assert set(state.layers) == {"7cb1a1351ee7", "240facc7c15d"}
    assert all(layer.done for layer in state.layers.values())
    assert state.bytes_total == 1982256
    assert state.bytes_done == 1982256


def test_push_state_error_in_band() -> None:
    state = push.PushState("r")
    for item in DOWN_STREAM:
        state.feed(item)
    assert state.error == REFUSED
    assert state.digest is None


# ------------------------------------------------------------------ the record of temporary tags


def test_journal_round_trip_and_bad_file(journal: Journal) -> None:
    entry = TempTag("h:1/a/b:c", "sha256:1", "sha256:0", ("h:1/a/b@sha256:9",))
    with journal.locked():
        journal.add(entry)
        assert journal.read() == [entry]
        journal.discard([entry])
    assert journal.read() == []
    assert not journal.path.exists()
    journal.path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="the record of temporary push tags"):
        journal.read()


def test_journal_unwritable_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    journal = Journal.for_engine("e", {"XDG_STATE_HOME": str(blocker)})
    with pytest.raises(ConfigError, match="XDG_STATE_HOME"), journal.locked():
        pass


def test_one_engine_has_one_push_journal_however_it_is_spelled(tmp_path: Path) -> None:
    """A killed push's temporary tags are recorded per engine; the rerun must find them when
    it reaches the same engine another way (a hostile review: /var/run is /run here)."""
    from tasks.lib.engine import EngineTarget
    from tasks.lib.images.journal import Journal

    real = tmp_path / "run"
    real.mkdir()
    (tmp_path / "var-run").symlink_to(real)
    spellings = [f"unix://{real}/docker.sock", f"unix://{tmp_path}/var-run/docker.sock"]
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    paths = {
        Journal.for_engine(EngineTarget(env={"DOCKER_HOST": host}).identity, env).path
        for host in spellings
    }
    assert len(paths) == 1
    other = EngineTarget(env={"DOCKER_HOST": "tcp://127.0.0.1:2375"}).identity
    assert Journal.for_engine(other, env).path not in paths


def test_an_empty_registry_is_refused_for_a_push_but_not_with_a_registry_url() -> None:
    """INVOKE_MEESHY_REGISTRY= (empty, a CI variable unset) names images meeshy-<svc> with
    no namespace: fine for local builds, but a push would go to Docker Hub's library of
    official images. Refused before anything, saying what to set."""
    from tasks.lib.config import resolve
    from tasks.lib.errors import ConfigError

    bare = resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="")
    svcs = refs.select_services(bare, ["web"])
    with pytest.raises(ConfigError) as exc:
        push.plan_pushes(bare, svcs, {"web": ["latest"]})
    assert exc.value.exit_code == 2
    assert exc.value.line() == (
        "meeshy.registry is empty, so meeshy-web would be pushed to Docker Hub's library of "
        "official images (docker.io/library/meeshy-web), which refuses it: set "
        "meeshy.registry, DOCKER_REGISTRY or --registry (e.g. isopen, or "
        "localhost:5000/meeshy), or give --registry-url"
    )
    [t] = push.plan_pushes(bare, svcs, {"web": ["latest"]}, registry_url=URL)
    assert t.remote == f"{URL}/meeshy-web:latest"
