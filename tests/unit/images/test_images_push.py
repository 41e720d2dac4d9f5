"""Pushes without an engine: plans, tag sets, push streams, temporary tags and their record."""

from __future__ import annotations

import re
import signal
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.config import Settings, resolve
from tasks.lib.errors import ConfigError, Interrupted, MissingImageError
from tasks.lib.images import push, refs
from tasks.lib.images.journal import Journal, TempTag
from tasks.lib.output import Output
from tasks.lib.progress import NullProgress, Progress, Status
from tests.unit.images.fakes import DOWN_STREAM, OK_STREAM, REFUSED, FakeClient

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
URL = "127.0.0.1:5000"


@pytest.fixture
def s() -> Settings:
    return resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="t4unit")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.for_engine("unix:///t4.sock", {"XDG_STATE_HOME": str(tmp_path)})


def null(keys: Any) -> AbstractContextManager[Progress]:
    return NullProgress()


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


def test_plain_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """One protocol (out.progress): a line per layer state change, once per state."""
    fake = FakeClient()
    fake.add("a/meeshy-web:x")
    fake.images.default = OK_STREAM
    target = push.PushTarget("web", "a/meeshy-web:x", "a/meeshy-web:x")
    out = Output(plain=True)
    with out.progress("push", [target.remote]) as view:
        state = push.push_one(fake.sdk(), target, view)
    assert state.digest == "sha256:7eea5e23"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[a/meeshy-web:x] to docker.io"
    assert lines[-1].startswith("[a/meeshy-web:x] pushed in ")
    assert lines[-1].endswith(": sha256:7eea5e23")
    assert sum("layer 240facc7c15d: Pushing" in x for x in lines) == 1
    assert not any("Preparing" in x for x in lines)


# ------------------------------------------------------------------ push_images


def _fixture(stream: list[dict[str, Any]]) -> tuple[FakeClient, list[push.PushTarget]]:
    fake = FakeClient()
    fake.add("t4/meeshy-web:staging", "sha256:web")
    fake.add("t4/meeshy-gateway:staging", "sha256:gw")
    fake.images.default = stream
    targets = [
        push.PushTarget("web", "t4/meeshy-web:staging", f"{URL}/t4/meeshy-web:staging"),
        push.PushTarget("gateway", "t4/meeshy-gateway:staging", f"{URL}/t4/meeshy-gateway:staging"),
    ]
    return fake, targets


def run(fake: FakeClient, targets: list[push.PushTarget], journal: Journal) -> push.PushResult:
    return push.push_images(
        fake.sdk(), targets, engine="unix:///t4.sock", journal=journal, progress=null
    )


def test_push_success_leaves_the_store_as_it_was(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM)
    before = dict(fake.api.refs)
    result = run(fake, targets, journal)
    assert [o.status for o in result.outcomes] == [Status.PUSHED, Status.PUSHED]
    assert [o.digest for o in result.outcomes] == ["sha256:7eea5e23"] * 2
    assert fake.images.pushed == [t.remote for t in targets]
    # temporary tags gone, and the digest references the push added with them
    assert fake.api.refs == before
    assert result.error() is None
    assert journal.read() == []
    assert result.to_json()["pushes"][0]["status"] == "pushed"


def test_temporary_tags_are_recorded_before_they_exist(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM)
    seen: list[list[str]] = []
    fake.images.on_push = lambda ref: seen.append([e.ref for e in journal.read()])
    run(fake, targets, journal)
    assert seen[0] == [t.remote for t in targets]


def test_in_band_error_stops_and_says_nothing_was_pushed(journal: Journal) -> None:
    fake, targets = _fixture(DOWN_STREAM)
    before = dict(fake.api.refs)
    result = run(fake, targets, journal)
    assert [o.status for o in result.outcomes] == [Status.FAILED, Status.SKIPPED]
    error = result.error()
    assert error is not None
    line = error.line()
    assert f"push of {URL}/t4/meeshy-web:staging to registry {URL} failed" in line
    assert "connection refused" in line
    assert "nothing was pushed" in line
    assert "before it were pushed" not in line
    assert "\n" not in line
    assert fake.images.pushed == [f"{URL}/t4/meeshy-web:staging"]  # stopped
    assert fake.api.refs == before


def test_failure_after_a_push_names_what_was_pushed(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM)
    fake.images.streams[f"{URL}/t4/meeshy-gateway:staging"] = DOWN_STREAM
    result = run(fake, targets, journal)
    error = result.error()
    assert error is not None
    assert f"pushed before it: {URL}/t4/meeshy-web:staging" in error.line()
    assert [t.remote for t in result.pushed] == [f"{URL}/t4/meeshy-web:staging"]


def test_stream_without_digest_is_an_error(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM[:3])
    error = run(fake, targets, journal).error()
    assert error is not None
    assert "without a digest" in error.line()


def test_missing_source_pushes_nothing(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM)
    targets.append(
        push.PushTarget(
            "translator", "t4/meeshy-translator:staging", "t4/meeshy-translator:staging"
        )
    )
    with pytest.raises(MissingImageError, match="t4/meeshy-translator:staging"):
        run(fake, targets, journal)
    assert fake.images.pushed == []


def test_a_leftover_tag_of_another_image_is_put_back(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM)
    fake.add(f"{URL}/t4/meeshy-web:staging", "sha256:busybox")  # the user's own tag
    before = dict(fake.api.refs)
    run(fake, targets, journal)
    assert fake.api.refs == before


def test_signal_during_a_push_puts_the_temporary_tags_back(journal: Journal) -> None:
    fake, targets = _fixture(OK_STREAM)
    before = dict(fake.api.refs)

    def interrupt(ref: str) -> None:
        if ref.endswith("meeshy-gateway:staging"):
            raise Interrupted(signal.SIGTERM)

    fake.images.on_push = interrupt
    with pytest.raises(Interrupted) as info:
        run(fake, targets, journal)
    assert fake.api.refs == before
    # every tag is put back; the cut push's entry stays, its tag marked as put back, for
    # the digest reference the engine may still add (see the next test)
    gw = f"{URL}/t4/meeshy-gateway:staging"
    assert [(e.ref, e.tag_restored) for e in journal.read()] == [(gw, True)]
    line = info.value.line()
    assert f"while pushing {URL}/t4/meeshy-gateway:staging" in line
    assert "it may have reached the registry" in line
    assert f"pushed: {URL}/t4/meeshy-web:staging" in line
    assert "the temporary tags were put back" in line


def test_a_cut_push_that_ends_in_the_engine_later_leaves_nothing_after_the_next_run(
    journal: Journal,
) -> None:
    """Found by review: SIGINT while the registry stored the manifest. The run put its tags
    back and said "nothing was pushed"; then the engine finished the push (the registry had
    the tag) and added a digest reference, ``127.0.0.1:P/ns/meeshy-gateway@sha256:...``,
    that no record named: it outlived the run for good."""
    fake, targets = _fixture(OK_STREAM)
    before = dict(fake.api.refs)
    late = f"{URL}/t4/meeshy-gateway@sha256:7eea5e23"

    def interrupt(ref: str) -> None:
        if ref.endswith("meeshy-gateway:staging"):
            raise Interrupted(signal.SIGINT)

    fake.images.on_push = interrupt
    targets = targets[1:]  # gateway only: cut before any push ended
    with pytest.raises(Interrupted) as info:
        run(fake, targets, journal)
    line = info.value.line()
    assert "it may have reached the registry" in line and "nothing was pushed" not in line
    fake.api.refs[late] = "sha256:gw"  # the engine ends the push after the run put back
    fake.images.on_push = None
    result = run(fake, targets, journal)  # the next push (or any push through the engine)
    assert fake.api.refs == before
    assert result.cleaned == ()  # no tag was left to put back: not reported as one
    assert journal.read() == []


def test_a_killed_run_is_cleaned_by_the_next(journal: Journal) -> None:
    """A run killed after tagging left its temporary tags (and the record); the next run
    puts them back as they were before the killed run, not as it found them."""
    fake, targets = _fixture(OK_STREAM)
    before = dict(fake.api.refs)
    fake.add(f"{URL}/t4/meeshy-web:staging", "sha256:web")  # what the killed run made
    fake.api.refs[f"{URL}/t4/meeshy-web@sha256:7eea5e23"] = "sha256:web"  # and its push
    with journal.locked():
        journal.add(TempTag(f"{URL}/t4/meeshy-web:staging", "sha256:web", None, ()))
    result = run(fake, targets, journal)
    assert [e.ref for e in result.cleaned] == [f"{URL}/t4/meeshy-web:staging"]
    assert fake.api.refs == before
    assert journal.read() == []


def test_a_killed_run_before_its_tag_changes_nothing(journal: Journal) -> None:
    """Killed between recording and tagging: the user's tag of that name stays."""
    fake, targets = _fixture(OK_STREAM)
    fake.add(f"{URL}/t4/meeshy-web:staging", "sha256:users")
    before = dict(fake.api.refs)
    with journal.locked():
        journal.add(TempTag(f"{URL}/t4/meeshy-web:staging", "sha256:web", "sha256:users", ()))
    result = run(fake, targets, journal)
    assert fake.api.refs == before
    assert result.cleaned == ()  # nothing to put back: not reported as put back
    assert not journal.path.exists()


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


def test_a_push_without_registry_url_also_cleans_what_a_killed_run_left(
    journal: Journal,
) -> None:
    fake, _ = _fixture(OK_STREAM)
    before = dict(fake.api.refs)
    fake.add(f"{URL}/t4/meeshy-web:staging", "sha256:web")
    with journal.locked():
        journal.add(TempTag(f"{URL}/t4/meeshy-web:staging", "sha256:web", None, ()))
    plain = [push.PushTarget("web", "t4/meeshy-web:staging", "t4/meeshy-web:staging")]
    result = run(fake, plain, journal)
    assert [e.ref for e in result.cleaned] == [f"{URL}/t4/meeshy-web:staging"]
    assert fake.api.refs == {**before, "t4/meeshy-web@sha256:7eea5e23": "sha256:web"}
    assert not journal.path.exists()


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
