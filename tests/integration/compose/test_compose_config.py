"""The generated staging file passes `docker compose config` and shares nothing with prod;
the loader reads scalars as compose does; compose's refusals become one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.compose.files import compose_config as whales_config
from tasks.lib.compose.generate import generate
from tasks.lib.compose.separation import separation_problems
from tasks.lib.compose.traefik import traefik_urls
from tasks.lib.compose.yaml import PlainTimestamp, load_compose, load_yaml
from tasks.lib.errors import CommandFailed, ConfigError

COMPOSE_DIR = Path(__file__).resolve().parents[3] / "example/infrastructure/docker/compose"
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


def assert_separated(prod: dict[str, Any], staging: dict[str, Any]) -> None:
    """Staging shares nothing with prod, and every prod service has its staging twin with as
    many volumes, networks and published ports."""
    assert separation_problems(prod, staging) == []
    assert set(staging["services"]) == set(prod["services"])
    for kind in ("volumes", "networks"):
        assert len(staging.get(kind) or {}) == len(prod.get(kind) or {}), kind
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
    urls = traefik_urls(staging)
    assert "https://gate.staging.meeshy.me" in urls
    assert "https://staging.meeshy.me" in urls
    assert not set(urls) & set(traefik_urls(prod))


def test_separation_problems_catch_a_shared_volume() -> None:
    prod = compose_config(PROD, COMPOSE_DIR)
    leaky = json.loads(json.dumps(prod))
    leaky["name"] = "other"
    for svc in leaky["services"].values():
        svc["container_name"] = "x-" + svc["container_name"]
        svc.pop("ports", None)
    for net in leaky["networks"].values():
        net["name"] = "x-" + net["name"]
    assert separation_problems(prod, leaky) == [
        f"volume {name!r} is used by both (prod key {key!r}, staging key {key!r})"
        for name, key in sorted((v["name"], k) for k, v in prod["volumes"].items())
    ]


# Unquoted environment values and what compose makes of them (as strings in the container).
SCALARS = {
    "PORT": "10022:22",
    "YES": "yes",
    "ON": "on",
    "OCTAL": "017",
    "OCTAL12": "0o17",
    "HEX": "0x1F",
    "UNDERSCORE": "1_000",
    "EXP": "1e3",
    "EIGHT": "08",
    "HALF": ".5",
    "TRUE": "True",
    "PLUS": "+5",
    "SIXTY": "1:30",
}


def _as_compose_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def test_the_loader_reads_scalars_as_compose_does(tmp_path: Path) -> None:
    body = "".join(f"      K_{k}: {v}\n" for k, v in SCALARS.items())
    text = f"services:\n  a:\n    image: busybox\n    environment:\n{body}"
    f = tmp_path / "c.yml"
    f.write_text(text)
    ours = load_compose(text, "c.yml")["services"]["a"]["environment"]
    theirs = compose_config(f, tmp_path)["services"]["a"]["environment"]
    assert {k: _as_compose_string(v) for k, v in ours.items()} == theirs


def test_an_unquoted_date_stays_as_compose_reads_it(tmp_path: Path) -> None:
    """Compose turns an unquoted date into a timestamp string; the generated file writes it
    unquoted again, so staging's container sees what prod's sees."""
    prod = tmp_path / "prod.yml"
    prod.write_text("services:\n  a:\n    image: busybox\n    environment:\n      D: 2026-01-25\n")
    data = load_compose(prod.read_text(), "prod.yml")
    assert isinstance(data["services"]["a"]["environment"]["D"], PlainTimestamp)
    staging = tmp_path / "staging.yml"
    staging.write_text(generate(data).render())
    env = "services", "a", "environment"
    prod_env = compose_config(prod, tmp_path)[env[0]][env[1]][env[2]]
    staging_env = compose_config(staging, tmp_path)[env[0]][env[1]][env[2]]
    assert staging_env == prod_env


def test_required_variable_names_the_variable_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEESHY_TEST_SECRET", raising=False)
    f = tmp_path / "prod.yml"
    f.write_text(
        "services:\n  a:\n    image: busybox\n    environment:\n      K: ${MEESHY_TEST_SECRET:?}\n"
    )
    with pytest.raises(ConfigError) as info:
        whales_config([f], tmp_path, what="the prod file prod.yml")
    assert info.value.line() == (
        "variable MEESHY_TEST_SECRET must be set: the prod file prod.yml requires it at "
        f"services.a.environment.K: set it in the environment or in {tmp_path}/.env "
        "(compose reads both, for prod and staging alike)"
    )
    (tmp_path / ".env").write_text("MEESHY_TEST_SECRET=s3cret\n")
    config = whales_config([f], tmp_path)
    assert config["services"]["a"]["environment"]["K"] == "s3cret"


def test_other_refusals_keep_compose_line_and_hint(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("services:\n  a:\n    image: busybox\n    ports: ['http:80']\n")
    with pytest.raises(CommandFailed) as info:
        whales_config([f], tmp_path, what="the generated staging file", hint="report it")
    line = info.value.line()
    assert line.startswith("the generated staging file does not pass `docker compose config`: ")
    assert line.endswith(": report it")
    assert "\n" not in line
    assert load_yaml("a: 1\n", "x") == {"a": 1}


def test_a_stacks_config_goes_through_the_same_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stack.*'s ``compose config``: the stack's env file interpolates, every profile is in,
    the project is the stack's; an unset ``${VAR:?}`` names the variable and the env file
    (exit 2), any other refusal names the stack's file (exit 2 too: a bad file)."""
    from tasks.lib.engine import EngineTarget
    from tasks.lib.stack import compose as stack_compose
    from tasks.lib.stack.plan import Stack

    monkeypatch.delenv("MEESHY_TEST_TAG", raising=False)
    f = tmp_path / "docker-compose.dev.yml"
    f.write_text(
        "services:\n  a:\n    image: busybox:${MEESHY_TEST_TAG:?pin the image}\n"
        "  b:\n    image: busybox\n    profiles: [full]\n"
    )
    env_file = tmp_path / "dev.env"
    env_file.write_text("MEESHY_TEST_TAG=1.36\n")
    stack = Stack("dev", f, "meeshy-thin-test", env_file)
    target = EngineTarget(env={})
    config = stack_compose.config(stack, target)
    assert config["name"] == "meeshy-thin-test"
    assert config["services"]["a"]["image"] == "busybox:1.36"
    assert set(config["services"]) == {"a", "b"}
    env_file.write_text("OTHER=1\n")
    with pytest.raises(ConfigError) as info:
        stack_compose.config(stack, target)
    assert info.value.line() == (
        f"variable MEESHY_TEST_TAG must be set: the compose file of stack dev ({f}) "
        "requires it at services.a.image (pin the image): set it in "
        "the environment or in "
        f"{env_file} (compose reads both)"
    )
    f.write_text("services:\n  a:\n    image: busybox\n    ports: ['http:80']\n")
    with pytest.raises(ConfigError) as failed:  # a bad file: exit 2
        stack_compose.config(stack, target)
    assert failed.value.line().startswith(
        f"the compose file of stack dev ({f}) does not pass `docker compose config`: "
    )
    assert failed.value.line().endswith(": fix it")
    env_file.write_text("OTHER=1\n# a comment = 2\n =1\n")  # compose names no file for this
    f.write_text("services:\n  a:\n    image: busybox\n")
    with pytest.raises(ConfigError) as env_failed:
        stack_compose.config(stack, target)
    assert env_failed.value.line() == (
        f"the env file {env_file} does not pass `docker compose config`: setenv: invalid "
        "argument (line 3: no variable name before '='): fix it"
    )
