"""The checks and plans ``stack.up``, ``stack.down`` and ``stack.pull`` run before anything
changes (:mod:`tasks.lib.stack.checks`, :mod:`tasks.lib.stack.up`, :mod:`tasks.lib.stack.pull`):
what they return (warnings as lines, clashes as data, the refusal to raise) on made-up
configurations, images and results. No engine: where a check asks one, it asks a socket that
does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.lib.compose.separation import Clash
from tasks.lib.config import SCHEMA_LABEL, Settings, resolve
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    EngineUnavailable,
    MissingImageError,
    StaleImageError,
    TaskError,
)
from tasks.lib.images.store import LocalImage
from tasks.lib.progress import Status
from tasks.lib.stack.checks import (
    Preflight,
    judge_images,
    plan_down,
    refuse_down,
    removable_volumes,
    separation_error,
    staging_preflight,
)
from tasks.lib.stack.health import HealthReport, HealthRow
from tasks.lib.stack.images import AppImage, app_images
from tasks.lib.stack.plan import Stack, down_call, down_hint, open_stack, up_call
from tasks.lib.stack.pull import PullItem, PullPlan, execute, note
from tasks.lib.stack.spec import ProjectSpec, parse_config
from tasks.lib.stack.up import UpPlan, expected, failure
from tasks.lib.stack.wait import ServiceWait, WaitResult

COMPOSE_DIR = "infrastructure/docker/compose"
# nothing listens on port 1: refused at once (a missing unix socket would do too, but the docker
# SDK leaves that socket unclosed)
NO_ENGINE = EngineTarget(env={"DOCKER_HOST": "tcp://127.0.0.1:1"})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / COMPOSE_DIR).mkdir(parents=True)
    for env in ("dev", "staging"):
        (tmp_path / COMPOSE_DIR / f"docker-compose.{env}.yml").write_text("services: {}\n")
    schema = tmp_path / "packages/shared/prisma/schema.prisma"
    schema.parent.mkdir(parents=True)
    schema.write_text('datasource db { provider = "mongodb" }\n')
    return tmp_path


@pytest.fixture
def settings(root: Path) -> Settings:
    return resolve({"root": str(root)}, env={}, project_dir=root)


def _stack(root: Path, name: str, project: str = "") -> Stack:
    file = root / COMPOSE_DIR / f"docker-compose.{name}.yml"
    return Stack(name, file, project or f"meeshy-{name}", None)


SPEC = parse_config(
    {
        "name": "meeshy-staging",
        "services": {
            "database": {"image": "mongo:8.0"},
            "frontend": {"image": "isopen/meeshy-web:staging", "depends_on": {"gateway": {}}},
            "gateway": {"image": "isopen/meeshy-gateway:staging"},
            "translator": {"image": "isopen/meeshy-translator:staging", "profiles": ["full"]},
            "tool": {"image": "acme/tool:1", "build": {"context": "."}, "profiles": ["ops"]},
        },
    }
)


# -- staging's preflight -------------------------------------------------------------------------


def test_separation_error_names_every_clash(root: Path) -> None:
    staging, prod = _stack(root, "staging"), _stack(root, "prod")
    clashes = [
        Clash("container name", "meeshy-traefik", "traefik", "traefik"),
        Clash("host port", "80/tcp", "traefik", "traefik"),
    ]
    err = separation_error(staging, prod, clashes)
    assert err.exit_code == 2
    assert err.line() == (
        "refused, nothing started: docker-compose.staging.yml shares with "
        "docker-compose.prod.yml: container name 'meeshy-traefik' is used by both (prod service "
        "'traefik', staging service 'traefik'); host port 80/tcp is published by both (prod "
        "service 'traefik', staging service 'traefik'): regenerate it "
        "(`inv staging.compose --force`) or fix the edit"
    )


def _apps(settings: Settings, web_label: str | None) -> list[AppImage]:
    found: dict[str, LocalImage | None] = {
        "isopen/meeshy-web:staging": LocalImage(
            "sha256:w", ("w",), labels={SCHEMA_LABEL: web_label} if web_label else {}
        ),
        "isopen/meeshy-gateway:staging": LocalImage(
            "sha256:g", ("g",), labels={SCHEMA_LABEL: settings.schema_sha256 or ""}
        ),
        "isopen/meeshy-translator:staging": None,
    }
    return app_images(SPEC, settings, found)


def test_judge_images_fresh_stale_missing(settings: Settings) -> None:
    sha = settings.schema_sha256
    assert sha
    fresh = [a for a in _apps(settings, sha) if a.service != "translator"]
    assert judge_images(fresh, settings, "staging", allow_stale=False) == Preflight(
        images=tuple(fresh)
    )
    stale = _apps(settings, "0" * 64)
    judged = judge_images(stale, settings, "staging", allow_stale=False)
    assert isinstance(judged.error, StaleImageError) and judged.error.exit_code == 4
    assert judged.warnings == ()
    missing_only = _apps(settings, sha)
    judged = judge_images(missing_only, settings, "staging", allow_stale=False)
    assert isinstance(judged.error, MissingImageError)


def test_allow_stale_turns_refusals_into_warnings(settings: Settings) -> None:
    judged = judge_images(_apps(settings, "0" * 64), settings, "staging", allow_stale=True)
    assert judged.error is None
    frontend, translator = judged.warnings
    assert frontend.startswith(
        "--allow-stale: frontend: isopen/meeshy-web:staging built from another schema"
    )
    assert translator == (
        "--allow-stale: translator: isopen/meeshy-translator:staging not present locally"
    )
    data = judged.to_json()
    assert data["error"] is None and len(data["images"]) == 3


def test_preflight_without_prod_or_engine_keeps_its_warnings(
    root: Path, settings: Settings
) -> None:
    """No prod file: separation not checked (warned). No engine: a dry run warns and goes on;
    a real run gets the refusal back after the warning, which is not lost."""
    staging = _stack(root, "staging")
    args: tuple[Any, ...] = (settings, staging, {"name": "meeshy-staging"}, SPEC, NO_ENGINE)
    prod_missing = (
        f"prod compose file {root / COMPOSE_DIR / 'docker-compose.prod.yml'} not found: "
        "staging's separation not checked"
    )
    dry = staging_preflight(*args, allow_stale=False, dry_run=True)
    assert dry.error is None and dry.clashes == ()
    assert dry.warnings[0] == prod_missing
    assert dry.warnings[1].startswith("Cannot reach the Docker engine at tcp://127.0.0.1:1: ")
    assert dry.warnings[1].endswith("; app images not checked")
    real = staging_preflight(*args, allow_stale=True, dry_run=False)
    assert real.warnings == (prod_missing,)
    assert isinstance(real.error, EngineUnavailable) and real.error.exit_code == 3


# -- stack.down ----------------------------------------------------------------------------------


def test_refuse_down(root: Path) -> None:
    prod = _stack(root, "prod")
    with pytest.raises(ConfigError, match="would delete prod's data"):
        refuse_down(prod, prod, volumes=True)
    refuse_down(prod, prod, volumes=False)
    refuse_down(_stack(root, "dev"), prod, volumes=True)
    with pytest.raises(ConfigError) as err:
        refuse_down(_stack(root, "fx", project="meeshy-prod"), prod, volumes=False)
    assert err.value.line() == (
        "refused: stack fx has prod's project name meeshy-prod: "
        "give meeshy.stacks.fx.project its own name"
    )


def _volumes(*names: str, external: str = "") -> dict[str, Any]:
    vols: dict[str, Any] = {n: {"name": f"meeshy-staging-{n}"} for n in names}
    if external:
        vols[external] = {"name": external, "external": True}
    return {"name": "meeshy-staging", "services": {}, "volumes": vols}


def test_removable_volumes_are_the_files_own_sorted(root: Path) -> None:
    staging = _stack(root, "staging")
    config = _volumes("redis", "db", external="shared-certs")
    prod = {"name": "meeshy-prod", "services": {}, "volumes": {"db": {"name": "meeshy-db"}}}
    assert removable_volumes(staging, config, prod, ["shared-certs"]) == [
        "meeshy-staging-db",
        "meeshy-staging-redis",
    ]
    assert removable_volumes(staging, config, None) == [
        "meeshy-staging-db",
        "meeshy-staging-redis",
    ]


@pytest.mark.parametrize(
    ("prod_config", "mounted"),
    [
        pytest.param({"name": "p", "volumes": {"x": {"name": "meeshy-staging-db"}}}, (), id="file"),
        pytest.param(None, ("meeshy-staging-db",), id="running"),
    ],
)
def test_removable_volumes_refuse_what_prod_uses(
    root: Path, prod_config: dict[str, Any] | None, mounted: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as err:
        removable_volumes(_stack(root, "staging"), _volumes("db", "redis"), prod_config, mounted)
    assert err.value.line() == (
        "refused, nothing removed: `stack.down --env staging --volumes` would delete volumes "
        "prod uses: meeshy-staging-db: give them their own names in docker-compose.staging.yml, "
        "or drop --volumes"
    )


def test_plan_down_without_volumes_asks_nothing(root: Path, settings: Settings) -> None:
    dev = _stack(root, "dev")
    plan = plan_down(settings, dev, NO_ENGINE, volumes=False, dry_run=False)
    assert (plan.call, plan.volumes, plan.argv, plan.warnings, plan.error) == (
        down_call(volumes=False),
        (),
        (),
        (),
        None,
    )
    assert plan.to_json()["project"] == "meeshy-dev"
    with pytest.raises(ConfigError, match="has prod's project name"):
        plan_down(
            settings, _stack(root, "dev", "meeshy-prod"), NO_ENGINE, volumes=False, dry_run=True
        )


def test_open_stack_and_down_hint(root: Path, settings: Settings) -> None:
    stack, warning = open_stack(settings, "dev")
    assert (stack.name, stack.env_file) == ("dev", None)
    assert warning.endswith(
        "running compose without --env-file (variables fall back to their defaults)"
    )
    with pytest.raises(ConfigError, match=r"`stack\.up` needs its variables"):
        open_stack(settings, "dev", changes="stack.up")
    _, warning = open_stack(settings, "dev", changes="stack.up", dry_run=True)
    assert "without --dry-run `stack.up` refuses" in warning
    (root / "infrastructure/envs").mkdir(parents=True)
    (root / "infrastructure/envs/.env.example").write_text("DOMAIN=x\n")
    stack, warning = open_stack(settings, "dev", changes="stack.up")
    assert (stack.env_file, warning) == (root / "infrastructure/envs/.env.example", "")
    with pytest.raises(ConfigError) as err:
        open_stack(settings, "local", missing_hint=down_hint(settings, "local"))
    assert err.value.hint == (
        "without its file, `docker compose -p meeshy-local down` takes the project down "
        "(by its labels)"
    )


# -- stack.up ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("services", "profiles", "waited"),
    [
        ((), (), ("database", "frontend", "gateway")),
        ((), ("full",), ("database", "frontend", "gateway", "translator")),
        ((), ("*",), ("database", "frontend", "gateway", "translator", "tool")),
        (("frontend",), (), ("frontend", "gateway")),
        (("translator",), ("ops",), ("translator",)),
    ],
)
def test_expected_is_what_up_starts(
    services: tuple[str, ...], profiles: tuple[str, ...], waited: tuple[str, ...]
) -> None:
    assert expected(SPEC, services, profiles) == waited


@pytest.mark.parametrize("profiles", [(), ("full",), ("ops", "full"), ("*",)])
def test_declared_profiles_pass(profiles: tuple[str, ...]) -> None:
    SPEC.check_profiles(profiles, "staging")


@pytest.mark.parametrize(
    ("spec", "profile", "line"),
    [
        (
            SPEC,
            "ful",
            "stack staging has no profile 'ful': did you mean 'full'? (known: full, ops)",
        ),
        (SPEC, "nope", "stack staging has no profile 'nope': choose one of full, ops"),
        (
            parse_config({"services": {"a": {"image": "busybox"}}}),
            "full",
            "stack staging has no profile 'full': it declares no profile",
        ),
    ],
)
def test_an_undeclared_profile_is_refused(spec: ProjectSpec, profile: str, line: str) -> None:
    """compose starts nothing more for a profile no service declares, and says nothing."""
    with pytest.raises(ConfigError) as err:
        spec.check_profiles(["full", profile] if profile != "full" else [profile], "staging")
    assert err.value.line() == line


def _wait(*rows: ServiceWait, **kw: Any) -> WaitResult:
    return WaitResult(ok=False, seconds=3.0, services=rows, **kw)


def test_failure_of_compose_up_itself(root: Path) -> None:
    """compose up failed before any service did: its output is shown, no service logs are
    read (so no engine is asked)."""
    plan = UpPlan(_stack(root, "dev"), NO_ENGINE, SPEC, up_call(), ("database",))
    assert plan.error is None and plan.to_json()["preflight"] is None
    up_error = CommandFailed("`docker compose up` for meeshy-dev failed: no such host")
    waiting = ServiceWait("database", "waiting", "not created yet", "", "", 0)
    result = _wait(waiting, up_error=up_error, up_output=("database Pulling", "", "  boom  "))
    failed = failure(plan, result, 60)
    assert failed is not None
    assert failed.services == ()
    assert failed.up_output == ("database Pulling", "boom")
    assert failed.error.line() == (
        "stack dev: `docker compose up` for meeshy-dev failed: no such host: what started stays "
        "up: `inv stack.status --env dev`, `inv stack.down --env dev` takes it down"
    )
    assert failure(plan, WaitResult(True, 1.0, ()), 60) is None


def test_up_plan_carries_the_preflights_refusal(root: Path) -> None:
    refused = Preflight(error=ConfigError("refused, nothing started: shared"))
    plan = UpPlan(_stack(root, "staging"), NO_ENGINE, SPEC, up_call(), (), refused)
    assert plan.error is refused.error
    assert plan.to_json()["preflight"]["error"] == "refused, nothing started: shared"


# -- stack.pull ----------------------------------------------------------------------------------


def test_dry_run_notes(settings: Settings) -> None:
    web = PullItem("frontend", "isopen/meeshy-web:staging", "pull", "web")
    tool = PullItem("tool", "acme/tool:1", "compose-build")
    assert note(web, settings, "/x/c.yml") == (
        "frontend: if no registry has isopen/meeshy-web:staging, "
        "a local build: `inv build.web staging.tag`"
    )
    assert note(tool, settings, "/x/c.yml") == (
        "tool: acme/tool:1 is built by compose, not pulled: `docker compose -f /x/c.yml build tool`"
    )
    assert note(PullItem("database", "mongo:8.0", "pull"), settings, "/x/c.yml") == ""
    assert note(PullItem("frontend", "isopen/meeshy-web:x", "present", "web"), settings, "") == ""


class Recorder:
    """A progress view that writes down what the core reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        self.calls.append(("start", key, text))

    def update(self, key: str, **kw: Any) -> None:
        self.calls.append(("update", key, str(kw.get("line"))))

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        self.calls.append(("finish", key, f"{status.value}: {text}"))


def test_execute_without_pulls_reports_each_item(root: Path, settings: Settings) -> None:
    """Nothing to pull (present, or built by compose): no compose and no engine call; each
    item is reported and judged, and the run's JSON is the stack's plus the images."""
    dev = _stack(root, "dev")
    items = (
        PullItem("database", "mongo:8.0", "present", "", True),
        PullItem("tool", "acme/tool:1", "compose-build", "", False),
    )
    plan = PullPlan(dev, NO_ENGINE, items, False, {}, {}, {})
    progress = Recorder()
    run = execute(plan, settings, None, progress)  # type: ignore[arg-type]  # never asked
    assert [(r.service, r.status, r.present) for r in run.results] == [
        ("database", Status.UP_TO_DATE, True),
        ("tool", Status.NOT_BUILT, False),
    ]
    assert progress.calls == [
        ("start", "database", "mongo:8.0"),
        ("finish", "database", "up to date: "),
        ("start", "tool", "acme/tool:1"),
        ("finish", "tool", "not built: missing"),
    ]
    assert run.to_json()["images"][1]["hint"] == (
        f"built by compose: `docker compose -f {dev.file} build tool`"
    )
    failed = run.failure()
    assert isinstance(failed, TaskError)
    assert failed.line().startswith("stack dev: 1 image(s) still missing: tool (acme/tool:1)")
    assert plan.services == ["database", "tool"]
    assert plan.to_json()["items"][0] == {**items[0].to_json(), "argv": None}


# -- stack.health --------------------------------------------------------------------------------


def test_health_report_failure_line() -> None:
    ok = HealthRow("compose", "database", "compose", Status.PASS, "healthy")
    bad = HealthRow("http", "gateway", "http://localhost:3000/health", Status.FAIL, "refused")
    assert HealthReport("dev", "meeshy-dev", (ok,)).failure() is None
    failed = HealthReport("dev", "meeshy-dev", (ok, bad)).failure()
    assert failed is not None and failed.exit_code == 1
    assert failed.line() == (
        "stack dev: 1 check(s) failed: gateway http://localhost:3000/health: refused"
    )
