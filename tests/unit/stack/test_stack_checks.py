"""App images (schema rule), status rows, health rows and the pull plan, on made-up
containers and images: no engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.compose.ports import Port
from tasks.lib.config import SCHEMA_LABEL, Settings, SshOptions, resolve
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError, MissingImageError, StaleImageError
from tasks.lib.images.store import LocalImage
from tasks.lib.progress import Status
from tasks.lib.stack.containers import ContainerState
from tasks.lib.stack.health import HttpCheck, compose_rows, engine_host, http_rows
from tasks.lib.stack.images import (
    AppImage,
    app_images,
    app_services,
    current_build,
    refuse_stale,
    schema_word,
    stale_lines,
)
from tasks.lib.stack.pull import (
    PullItem,
    PullResult,
    build_hint,
    compose_build_result,
    failure,
    plan_pull,
    pull_result,
)
from tasks.lib.stack.spec import parse_config
from tasks.lib.stack.status import status_rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    schema = tmp_path / "packages/shared/prisma/schema.prisma"
    schema.parent.mkdir(parents=True)
    schema.write_text('datasource db { provider = "mongodb" }\n')
    return resolve({"root": str(tmp_path)}, env={}, project_dir=tmp_path)


SPEC = parse_config(
    {
        "name": "meeshy-staging",
        "services": {
            "database": {"image": "mongo:8.0"},
            "frontend": {"image": "isopen/meeshy-web:staging", "depends_on": {"gateway": {}}},
            "gateway": {"image": "127.0.0.1:5000/ns/meeshy-gateway:staging"},
            "translator": {"image": "isopen/meeshy-translator:staging", "profiles": ["full"]},
            "tool": {"image": "acme/tool:1", "build": {"context": "."}},
        },
    }
)


def _img(ref: str, label: str | None, id_: str = "sha256:1") -> LocalImage:
    """A local image as the images package's list call describes it."""
    return LocalImage(id_, (ref,), labels={SCHEMA_LABEL: label} if label else {})


def test_app_services_match_by_repository_name(settings: Settings) -> None:
    assert app_services(SPEC, settings) == [
        ("frontend", "web", "isopen/meeshy-web:staging"),
        ("gateway", "gateway", "127.0.0.1:5000/ns/meeshy-gateway:staging"),
        ("translator", "translator", "isopen/meeshy-translator:staging"),
    ]


def test_schema_states(settings: Settings) -> None:
    """The images package's words (as images.list shows them), and missing."""
    sha = settings.schema_sha256
    assert sha
    assert schema_word(_img("x", sha), sha) == "match"
    assert schema_word(_img("x", "0" * 64), sha) == "stale"
    assert schema_word(_img("x", None), sha) == "unlabelled"
    assert schema_word(None, sha) == "missing"
    assert schema_word(_img("x", "a"), None) == "unknown"


def test_refuse_stale(settings: Settings) -> None:
    sha = settings.schema_sha256
    found = {
        "isopen/meeshy-web:staging": _img("w", sha),
        "127.0.0.1:5000/ns/meeshy-gateway:staging": _img("g", "0" * 64),
        "isopen/meeshy-translator:staging": _img("t", None),
    }
    apps = app_images(SPEC, settings, found)
    assert [(a.schema, a.fresh) for a in apps] == [
        ("match", True),
        ("stale", False),
        ("unlabelled", False),
    ]
    with pytest.raises(StaleImageError) as err:
        refuse_stale(apps, settings, stack="staging")
    line = err.value.line()
    assert err.value.exit_code == 4
    assert line.startswith("refused, nothing started: stack staging runs images not built")
    assert "gateway: 127.0.0.1:5000/ns/meeshy-gateway:staging built from another schema" in line
    assert "translator: isopen/meeshy-translator:staging carries no schema label" in line
    assert "--allow-stale" in line
    assert len(stale_lines(apps)) == 2


def test_only_missing_images_is_exit_1(settings: Settings) -> None:
    apps = app_images(SPEC, settings, {"isopen/meeshy-web:staging": None})
    assert apps[0] == AppImage(
        "frontend", "web", "isopen/meeshy-web:staging", "missing", False, "not present locally"
    )
    with pytest.raises(MissingImageError, match="not present here") as err:
        refuse_stale(apps, settings, stack="staging")
    assert err.value.exit_code == 1
    fresh = [replace(a, schema="match", fresh=True, why="") for a in apps]
    refuse_stale(fresh, settings, stack="staging")


def test_no_schema_refuses_as_staging_tag(tmp_path: Path) -> None:
    """Without the schema file the rule cannot decide: refused as staging.tag refuses."""
    settings = resolve({"root": str(tmp_path)}, env={}, project_dir=tmp_path)
    apps = app_images(SPEC, settings, {"isopen/meeshy-web:staging": _img("w", "a" * 64)})
    assert (apps[0].schema, apps[0].fresh) == ("unknown", False)
    with pytest.raises(ConfigError, match="refused, nothing started: cannot compare") as err:
        refuse_stale(apps, settings, stack="staging")
    assert err.value.exit_code == 2
    assert "--allow-stale" in err.value.line()


def test_current_build() -> None:
    found: dict[str, LocalImage | None] = {"a": _img("a", None), "b": None}
    assert current_build("sha256:1", found, "a") is True
    assert current_build("sha256:2", found, "a") is False
    assert current_build("sha256:1", found, "b") is False
    assert current_build("sha256:1", found, "c") is None
    assert current_build("", found, "a") is None


def _c(service: str, **kw: Any) -> ContainerState:
    base = ContainerState(
        id=f"id-{service}", name=f"p-{service}-1", service=service, state="running"
    )
    return replace(base, **kw)


def test_status_rows(settings: Settings) -> None:
    sha = settings.schema_sha256
    found: dict[str, LocalImage | None] = {
        "isopen/meeshy-web:staging": _img("w", sha, "sha256:new"),
        "mongo:8.0": _img("m", None, "sha256:m"),
    }
    containers = [
        _c(
            "frontend",
            image_id="sha256:old",
            image_ref="isopen/meeshy-web:staging",
            ports=(Port(3100, 13100, "tcp", "0.0.0.0"), Port(3100, 13100, "tcp", "::")),
        ),
        _c("database", state="exited", exit_code=3, image_id="sha256:m", image_ref="mongo:8.0"),
    ]
    rows = {r.service: r for r in status_rows(SPEC, containers, found, settings)}
    assert rows["frontend"].current_build is False
    assert rows["frontend"].schema == "match"
    assert rows["frontend"].ports == ("13100->3100",)
    assert rows["database"].state == "exited (3)"
    assert rows["database"].current_build is True
    assert rows["database"].schema == ""
    assert rows["gateway"].state == "not created"
    assert rows["gateway"].schema == "missing"
    assert rows["gateway"].to_json()["current_build"] is None


def test_compose_rows() -> None:
    containers = [
        _c("database", health="healthy"),
        _c("frontend", health="unhealthy"),
        _c("tool", state="exited", exit_code=0, restart_policy="no", restarts=0),
    ]
    rows = {r.service: (r.status, r.detail) for r in compose_rows(SPEC, containers)}
    assert rows == {
        "database": (Status.PASS, "healthy"),
        "frontend": (Status.FAIL, "unhealthy"),
        "gateway": (Status.FAIL, "not created"),
        "translator": (Status.SKIPPED, "not started (profile full)"),
        "tool": (Status.PASS, "completed (exit 0)"),
    }


def test_http_rows(settings: Settings) -> None:
    calls: list[str] = []

    def fetch(url: str, timeout: float) -> tuple[int | None, str]:
        calls.append(url)
        return (200, "") if "13000" in url else (None, "connection refused")

    containers = [
        _c("gateway", ports=(Port(3000, 13000, "tcp", "127.0.0.1"),)),
        _c("frontend", ports=(Port(3100, 13100, "tcp", "0.0.0.0"),)),
    ]
    checks = (*[HttpCheck("gateway", 3000, "/health"), HttpCheck("web", 3100, "/")],)
    rows = http_rows(SPEC, containers, settings, "localhost", fetch=fetch, checks=checks)
    assert [(r.service, r.check, r.status, r.detail) for r in rows] == [
        ("gateway", "http://127.0.0.1:13000/health", Status.PASS, "HTTP 200"),
        ("frontend", "http://localhost:13100/", Status.FAIL, "connection refused"),
    ]
    rows = http_rows(SPEC, [], settings, "localhost", fetch=fetch)
    assert [(r.service, r.status, r.detail) for r in rows] == [
        ("gateway", Status.FAIL, "not running"),
        ("frontend", Status.FAIL, "not running"),
        ("translator", Status.SKIPPED, "not started (profile full)"),
    ]
    unpublished = [_c("gateway"), _c("frontend"), _c("translator")]
    rows = http_rows(SPEC, unpublished, settings, "h", fetch=fetch)
    assert rows[0].detail == "port 3000 is not published"
    assert calls == ["http://127.0.0.1:13000/health", "http://localhost:13100/"]


def test_http_check_skips_a_stack_without_the_app(settings: Settings) -> None:
    spec = parse_config({"services": {"database": {"image": "mongo:8.0"}}})
    rows = http_rows(spec, [], settings, "h", fetch=lambda u, t: (200, ""))
    assert {r.status for r in rows} == {Status.SKIPPED}


@pytest.mark.parametrize(
    ("env", "host"),
    [
        ({}, "localhost"),
        ({"DOCKER_HOST": "unix:///tmp/d.sock"}, "localhost"),
        ({"DOCKER_HOST": "tcp://10.0.0.5:2376"}, "10.0.0.5"),
        ({"DOCKER_HOST": "ssh://deploy@prod.example:22"}, "prod.example"),
    ],
)
def test_engine_host(env: dict[str, str], host: str) -> None:
    no_ssh_config = SshOptions(config="/dev/null")  # ssh -G reads no ~/.ssh/config
    target = EngineTarget(env={"DOCKER_CONFIG": "/nonexistent", **env}, ssh=no_ssh_config)
    assert engine_host(target) == host


def test_plan_pull(settings: Settings) -> None:
    found: dict[str, LocalImage | None] = {
        "mongo:8.0": _img("m", None, "sha256:m"),
        "isopen/meeshy-web:staging": None,
    }
    items = plan_pull(SPEC, found, settings)
    assert [(i.service, i.action, i.app) for i in items] == [
        ("database", "present", ""),
        ("frontend", "pull", "web"),
        ("gateway", "pull", "gateway"),
        ("translator", "pull", "translator"),
        ("tool", "compose-build", ""),
    ]
    assert [i.service for i in plan_pull(SPEC, None, settings, ["database"])] == ["database"]
    assert plan_pull(SPEC, None, settings, ["database"])[0].action == "pull"


def test_plan_pull_all(settings: Settings) -> None:
    """--all: every image not built by compose is pulled, present or not; a present image
    compose builds is still not pulled (and says how it is built)."""
    found: dict[str, LocalImage | None] = {
        "mongo:8.0": _img("m", None, "sha256:m"),
        "isopen/meeshy-web:staging": _img("w", None, "sha256:w"),
        "acme/tool:1": _img("t", None, "sha256:t"),
    }
    items = plan_pull(SPEC, found, settings, every=True)
    assert [(i.service, i.action, i.present) for i in items] == [
        ("database", "pull", True),
        ("frontend", "pull", True),
        ("gateway", "pull", False),
        ("translator", "pull", False),
        ("tool", "compose-build", True),
    ]
    assert [i.action for i in plan_pull(SPEC, found, settings)] == [
        "present",
        "present",
        "pull",
        "pull",
        "present",
    ]
    assert plan_pull(SPEC, None, settings, every=True)[0].present is None


def _item(service: str, image: str, app: str = "", present: bool = True) -> PullItem:
    return PullItem(service, image, "pull", app, present)


OLD, NEW = _img("x", None, "sha256:" + "a" * 64), _img("x", None, "sha256:" + "b" * 64)
DB = _item("database", "mongo:8.0")
WEB = _item("frontend", "isopen/meeshy-web:latest", "web")


@pytest.mark.parametrize(
    ("item", "before", "after", "error", "expected"),
    [
        pytest.param(DB, None, NEW, "", (Status.DONE, "pulled", "", True), id="new"),
        pytest.param(
            DB, NEW, NEW, "", (Status.UP_TO_DATE, "pulled: no newer image", "", True), id="same"
        ),
        pytest.param(
            DB, OLD, NEW, "", (Status.DONE, "pulled (replaced aaaaaaaaaaaa)", "", True), id="newer"
        ),
        pytest.param(
            WEB, OLD, NEW, "",
            (
                Status.DONE, "pulled (replaced aaaaaaaaaaaa)",
                "rebuild it from this checkout: `inv build.web`", True,
            ),
            id="app-replaced",
        ),
        pytest.param(DB, OLD, OLD, "denied", (Status.FAILED, "denied", "", True), id="failed-kept"),
        pytest.param(DB, None, None, "denied", (Status.FAILED, "denied", "", False), id="failed"),
        pytest.param(
            WEB, OLD, OLD, "denied",
            (
                Status.SKIPPED, "no registry has it (denied): local build kept",
                "a local build: `inv build.web`", True,
            ),
            id="app-kept",
        ),
        pytest.param(
            WEB, None, None, "",
            (
                Status.NOT_BUILT, "cannot be pulled (not found)",
                "a local build: `inv build.web`", False,
            ),
            id="app-missing",
        ),
    ],
)  # fmt: skip
def test_pull_result(
    settings: Settings,
    item: PullItem,
    before: LocalImage | None,
    after: LocalImage | None,
    error: str,
    expected: tuple[Status, str, str, bool],
) -> None:
    r = pull_result(item, settings, before, after, error)
    assert (r.status, r.detail, r.hint, r.present) == expected


def test_compose_build_result() -> None:
    item = PullItem("tool", "acme/tool:1", "compose-build", "", True)
    r = compose_build_result(item, "/m/dev.yml")
    assert (r.status, r.detail, r.hint) == (
        Status.UP_TO_DATE,
        "present",
        "built by compose: `docker compose -f /m/dev.yml build tool`",
    )
    r = compose_build_result(replace(item, present=False), "/m/dev.yml")
    assert (r.status, r.detail, r.present) == (Status.NOT_BUILT, "missing", False)


def test_pull_failure_line() -> None:
    ok = PullResult("a", "busybox:latest", Status.DONE, "pulled")
    kept = PullResult("b", "mongo:8.0", Status.FAILED, "denied", present=True)
    gone = PullResult("c", "ns/meeshy-web:1", Status.NOT_BUILT, "x", "a local build", False)
    skipped = PullResult("d", "ns/meeshy-gateway:1", Status.SKIPPED, "kept", "a local build")
    assert failure([ok, skipped], "dev") is None
    err = failure([ok, kept, gone], "dev")
    assert err is not None and err.exit_code == 1
    assert err.line() == (
        "stack dev: 1 image(s) still missing: c (ns/meeshy-web:1); 1 pull(s) failed, the "
        "local image kept: b (mongo:8.0: denied): build the local ones as shown above"
    )
    err = failure([kept], "dev")
    assert err is not None and err.hint is None


@pytest.mark.parametrize(
    ("item", "hint"),
    [
        (
            PullItem("frontend", "isopen/meeshy-web:staging", "pull", "web"),
            "a local build: `inv build.web staging.tag`",
        ),
        (
            PullItem("gateway", "isopen/meeshy-gateway:latest", "pull", "gateway"),
            "a local build: `inv build.gateway`",
        ),
        (
            PullItem("gateway", "127.0.0.1:5000/ns/meeshy-gateway:staging", "pull", "gateway"),
            "a local build: `inv build.gateway --registry 127.0.0.1:5000/ns "
            "staging.tag --registry 127.0.0.1:5000/ns`",
        ),
        (PullItem("database", "mongo:8.0", "pull", ""), ""),
    ],
)
def test_build_hint(settings: Settings, item: PullItem, hint: str) -> None:
    assert build_hint(item, settings) == hint
