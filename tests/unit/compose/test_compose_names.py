"""The staging naming rule."""

from __future__ import annotations

import pytest

from tasks.lib.compose.names import (
    is_staging_name,
    staging_container_name,
    staging_key,
    staging_network_name,
    staging_project_name,
    staging_volume_name,
)
from tasks.lib.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("meeshy-gateway-uploads", "meeshy-staging-gateway-uploads", id="plan-example"),
        pytest.param("meeshy-database-data", "meeshy-staging-database-data", id="database"),
        pytest.param("meeshy-web-uploads", "meeshy-staging-web-uploads", id="web"),
        pytest.param("meeshy_redis_data", "meeshy_staging_redis_data", id="underscore-kept"),
        pytest.param("meeshy", "meeshy-staging", id="bare-project-word"),
        pytest.param("foo", "staging-foo", id="non-meeshy-prefixed"),
        pytest.param("meeshyfoo", "staging-meeshyfoo", id="meeshy-not-a-word"),
        pytest.param("compose_models_data", "staging-compose_models_data", id="compose-default"),
    ],
)
def test_staging_volume_name(name: str, expected: str) -> None:
    assert staging_volume_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("meeshy-gateway", "meeshy-staging-gateway", id="gateway"),
        pytest.param("meeshy-p3x-redis-ui", "meeshy-staging-p3x-redis-ui", id="multi-word"),
        pytest.param("traefik", "staging-traefik", id="non-meeshy"),
    ],
)
def test_staging_container_name(name: str, expected: str) -> None:
    assert staging_container_name(name) == expected


def test_network_and_project_names_follow_the_same_rule() -> None:
    assert staging_network_name("meeshy-network") == "meeshy-staging-network"
    assert staging_project_name("meeshy") == "meeshy-staging"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("gateway_uploads", "gateway_staging_uploads", id="plan-example"),
        pytest.param("database_data", "database_staging_data", id="database"),
        pytest.param("redis-ui-data", "redis-staging-ui-data", id="dash-kept"),
        pytest.param("uploads", "uploads_staging", id="one-word"),
        pytest.param("meeshy-network", "meeshy-staging-network", id="network-key"),
        pytest.param("a_b-c", "a_staging_b-c", id="first-separator-wins"),
    ],
)
def test_staging_key(key: str, expected: str) -> None:
    assert staging_key(key) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("meeshy-staging-gateway-uploads", True, id="staging-volume"),
        pytest.param("gateway_staging_uploads", True, id="staging-key"),
        pytest.param("uploads_staging", True, id="suffix"),
        pytest.param("staging-foo", True, id="prefix"),
        pytest.param("Meeshy-STAGING-x", True, id="case-insensitive"),
        pytest.param("gate.staging.meeshy.me", True, id="dotted"),
        pytest.param("meeshy-gateway-uploads", False, id="prod-volume"),
        pytest.param("stagingarea", False, id="not-a-word"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_staging_name(name: str, expected: bool) -> None:
    assert is_staging_name(name) is expected


@pytest.mark.parametrize(
    "fn",
    [staging_volume_name, staging_container_name, staging_key, staging_network_name],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("name", ["meeshy-staging-gateway-uploads", "uploads_staging", ""])
def test_already_staging_or_empty_is_refused(fn: object, name: str) -> None:
    assert callable(fn)
    with pytest.raises(ConfigError):
        fn(name)


def test_refusal_message_names_the_input() -> None:
    with pytest.raises(ConfigError, match="'meeshy-staging-x' is already a staging name"):
        staging_volume_name("meeshy-staging-x")
