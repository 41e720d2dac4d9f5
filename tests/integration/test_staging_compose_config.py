"""The generated staging file passes `docker compose config` and shares nothing with prod."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.staging_compose import generate, load_compose

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "example/infrastructure/docker/compose"
PROD = COMPOSE_DIR / "docker-compose.prod.yml"

pytestmark = pytest.mark.engine


def compose_config(path: Path, project_dir: Path) -> dict[str, Any]:
    """``docker compose config --format json`` of one file, in a clean environment."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMPOSE_") and not k.endswith("_IMAGE") and k != "DOMAIN"
    }
    argv = [docker, "compose", "--project-directory", str(project_dir), "-f", str(path)]
    proc = subprocess.run(
        [*argv, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def _host_ports(config: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for svc in config["services"].values():
        for port in svc.get("ports") or []:
            published = str(port.get("published") or "")
            if published:
                first, _dash, last = published.partition("-")
                ports.update(range(int(first), int(last or first) + 1))
    return ports


def docker_objects(config: dict[str, Any]) -> dict[str, set[Any]]:
    """The names and host ports a configuration claims on the engine."""
    return {
        "project": {config["name"]},
        "volumes": {v["name"] for v in (config.get("volumes") or {}).values()},
        "networks": {n["name"] for n in (config.get("networks") or {}).values()},
        "containers": {
            s["container_name"] for s in config["services"].values() if s.get("container_name")
        },
        "host ports": _host_ports(config),
    }


def assert_separated(prod: dict[str, Any], staging: dict[str, Any]) -> None:
    """Staging shares no volume, container, network, project or host port with prod, and every
    prod service has its staging twin with as many volumes, networks and published ports."""
    prod_objects, staging_objects = docker_objects(prod), docker_objects(staging)
    for kind, names in prod_objects.items():
        shared = names & staging_objects[kind]
        assert not shared, f"staging shares {kind} with prod: {sorted(shared)}"
        assert len(staging_objects[kind]) == len(names), kind
    assert set(staging["services"]) == set(prod["services"])
    for name, svc in prod["services"].items():
        twin = staging["services"][name]
        for field in ("volumes", "networks", "ports"):
            assert len(twin.get(field) or ()) == len(svc.get(field) or ()), (name, field)


def test_example_staging_passes_compose_config_and_is_separated(tmp_path: Path) -> None:
    result = generate(load_compose(PROD.read_text(), str(PROD)), source=PROD.name)
    staging_file = tmp_path / "docker-compose.staging.yml"
    staging_file.write_text(result.render())

    prod = compose_config(PROD, COMPOSE_DIR)
    staging = compose_config(staging_file, tmp_path)

    assert_separated(prod, staging)
    assert staging["name"] == "meeshy-staging"
    gateway = staging["services"]["gateway"]
    assert gateway["image"] == "isopen/meeshy-gateway:staging"
    assert gateway["environment"]["PUBLIC_URL"] == "https://gate.staging.meeshy.me"
    labels = gateway["labels"]
    assert labels["traefik.http.routers.gateway_staging.rule"] == (
        "Host(`gate.staging.meeshy.me`) || Host(`api.staging.meeshy.me`)"
    )
    socket = next(
        v
        for v in staging["services"]["traefik"]["volumes"]
        if v["source"] == "/var/run/docker.sock"
    )
    assert socket["read_only"] is True


def test_assert_separated_catches_a_shared_volume() -> None:
    prod = compose_config(PROD, COMPOSE_DIR)
    leaky = json.loads(json.dumps(prod))
    leaky["name"] = "other"
    for svc in leaky["services"].values():
        svc["container_name"] = "x-" + svc["container_name"]
        svc.pop("ports", None)
    for net in leaky["networks"].values():
        net["name"] = "x-" + net["name"]
    with pytest.raises(AssertionError, match="staging shares volumes with prod"):
        assert_separated(prod, leaky)
