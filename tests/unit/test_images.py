"""Offline tests of tasks.lib.images: tag plans, push streams, verdicts (no engine)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from invoke import Config, Context, Exit

from tasks.lib import images
from tasks.lib.config import SCHEMA_LABEL, Settings, defaults, resolve
from tasks.lib.errors import CommandFailed, ConfigError
from tasks.lib.output import Output

if TYPE_CHECKING:
    from docker import DockerClient

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
CURRENT = "a" * 64
OTHER = "b" * 64


@pytest.fixture
def s() -> Settings:
    return resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="t4unit")


def img(ref: str, schema: str | None = CURRENT, **labels: str) -> images.LocalImage:
    lab = dict(labels)
    if schema is not None:
        lab[SCHEMA_LABEL] = schema
    digest = hashlib.sha256(ref.encode()).hexdigest()
    return images.LocalImage(f"sha256:{digest}", (ref,), "2026-11-02T10:11:12.5Z", 1000, lab)


# ------------------------------------------------------------------ refs and names


@pytest.mark.parametrize(
    ("ref", "repo", "tag", "registry"),
    [
        pytest.param(
            "isopen/meeshy-web:latest", "isopen/meeshy-web", "latest", "docker.io", id="hub"
        ),
        pytest.param(
            "127.0.0.1:5000/isopen/meeshy-web:v1",
            "127.0.0.1:5000/isopen/meeshy-web",
            "v1",
            "127.0.0.1:5000",
            id="host-port",
        ),
        pytest.param("localhost/x", "localhost/x", "latest", "localhost", id="no-tag"),
        pytest.param(
            "reg.example.com/a/b:c", "reg.example.com/a/b", "c", "reg.example.com", id="dotted"
        ),
    ],
)
def test_split_ref_and_registry(ref: str, repo: str, tag: str, registry: str) -> None:
    assert images.split_ref(ref) == (repo, tag)
    assert images.registry_of(ref) == registry


@pytest.mark.parametrize("url", ["127.0.0.1:5000", "registry.example.com", "[::1]:5000", ""])
def test_registry_url_ok(url: str) -> None:
    assert images.check_registry_url(url) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "host:5000/path", "bad host", ":5000"])
def test_registry_url_rejected(url: str) -> None:
    with pytest.raises(ConfigError, match="not host:port"):
        images.check_registry_url(url)


def test_staging_refs(s: Settings) -> None:
    refs = images.staging_refs(s, images.select_services(s, []), "latest", "staging")
    assert refs == [
        ("gateway", "t4unit/meeshy-gateway:latest", "t4unit/meeshy-gateway:staging"),
        ("translator", "t4unit/meeshy-translator:latest", "t4unit/meeshy-translator:staging"),
        ("web", "t4unit/meeshy-web:latest", "t4unit/meeshy-web:staging"),
    ]


def test_staging_refs_only_and_bad_flags(s: Settings) -> None:
    refs = images.staging_refs(s, images.select_services(s, ["web", "web"]), "v1", "rc")
    assert refs == [("web", "t4unit/meeshy-web:v1", "t4unit/meeshy-web:rc")]
    with pytest.raises(ConfigError, match="unknown service 'nope'"):
        images.select_services(s, ["nope"])
    with pytest.raises(ConfigError, match="both 'x'"):
        images.staging_refs(s, [], "x", "x")
    with pytest.raises(ConfigError, match="--to '-bad'"):
        images.staging_refs(s, [], "latest", "-bad")


# ------------------------------------------------------------------ staging tag plan


def refs3(s: Settings) -> list[tuple[str, str, str]]:
    return images.staging_refs(s, images.select_services(s, []), "latest", "staging")


def test_tag_plan_all_present(s: Settings) -> None:
    refs = refs3(s)
    found = {src: img(src) for _, src, _ in refs}
    plan = images.plan_staging_tags(refs, found, CURRENT, allow_stale=False)
    assert [(a.source, a.target) for a in plan.actions] == [(r[1], r[2]) for r in refs]
    assert plan.stale == ()
    assert all(a.image_id == found[a.source].id for a in plan.actions)


def test_tag_plan_missing_refuses_all(s: Settings) -> None:
    refs = refs3(s)
    found: dict[str, images.LocalImage | None] = {src: img(src) for _, src, _ in refs}
    found["t4unit/meeshy-translator:latest"] = None
    with pytest.raises(images.MissingImageError) as info:
        images.plan_staging_tags(refs, found, CURRENT, allow_stale=True)
    msg = info.value.line()
    assert "t4unit/meeshy-translator:latest" in msg
    assert "no tag was changed" in msg
    assert "meeshy-gateway" not in msg


@pytest.mark.parametrize("label", [OTHER, None], ids=["other-schema", "unlabelled"])
def test_tag_plan_stale_refused(s: Settings, label: str | None) -> None:
    refs = refs3(s)
    found = {src: img(src) for _, src, _ in refs}
    found["t4unit/meeshy-web:latest"] = img("t4unit/meeshy-web:latest", schema=label)
    with pytest.raises(images.StaleImageError) as info:
        images.plan_staging_tags(refs, found, CURRENT, allow_stale=False)
    msg = info.value.line()
    assert "t4unit/meeshy-web:latest" in msg
    assert "inv build.all" in msg
    assert "--allow-stale" in msg
    assert "gateway" not in msg


def test_tag_plan_allow_stale(s: Settings) -> None:
    refs = refs3(s)
    found = {src: img(src) for _, src, _ in refs}
    found["t4unit/meeshy-web:latest"] = img("t4unit/meeshy-web:latest", schema=OTHER)
    plan = images.plan_staging_tags(refs, found, CURRENT, allow_stale=True)
    assert len(plan.actions) == 3
    assert plan.stale == ("t4unit/meeshy-web:latest",)


def test_tag_plan_without_schema_file(s: Settings) -> None:
    refs = refs3(s)
    found = {src: img(src) for _, src, _ in refs}
    with pytest.raises(ConfigError, match="schema file is missing"):
        images.plan_staging_tags(refs, found, None, allow_stale=False)
    assert len(images.plan_staging_tags(refs, found, None, allow_stale=True).actions) == 3


class FakeApi:
    def __init__(self, fail_on: str = "") -> None:
        self.tags: dict[str, str] = {}
        self.fail_on = fail_on

    def tag(self, image: str, repo: str, tag: str, force: bool = False) -> bool:
        from docker.errors import APIError

        if f"{repo}:{tag}" == self.fail_on:
            raise APIError("boom")
        self.tags[f"{repo}:{tag}"] = image
        return True

    def remove_image(self, ref: str, noprune: bool = False) -> None:
        self.tags.pop(ref, None)


class FakeImage:
    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs


class FakeImages:
    def __init__(self, api: FakeApi, stream: list[dict[str, Any]] | None = None) -> None:
        self.api = api
        self.stream = stream or []
        self.pushed: list[str] = []

    def get(self, ref: str) -> FakeImage:
        from docker.errors import ImageNotFound

        if ref not in self.api.tags:
            raise ImageNotFound(ref)
        return FakeImage({"Id": self.api.tags[ref], "RepoTags": [ref], "Size": 1})

    def push(self, repo: str, tag: str, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        self.pushed.append(f"{repo}:{tag}")
        yield from self.stream


class FakeClient:
    """Stands in for the SDK client in logic tests (rollback, stream parsing); the real
    engine and registry are exercised in tests/integration."""

    def __init__(self, api: FakeApi, stream: list[dict[str, Any]] | None = None) -> None:
        self.api = api
        self.images = FakeImages(api, stream)


def fake_client(api: FakeApi, stream: list[dict[str, Any]] | None = None) -> DockerClient:
    return cast("DockerClient", FakeClient(api, stream))


def test_apply_tags_rolls_back(s: Settings) -> None:
    refs = refs3(s)
    found = {src: img(src) for _, src, _ in refs}
    plan = images.plan_staging_tags(refs, found, CURRENT, allow_stale=False)
    api = FakeApi(fail_on="t4unit/meeshy-web:staging")
    api.tags["t4unit/meeshy-gateway:staging"] = "sha256:old"
    with pytest.raises(CommandFailed, match="restored"):
        images.apply_tags(fake_client(api), plan)
    assert api.tags == {"t4unit/meeshy-gateway:staging": "sha256:old"}


# ------------------------------------------------------------------ push streams

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
    assert images.stream_error(item) == error


def test_push_state_success() -> None:
    state = images.PushState("r")
    for item in OK_STREAM:
        state.feed(item)
    assert state.error is None
    assert state.digest == "sha256:7eea5e23"
    assert set(state.layers) == {"7cb1a1351ee7", "240facc7c15d"}
    assert all(layer.done for layer in state.layers.values())
    assert state.bytes_total == 1982256
    assert state.bytes_done == 1982256


def test_push_state_error_in_band() -> None:
    state = images.PushState("r")
    for item in DOWN_STREAM:
        state.feed(item)
    assert state.error == REFUSED
    assert state.digest is None


def _push_fixture(stream: list[dict[str, Any]]) -> tuple[FakeClient, list[images.PushTarget]]:
    api = FakeApi()
    api.tags["t4/meeshy-web:staging"] = "sha256:web"
    api.tags["t4/meeshy-gateway:staging"] = "sha256:gw"
    client = FakeClient(api, stream)
    targets = [
        images.PushTarget("web", "t4/meeshy-web:staging", "127.0.0.1:5000/t4/meeshy-web:staging"),
        images.PushTarget(
            "gateway", "t4/meeshy-gateway:staging", "127.0.0.1:5000/t4/meeshy-gateway:staging"
        ),
    ]
    return client, targets


def test_push_all_success_removes_temporary_tags() -> None:
    client, targets = _push_fixture(OK_STREAM)
    out = Output(plain=True)
    results = images.push_all(cast("DockerClient", client), targets, images.PlainPushReporter(out))
    assert [r.digest for r in results] == ["sha256:7eea5e23"] * 2
    assert client.images.pushed == [t.remote for t in targets]
    assert set(client.api.tags) == {"t4/meeshy-web:staging", "t4/meeshy-gateway:staging"}


def test_push_all_in_band_error_stops_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    client, targets = _push_fixture(DOWN_STREAM)
    with pytest.raises(CommandFailed) as info:
        images.push_all(
            cast("DockerClient", client), targets, images.PlainPushReporter(Output(plain=True))
        )
    line = info.value.line()
    assert "127.0.0.1:5000/t4/meeshy-web:staging" in line
    assert "registry 127.0.0.1:5000" in line
    assert "connection refused" in line
    assert "\n" not in line
    assert client.images.pushed == ["127.0.0.1:5000/t4/meeshy-web:staging"]  # stopped
    assert set(client.api.tags) == {"t4/meeshy-web:staging", "t4/meeshy-gateway:staging"}


def test_push_all_stream_without_digest_is_an_error() -> None:
    client, targets = _push_fixture(OK_STREAM[:3])
    with pytest.raises(CommandFailed, match="without a digest"):
        images.push_all(
            cast("DockerClient", client), targets, images.PlainPushReporter(Output(plain=True))
        )


def test_push_all_missing_source_pushes_nothing() -> None:
    client, targets = _push_fixture(OK_STREAM)
    targets.append(
        images.PushTarget(
            "translator", "t4/meeshy-translator:staging", "t4/meeshy-translator:staging"
        )
    )
    with pytest.raises(images.MissingImageError, match="t4/meeshy-translator:staging"):
        images.push_all(
            cast("DockerClient", client), targets, images.PlainPushReporter(Output(plain=True))
        )
    assert client.images.pushed == []


def test_plan_pushes_and_tag_sets(s: Settings) -> None:
    svcs = images.select_services(s, [])
    tags = {svc.name: images.push_tags(s, svc) for svc in svcs}
    assert tags == {
        "gateway": ["v1.0.40", "latest"],
        "translator": ["v1.0.0", "latest", "cpu"],
        "web": ["v1.0.41", "latest"],
    }
    targets = images.plan_pushes(s, svcs, tags, registry_url="127.0.0.1:5000")
    assert [t.remote for t in targets][:3] == [
        "127.0.0.1:5000/t4unit/meeshy-gateway:v1.0.40",
        "127.0.0.1:5000/t4unit/meeshy-gateway:latest",
        "127.0.0.1:5000/t4unit/meeshy-translator:v1.0.0",
    ]
    assert targets[0].source == "t4unit/meeshy-gateway:v1.0.40"
    assert targets[0].registry == "127.0.0.1:5000"
    plain = images.plan_pushes(s, svcs[:1], tags)
    assert [(t.source, t.remote, t.registry) for t in plain] == [
        ("t4unit/meeshy-gateway:v1.0.40", "t4unit/meeshy-gateway:v1.0.40", "docker.io"),
        ("t4unit/meeshy-gateway:latest", "t4unit/meeshy-gateway:latest", "docker.io"),
    ]


def test_plain_reporter_lines(capsys: pytest.CaptureFixture[str]) -> None:
    target = images.PushTarget("web", "a/meeshy-web:x", "a/meeshy-web:x")
    rep = images.PlainPushReporter(Output(plain=True))
    state = images.PushState(target.remote)
    rep.start(target)
    for item in OK_STREAM:
        rep.update(target, state, state.feed(item))
    rep.finish(target, state)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "push a/meeshy-web:x -> docker.io"
    assert lines[-1] == "pushed a/meeshy-web:x sha256:7eea5e23"
    assert sum("240facc7c15d: Pushing" in x for x in lines) == 1
    assert not any("Preparing" in x for x in lines)


# ------------------------------------------------------------------ validation verdicts


def judge(
    image: images.LocalImage | None,
    files: Mapping[str, bytes | None] | None = None,
    revision: str = "abc1234",
) -> images.ImageReport:
    return images.judge_image(
        "gateway",
        "t4/meeshy-gateway:v1.0.40",
        image,
        expected_version="1.0.40",
        expected_revision=revision,
        schema_sha=hashlib.sha256(b"schema").hexdigest(),
        files=files or {},
    )


GOOD_SHA = hashlib.sha256(b"schema").hexdigest()
GOOD_LABELS = {
    images.VERSION_LABEL: "1.0.40",
    images.REVISION_LABEL: "abc1234",
}


def test_judge_all_pass() -> None:
    image = img("t4/meeshy-gateway:v1.0.40", schema=GOOD_SHA, **GOOD_LABELS)
    report = judge(image, {"/app/a": b"schema", "/app/b": b"schema"})
    assert report.ok
    assert [c.name for c in report.checks] == [
        "exists",
        images.VERSION_LABEL,
        images.REVISION_LABEL,
        SCHEMA_LABEL,
        "file /app/a",
        "file /app/b",
    ]


def test_judge_missing_image() -> None:
    report = judge(None)
    assert not report.ok
    assert report.failures()[0].name == "exists"
    assert "t4/meeshy-gateway:v1.0.40" in report.failures()[0].detail


@pytest.mark.parametrize(
    ("labels", "schema", "files", "failing"),
    [
        pytest.param(
            {**GOOD_LABELS, images.VERSION_LABEL: "1.0.39"},
            GOOD_SHA,
            {},
            [images.VERSION_LABEL],
            id="wrong-version",
        ),
        pytest.param(
            {images.REVISION_LABEL: "abc1234"},
            GOOD_SHA,
            {},
            [images.VERSION_LABEL],
            id="no-version",
        ),
        pytest.param(
            {**GOOD_LABELS, images.REVISION_LABEL: "def5678"},
            GOOD_SHA,
            {},
            [images.REVISION_LABEL],
            id="other-revision",
        ),
        pytest.param(GOOD_LABELS, OTHER, {}, [SCHEMA_LABEL], id="stale-label"),
        pytest.param(GOOD_LABELS, None, {}, [SCHEMA_LABEL], id="no-schema-label"),
        pytest.param(GOOD_LABELS, GOOD_SHA, {"/a": b"old schema"}, ["file /a"], id="file-differs"),
        pytest.param(GOOD_LABELS, GOOD_SHA, {"/a": None}, ["file /a"], id="file-missing"),
    ],
)
def test_judge_failures(
    labels: dict[str, str],
    schema: str | None,
    files: dict[str, bytes | None],
    failing: list[str],
) -> None:
    report = judge(img("t4/meeshy-gateway:v1.0.40", schema=schema, **labels), files)
    assert not report.ok
    assert [c.name for c in report.failures()] == failing


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("abc1234", "abc1234", True),
        ("abc1234", "abc1234def", True),  # a longer abbreviation of the same commit
        ("abc1234", "abc9999", False),
        ("abc1234", "", False),
        ("abc1234", "local", False),
        ("local", "anything", True),
        ("local", "", False),
    ],
)
def test_revision_matches(expected: str, actual: str, ok: bool) -> None:
    assert images.revision_matches(expected, actual)[0] is ok


# ------------------------------------------------------------------ listing, archives


def test_image_rows_meeshy_only_and_per_tag() -> None:
    a = images.LocalImage(
        "sha256:" + "1" * 64,
        ("t4/meeshy-web:latest", "t4/meeshy-web:staging", "busybox:latest"),
        "2026-11-02T10:11:12.123Z",
        2000,
        {SCHEMA_LABEL: CURRENT, images.VERSION_LABEL: "1.0.41"},
    )
    rows = images.image_rows([a], CURRENT)
    assert [(r.repository, r.tags, r.schema_state, r.version) for r in rows] == [
        ("t4/meeshy-web", ("latest", "staging"), "match", "1.0.41"),
    ]
    per_tag = images.image_rows([a], OTHER, per_tag=True)
    assert [(r.tags, r.schema_state) for r in per_tag] == [
        (("latest",), "stale"),
        (("staging",), "stale"),
    ]
    assert images.format_created(a.created) == "2026-11-02 10:11:12"
    assert rows[0].as_json()["schema"] == "match"


def _tar(name: str, data: bytes | None = None, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
        else:
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


def test_first_member() -> None:
    assert images._first_member(_tar("schema.prisma", b"x")) == (b"x", None)
    assert images._first_member(_tar("schema.prisma", link="../s.prisma")) == (None, "../s.prisma")


def test_schema_sha256_is_file_bytes(s: Settings) -> None:
    path = s.root / s.schema
    assert s.schema_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ task wiring (no engine)


def _ctx() -> Context:
    return Context(config=Config(overrides={"meeshy": defaults()}))


def test_images_push_dry_run_needs_no_engine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import images as image_tasks

    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing answers there
    image_tasks.images_push(
        _ctx(),
        service=["translator"],
        registry_url="127.0.0.1:5000",
        dry_run=True,
        root=str(EXAMPLE),
        registry="t4unit",
    )
    out = capsys.readouterr().out
    assert "push 127.0.0.1:5000/t4unit/meeshy-translator:cpu -> 127.0.0.1:5000" in out
    assert out.count("push 127.0.0.1:5000/") == 3


def test_bad_input_is_one_line_and_nonzero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import staging as staging_tasks

    monkeypatch.setenv("NO_COLOR", "1")
    with pytest.raises(Exit) as info:
        staging_tasks.staging_push(_ctx(), registry_url="http://x", dry_run=True, root=str(EXAMPLE))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("ERROR: --registry-url 'http://x' is not host:port")


def test_engine_down_fails_fast(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import images as image_tasks

    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    monkeypatch.setenv("NO_COLOR", "1")
    with pytest.raises(Exit) as info:
        image_tasks.images_list(_ctx(), root=str(EXAMPLE))
    assert info.value.code == 3
    assert "Cannot reach the Docker engine" in capsys.readouterr().err
