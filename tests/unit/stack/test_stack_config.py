"""meeshy.stacks: defaults as the Makefile, overrides, validation, --env did-you-mean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.lib.config import DEFAULT_STACKS, StackConfig, defaults, resolve
from tasks.lib.errors import ConfigError


def _resolve(tmp_path: Path, raw: dict[str, Any]) -> Any:
    return resolve(raw, env={}, project_dir=tmp_path)


def test_defaults_are_the_makefiles_plus_staging(tmp_path: Path) -> None:
    s = _resolve(tmp_path, {})
    assert [st.name for st in s.stacks] == ["dev", "local", "prod", "staging"]
    assert s.stack("dev") == StackConfig(
        "dev",
        "infrastructure/docker/compose/docker-compose.dev.yml",
        "meeshy-dev",
        "infrastructure/envs/.env.example",
    )
    assert s.stack("prod").project == "meeshy-prod"
    assert s.stack("staging").file.endswith("docker-compose.staging.yml")
    assert defaults()["stacks"] == DEFAULT_STACKS
    assert defaults()["stacks"] is not DEFAULT_STACKS  # a copy: Invoke may mutate it


def test_one_key_overrides_and_a_new_stack(tmp_path: Path) -> None:
    s = _resolve(
        tmp_path,
        {
            "stacks": {
                "prod": {"file": "deploy/prod.yml"},
                "qa": {"file": "deploy/qa.yml", "project": "meeshy-qa", "env_file": ""},
            }
        },
    )
    assert s.stack("prod") == StackConfig(
        "prod", "deploy/prod.yml", "meeshy-prod", "infrastructure/envs/.env.example"
    )
    assert s.stack("qa").env_file == ""


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"stacks": []}, "meeshy.stacks must be a mapping", id="not-mapping"),
        pytest.param(
            {"stacks": {"dev": {"fil": "x"}}},
            "unknown config key meeshy.stacks.dev.fil",
            id="unknown-key",
        ),
        pytest.param(
            {"stacks": {"dev": {"file": 3}}},
            "meeshy.stacks.dev.file must be a string",
            id="not-string",
        ),
        pytest.param(
            {"stacks": {"qa": {"file": "x.yml"}}},
            "meeshy.stacks.qa.project is not set",
            id="missing-project",
        ),
        pytest.param(
            {"stacks": {"dev": {"project": "Meeshy Dev"}}},
            "is not a compose project name",
            id="bad-project",
        ),
    ],
)
def test_bad_stack_config_is_one_line(tmp_path: Path, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _resolve(tmp_path, raw)
    assert message in err.value.line()
    assert err.value.exit_code == 2


def test_unknown_key_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'env_file'"):
        _resolve(tmp_path, {"stacks": {"dev": {"envfile": "x"}}})


def test_unknown_env_did_you_mean(tmp_path: Path) -> None:
    s = _resolve(tmp_path, {})
    with pytest.raises(ConfigError) as err:
        s.stack("stagign")
    assert err.value.line() == (
        "unknown stack --env 'stagign': did you mean 'staging'? (known: dev, local, prod, staging)"
    )
