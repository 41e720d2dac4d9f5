"""Separation of a stack from prod: every shared Docker object or host port is named."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.lib.stack.separation import clashes, shared_volumes
from tasks.lib.stack.spec import parse_config

PROD: dict[str, Any] = {
    "name": "meeshy-prod",
    "services": {
        "gateway": {
            "container_name": "meeshy-gateway",
            "ports": [{"target": 3000, "published": "3000"}],
        },
        "database": {
            "ports": [{"target": 27017, "published": "27017", "host_ip": "127.0.0.1"}],
        },
        "traefik": {
            "ports": [
                {"target": 443, "published": "443", "protocol": "tcp"},
                {"target": 443, "published": "443", "protocol": "udp"},
            ]
        },
    },
    "networks": {"meeshy-network": {"name": "meeshy-network"}},
    "volumes": {"gateway_uploads": {"name": "meeshy-gateway-uploads"}},
}

STAGING: dict[str, Any] = {
    "name": "meeshy-staging",
    "services": {
        "gateway": {
            "container_name": "meeshy-staging-gateway",
            "ports": [{"target": 3000, "published": "13000"}],
        },
        "database": {
            "ports": [{"target": 27017, "published": "37017", "host_ip": "127.0.0.1"}],
        },
        "traefik": {
            "ports": [
                {"target": 443, "published": "10443", "protocol": "tcp"},
                {"target": 443, "published": "10443", "protocol": "udp"},
            ]
        },
    },
    "networks": {"meeshy-network": {"name": "meeshy-staging-network"}},
    "volumes": {"gateway_staging_uploads": {"name": "meeshy-staging-gateway-uploads"}},
}


def _with(base: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(base)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_generated_staging_is_separate() -> None:
    assert clashes(parse_config(PROD), parse_config(STAGING)) == []


@pytest.mark.parametrize(
    ("path", "value", "described"),
    [
        pytest.param(
            ["name"],
            "meeshy-prod",
            "project meeshy-prod (prod project, here project)",
            id="project",
        ),
        pytest.param(
            ["services", "gateway", "container_name"],
            "meeshy-gateway",
            "container name meeshy-gateway (prod gateway, here gateway)",
            id="container",
        ),
        pytest.param(
            ["networks", "meeshy-network", "name"],
            "meeshy-network",
            "network meeshy-network (prod meeshy-network, here meeshy-network)",
            id="network",
        ),
        pytest.param(
            ["volumes", "gateway_staging_uploads", "name"],
            "meeshy-gateway-uploads",
            "volume meeshy-gateway-uploads (prod gateway_uploads, here gateway_staging_uploads)",
            id="volume",
        ),
        pytest.param(
            ["services", "gateway", "ports"],
            [{"target": 3000, "published": "3000", "host_ip": "127.0.0.1"}],
            "host port 3000/tcp (prod gateway, here gateway)",
            id="port-any-vs-loopback",
        ),
        pytest.param(
            ["services", "traefik", "ports"],
            [{"target": 443, "published": "443", "protocol": "udp"}],
            "host port 443/udp (prod traefik, here traefik)",
            id="port-udp",
        ),
    ],
)
def test_each_kind_of_clash(path: list[Any], value: Any, described: str) -> None:
    found = clashes(parse_config(PROD), parse_config(_with(STAGING, path, value)))
    assert [c.describe() for c in found] == [described]


@pytest.mark.parametrize(
    ("prod_ip", "other_ip", "clash"),
    [
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("", "127.0.0.1", True),
        ("0.0.0.0", "::1", True),
        ("127.0.0.1", "::1", False),
    ],
)
def test_port_addresses(prod_ip: str, other_ip: str, clash: bool) -> None:
    def one(ip: str, name: str) -> Any:
        port = {"target": 1, "published": "9", "host_ip": ip}
        return parse_config({"name": name, "services": {"s": {"ports": [port]}}})

    assert bool(clashes(one(prod_ip, "a"), one(other_ip, "b"))) is clash


def test_random_host_ports_never_clash() -> None:
    a = parse_config({"name": "a", "services": {"s": {"ports": [{"target": 9229}]}}})
    b = parse_config({"name": "b", "services": {"s": {"ports": [{"target": 9229}]}}})
    assert clashes(a, b) == []


def test_shared_volumes() -> None:
    stack = parse_config(
        {
            "name": "meeshy-dev",
            "volumes": {
                "mine": {"name": "meeshy-dev-data"},
                "theirs": {"name": "meeshy-gateway-uploads"},
                "mounted": {"name": "legacy"},
                "ext": {"name": "meeshy-web-uploads", "external": True},
            },
        }
    )
    prod = parse_config(
        {
            "name": "meeshy-prod",
            "volumes": {
                "a": {"name": "meeshy-gateway-uploads"},
                "b": {"name": "meeshy-web-uploads"},
            },
        }
    )
    # external volumes are never removed by down -v; "legacy" is mounted by a prod container
    assert shared_volumes(stack, prod, ["legacy"]) == ["legacy", "meeshy-gateway-uploads"]
    assert shared_volumes(stack, None) == []
