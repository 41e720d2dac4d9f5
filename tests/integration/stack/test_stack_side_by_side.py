"""Prod-like and staging stacks side by side on the real engine (busybox stand-ins only):
staging comes up beside prod with no clash, each answers on its own ports, and
``stack.down --env staging --volumes`` leaves every prod container running and every prod
volume byte-for-byte intact. Also: the separation and schema refusals of ``stack.up --env
staging`` (nothing started), the volume protections of ``stack.down``, status and logs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import stack as stack_tasks
from tasks.lib.config import resolve
from tests.cli import run_inv
from tests.conftest import EXAMPLE
from tests.integration.stack.stack_run import run_task
from tests.integration.stack.stack_world import (
    STAGING_FILE,
    StackWorld,
    compose_ps,
)

pytestmark = pytest.mark.engine

VOLUMES = ("database-data", "gateway-uploads", "web-uploads")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sdk: Any) -> Iterator[StackWorld]:
    root = tmp_path_factory.mktemp("stack") / "meeshy"
    shutil.copytree(EXAMPLE, root, symlinks=True)
    w = StackWorld(root)
    try:
        sha = resolve({"root": str(root)}, env={}, project_dir=root).schema_sha256
        assert sha
        w.build(sdk, sha)
        w.write_prod()
        yield w
    finally:
        w.cleanup(sdk)
        left = w.leftovers(sdk)
        assert not left, f"left on the engine: {left}"


def _run(w: StackWorld, task: Any, **flags: Any) -> tuple[int, str, str]:
    return run_task(w.config(), task, **flags)


@pytest.fixture(scope="module")
def prod(world: StackWorld, sdk: Any) -> dict[str, str]:
    """Prod up through stack.up, its volumes filled with data; returns the volume digests."""
    code, out, err = _run(world, stack_tasks.up, env="prod", timeout=120)
    assert code == 0, out + err
    assert f"{world.project('prod')} is up" in out
    for v in VOLUMES:
        name = f"{world.prefix}-{v}"
        world.fill_volume(
            sdk, name, {f"{v}.bin": bytes(range(256)) * 64, "nested/readme.txt": b"prod\n"}
        )
    return {v: world.volume_digest(sdk, f"{world.prefix}-{v}") for v in VOLUMES}


def _states(project: str) -> dict[str, str]:
    return {row["Service"]: row["State"] for row in compose_ps(project)}


def test_prod_is_up_with_urls(world: StackWorld, prod: dict[str, str]) -> None:
    assert set(_states(world.project("prod")).values()) == {"running"}
    code, out, err = _run(world, stack_tasks.urls, env="prod", json=True)
    assert code == 0, err
    urls = {u["url"] for u in json.loads(out)["urls"]}
    p = world.ports
    assert f"http://gate.meeshy.me:{p['proxy']}" in urls  # Traefik rule, env file's DOMAIN
    assert f"http://127.0.0.1:{p['gateway']}" in urls


def test_staging_beside_prod_then_down_leaves_prod_intact(
    world: StackWorld, prod: dict[str, str], sdk: Any
) -> None:
    r = run_inv("staging.compose", env=world.env())
    assert r.code == 0, r
    for app in ("gateway", "web", "translator"):
        world.tag(sdk, f"{world.ns}/meeshy-{app}:latest", f"{world.ns}/meeshy-{app}:staging")

    code, out, err = _run(world, stack_tasks.up, env="staging", timeout=120)
    assert code == 0, out + err
    assert f"{world.project('staging')} is up" in out
    staging_states = _states(world.project("staging"))
    assert set(staging_states) == {"proxy", "database", "gateway", "translator", "frontend"}
    assert set(staging_states.values()) == {"running"}
    assert set(_states(world.project("prod")).values()) == {"running"}

    # each answers on its own published ports: health passes for both, on different URLs
    checked: dict[str, set[str]] = {}
    for env in ("prod", "staging"):
        code, out, err = _run(world, stack_tasks.health, env=env, json=True)
        report = json.loads(out)
        assert code == 0 and report["ok"], out + err
        http = [c for c in report["checks"] if c["kind"] == "http"]
        assert [c["status"] for c in http] == ["pass"] * 3
        checked[env] = {c["check"] for c in http}
    assert not checked["prod"] & checked["staging"]
    assert f"http://127.0.0.1:{world.ports['gateway'] + 10000}/health" in checked["staging"]

    code, out, err = _run(world, stack_tasks.status, env="staging", json=True)
    assert code == 0, err
    rows = {r["service"]: r for r in json.loads(out)["services"]}
    assert rows["gateway"]["image"] == f"{world.ns}/meeshy-gateway:staging"
    assert rows["gateway"]["current_build"] is True
    assert rows["gateway"]["schema"] == "match"
    assert rows["database"]["schema"] is None
    assert rows["database"]["health"] == "healthy"

    # a dry run says exactly what would run, and runs nothing
    code, out, _ = _run(world, stack_tasks.down, env="staging", volumes=True, dry_run=True)
    assert code == 0
    assert "down --remove-orphans --volumes" in out
    assert f"{world.project('staging')}" in out
    assert set(_states(world.project("staging")).values()) == {"running"}

    code, out, err = _run(world, stack_tasks.down, env="staging", volumes=True)
    assert code == 0, out + err
    assert _states(world.project("staging")) == {}
    staging_volumes = [v.name for v in sdk.volumes.list(filters={"name": "staging"})]
    assert not [v for v in staging_volumes if world.uid in v]
    # prod: every container still running, every volume byte-for-byte as it was
    assert set(_states(world.project("prod")).values()) == {"running"}
    assert {v: world.volume_digest(sdk, f"{world.prefix}-{v}") for v in VOLUMES} == prod


def _edited_staging(world: StackWorld, old: str, new: str) -> Path:
    """A copy of the generated staging file with one edit (next to it)."""
    source = world.root / STAGING_FILE
    if not source.exists():
        assert run_inv("staging.compose", env=world.env()).code == 0
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    edited = source.with_name(f"docker-compose.staging-edit-{abs(hash(new))}.yml")
    edited.write_text(text.replace(old, new, 1), encoding="utf-8")
    return edited


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        (
            "container name",
            "container_name: meeshy-staging-st{uid}-gateway",
            "container_name: meeshy-st{uid}-gateway",
        ),
        ("host port", "127.0.0.1:{gw_staging}:3000", "127.0.0.1:{gw}:3000"),
        (
            "volume",
            "name: meeshy-staging-st{uid}-gateway-uploads",
            "name: meeshy-st{uid}-gateway-uploads",
        ),
        ("network", "name: meeshy-staging-st{uid}-network", "name: meeshy-st{uid}-network"),
    ],
)
def test_up_staging_refuses_what_it_shares_with_prod(
    world: StackWorld, prod: dict[str, str], what: str, old: str, new: str
) -> None:
    values = {
        "uid": world.uid,
        "gw": world.ports["gateway"],
        "gw_staging": world.ports["gateway"] + 10000,
    }
    edited = _edited_staging(world, old.format(**values), new.format(**values))
    world.extra_stacks = {"staging": {"file": str(edited)}}
    try:
        code, out, err = _run(world, stack_tasks.up, env="staging")
    finally:
        world.extra_stacks = {}
    assert code == 2, out + err
    line = err.strip().splitlines()[-1]
    assert line.startswith("ERROR: refused, nothing started:"), line
    assert f"{what} " in line
    assert _states(world.project("staging")) == {}


def test_up_staging_refuses_stale_images(world: StackWorld, prod: dict[str, str], sdk: Any) -> None:
    if not (world.root / STAGING_FILE).exists():
        assert run_inv("staging.compose", env=world.env()).code == 0
    for app in ("web", "translator"):
        world.tag(sdk, f"{world.ns}/meeshy-{app}:latest", f"{world.ns}/meeshy-{app}:staging")
    world.build_variant(sdk, f"{world.ns}/meeshy-gateway:staging", "0" * 64)
    code, out, err = _run(world, stack_tasks.up, env="staging")
    assert code == 4, out + err
    assert "built from another schema" in err
    assert f"gateway: {world.ns}/meeshy-gateway:staging" in err
    assert _states(world.project("staging")) == {}
    code, out, err = _run(world, stack_tasks.up, env="staging", allow_stale=True, dry_run=True)
    assert code == 0, out + err
    assert "WARNING: --allow-stale: gateway:" in err
    assert out.strip().splitlines()[1].endswith("up --detach")


def test_down_refuses_prod_volumes(world: StackWorld, prod: dict[str, str]) -> None:
    code, _out, err = _run(world, stack_tasks.down, env="prod", volumes=True)
    assert code == 2
    assert "would delete prod's data" in err
    assert set(_states(world.project("prod")).values()) == {"running"}


def test_down_volumes_refuses_a_volume_prod_names(
    world: StackWorld, prod: dict[str, str], tmp_path: Path
) -> None:
    dev = tmp_path / "dev.yml"
    dev.write_text(
        "services:\n  box:\n    image: busybox:latest\n    command: [sleep, '1']\n"
        "    volumes: [up:/up]\n"
        f"volumes:\n  up:\n    name: {world.prefix}-gateway-uploads\n",
        encoding="utf-8",
    )
    world.extra_stacks = {"dev": {"file": str(dev)}}
    try:
        code, _out, err = _run(world, stack_tasks.down, env="dev", volumes=True)
    finally:
        world.extra_stacks = {}
    assert code == 2
    assert f"would delete volumes prod uses: {world.prefix}-gateway-uploads" in err


def test_status_logs_and_a_failing_health(
    world: StackWorld, prod: dict[str, str], sdk: Any
) -> None:
    code, out, err = _run(world, stack_tasks.status, env="prod")
    assert code == 0, err
    assert "current build" in out.lower()
    code, out, err = _run(world, stack_tasks.logs, env="prod", service=["database"], tail="5")
    assert code == 0, err
    assert f"database ready {world.uid}" in out

    translator = sdk.containers.get(f"{world.prefix}-translator")
    translator.stop(timeout=5)
    try:
        code, out, err = _run(world, stack_tasks.health, env="prod")
        assert code == 1
        assert "translator /health: not running" in err
        assert "translator" in out and "exited" in out
    finally:
        translator.start()


def test_the_examples_dev_and_local_files_run_offline(
    world: StackWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's dev and local files (busybox stand-ins, app images under profile
    ``full``), on this run's images and free ports."""
    from tests.integration.stack.stack_world import free_ports

    names = ("MONGODB", "REDIS", "GATEWAY", "TRANSLATOR", "WEB", "HTTP", "HTTPS")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    for name, port in ports.items():
        monkeypatch.setenv(f"{name}_PORT", str(port))
    for var, app in (("GATEWAY", "gateway"), ("TRANSLATOR", "translator"), ("FRONTEND", "web")):
        monkeypatch.setenv(f"{var}_IMAGE", f"{world.ns}/meeshy-{app}:latest")

    code, out, err = _run(world, stack_tasks.up, env="dev", profile=["full"], timeout=90)
    assert code == 0, out + err
    code, out, err = _run(world, stack_tasks.health, env="dev", json=True)
    assert code == 0, out + err
    checks = [c["check"] for c in json.loads(out)["checks"] if c["kind"] == "http"]
    assert checks == [
        f"http://localhost:{ports['GATEWAY']}/health",
        f"http://localhost:{ports['WEB']}/",
        f"http://localhost:{ports['TRANSLATOR']}/health",
    ]
    code, out, err = _run(world, stack_tasks.down, env="dev", volumes=True)
    assert code == 0, out + err
    assert _states(world.project("dev")) == {}

    code, out, err = _run(world, stack_tasks.up, env="local", timeout=90)
    assert code == 0, out + err
    # the app services are not started (profile full): no URL, and said so
    assert "gate.meeshy.local" not in out
    assert ["-", "gateway", "not", "started", "(profile", "full)"] in [
        ln.split() for ln in out.splitlines()
    ]
    assert set(_states(world.project("local"))) == {"traefik", "database", "redis"}
    code, out, err = _run(world, stack_tasks.urls, env="local", json=True)
    assert code == 0, out + err
    gate = next(u for u in json.loads(out)["urls"] if "gate.meeshy.local" in u["url"])
    assert gate["url"] == f"https://gate.meeshy.local:{ports['HTTPS']}"
    assert not gate["running"] and gate["via"].endswith("from the file: not started (profile full)")
    code, out, err = _run(world, stack_tasks.health, env="local")
    assert code == 0, out + err
    assert "not started (profile full)" in out
    code, out, err = _run(world, stack_tasks.down, env="local")
    assert code == 0, out + err
    assert _states(world.project("local")) == {}
