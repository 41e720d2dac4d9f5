"""What two compose configurations share: the check staging.compose makes before writing and
stack.up --env staging makes before starting; the volumes stack.down --volumes must keep."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.compose.generate import generate
from tasks.lib.compose.separation import (
    Clash,
    claims,
    clashes,
    separation_problems,
    shared_volumes,
)
from tasks.lib.compose.yaml import read_compose

EXAMPLE = (
    Path(__file__).resolve().parents[3]
    / "example/infrastructure/docker/compose/docker-compose.prod.yml"
)

PROD: dict[str, Any] = {
    "name": "meeshy",
    "services": {
        "gateway": {
            "container_name": "meeshy-gateway",
            "ports": [
                {"target": 3000, "published": "3000", "protocol": "tcp"},
                {"target": 443, "published": "443", "protocol": "udp"},
                {"target": 6379, "published": "6379", "host_ip": "127.0.0.1"},
            ],
        }
    },
    "volumes": {"data": {"name": "meeshy-data"}},
    "networks": {"net": {"name": "meeshy-network"}},
}


def staging(**changes: Any) -> dict[str, Any]:
    other = copy.deepcopy(PROD)
    other["name"] = "meeshy-staging"
    other["services"]["gateway"]["container_name"] = "meeshy-staging-gateway"
    other["services"]["gateway"]["ports"] = []
    other["volumes"] = {"data": {"name": "meeshy-staging-data"}}
    other["networks"] = {"net": {"name": "meeshy-staging-network"}}
    other.update(changes)
    return other


def test_separated_configs_have_no_problem() -> None:
    assert separation_problems(PROD, staging()) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param({"name": "meeshy"}, "both are compose project 'meeshy'", id="project"),
        pytest.param(
            {"services": {"gw": {"container_name": "meeshy-gateway"}}},
            "container name 'meeshy-gateway' is used by both (prod service 'gateway', "
            "staging service 'gw')",
            id="container",
        ),
        pytest.param(
            {"volumes": {"v": {"name": "meeshy-data"}}},
            "volume 'meeshy-data' is used by both (prod key 'data', staging key 'v')",
            id="volume",
        ),
        pytest.param(
            {"networks": {"n": {"name": "meeshy-network", "external": True}}},
            "network 'meeshy-network' is used by both (prod key 'net', staging key 'n')",
            id="network",
        ),
        pytest.param(
            {"services": {"x": {"ports": ["3000:3000"]}}},
            "host port 3000/tcp is published by both (prod service 'gateway', staging service 'x')",
            id="port-short-syntax",
        ),
        pytest.param(
            {"services": {"x": {"ports": ["2990-3005:80"]}}},
            "host port 3000/tcp is published by both (prod service 'gateway', staging service 'x')",
            id="port-in-a-range",
        ),
        pytest.param(
            {"services": {"x": {"ports": ["443:443/udp"]}}},
            "host port 443/udp is published by both (prod service 'gateway', staging service 'x')",
            id="udp",
        ),
        pytest.param(
            {"services": {"x": {"ports": ["0.0.0.0:6379:6379"]}}},
            "host port 6379/tcp is published by both (prod service 'gateway', staging service 'x')",
            id="any-address-overlaps-loopback",
        ),
    ],
)
def test_each_shared_thing_is_one_line(changes: dict[str, Any], problem: str) -> None:
    assert separation_problems(PROD, staging(**changes)) == [problem]


@pytest.mark.parametrize(
    "ports",
    [
        pytest.param(["443:443"], id="other-protocol"),
        pytest.param(["127.0.0.2:6379:6379"], id="other-address"),
        pytest.param(["3000"], id="container-port-only"),
    ],
)
def test_no_overlap(ports: list[str]) -> None:
    assert separation_problems(PROD, staging(services={"x": {"ports": ports}})) == []


def test_unnamed_objects_take_the_project_name() -> None:
    prod = {"name": "p", "services": {}, "volumes": {"cache": None}, "networks": {"default": {}}}
    assert claims(prod).volumes == {"p_cache": "cache"}
    assert claims(prod).networks == {"p_default": "default"}
    same = separation_problems(prod, {**prod, "name": "q", "volumes": {"c": {"name": "p_cache"}}})
    assert same == ["volume 'p_cache' is used by both (prod key 'cache', staging key 'c')"]


def test_example_prod_and_its_staging_are_separated() -> None:
    prod = read_compose(EXAMPLE)
    assert separation_problems(prod, generate(prod).data) == []
    assert separation_problems(prod, prod) != []


def test_claims_to_json() -> None:
    data = claims(PROD).to_json()
    assert data["project"] == "meeshy"
    assert data["containers"] == {"meeshy-gateway": "gateway"}
    assert {"port": 6379, "protocol": "tcp", "host_ip": "127.0.0.1", "service": "gateway"} in data[
        "host_ports"
    ]


# -- normalised configurations (``docker compose config --format json``), as stack.up reads --

NORMALISED_PROD: dict[str, Any] = {
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

NORMALISED_STAGING: dict[str, Any] = {
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
    data = copy.deepcopy(base)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_normalised_staging_is_separate() -> None:
    assert clashes(NORMALISED_PROD, NORMALISED_STAGING) == []


@pytest.mark.parametrize(
    ("path", "value", "clash", "described"),
    [
        pytest.param(
            ["name"],
            "meeshy-prod",
            Clash("project", "meeshy-prod"),
            "both are compose project 'meeshy-prod'",
            id="project",
        ),
        pytest.param(
            ["services", "gateway", "container_name"],
            "meeshy-gateway",
            Clash("container name", "meeshy-gateway", "gateway", "gateway"),
            "container name 'meeshy-gateway' is used by both (prod service 'gateway', "
            "staging service 'gateway')",
            id="container",
        ),
        pytest.param(
            ["networks", "meeshy-network", "name"],
            "meeshy-network",
            Clash("network", "meeshy-network", "meeshy-network", "meeshy-network"),
            "network 'meeshy-network' is used by both (prod key 'meeshy-network', "
            "staging key 'meeshy-network')",
            id="network",
        ),
        pytest.param(
            ["volumes", "gateway_staging_uploads", "name"],
            "meeshy-gateway-uploads",
            Clash("volume", "meeshy-gateway-uploads", "gateway_uploads", "gateway_staging_uploads"),
            "volume 'meeshy-gateway-uploads' is used by both (prod key 'gateway_uploads', "
            "staging key 'gateway_staging_uploads')",
            id="volume",
        ),
        pytest.param(
            ["services", "gateway", "ports"],
            [{"target": 3000, "published": "3000", "host_ip": "127.0.0.1"}],
            Clash("host port", "3000/tcp", "gateway", "gateway"),
            "host port 3000/tcp is published by both (prod service 'gateway', "
            "staging service 'gateway')",
            id="port-any-vs-loopback",
        ),
        pytest.param(
            ["services", "traefik", "ports"],
            [{"target": 443, "published": "443", "protocol": "udp"}],
            Clash("host port", "443/udp", "traefik", "traefik"),
            "host port 443/udp is published by both (prod service 'traefik', "
            "staging service 'traefik')",
            id="port-udp",
        ),
    ],
)
def test_each_kind_of_clash(path: list[Any], value: Any, clash: Clash, described: str) -> None:
    found = clashes(NORMALISED_PROD, _with(NORMALISED_STAGING, path, value))
    assert found == [clash]
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
    def one(ip: str, name: str) -> dict[str, Any]:
        port = {"target": 1, "published": "9", "host_ip": ip}
        return {"name": name, "services": {"s": {"ports": [port]}}}

    assert bool(clashes(one(prod_ip, "a"), one(other_ip, "b"))) is clash


def test_random_host_ports_never_clash() -> None:
    a = {"name": "a", "services": {"s": {"ports": [{"target": 9229}]}}}
    b = {"name": "b", "services": {"s": {"ports": [{"target": 9229}]}}}
    assert clashes(a, b) == []


def test_shared_volumes() -> None:
    stack = {
        "name": "meeshy-dev",
        "volumes": {
            "mine": {"name": "meeshy-dev-data"},
            "theirs": {"name": "meeshy-gateway-uploads"},
            "mounted": {"name": "legacy"},
            "ext": {"name": "meeshy-web-uploads", "external": True},
        },
    }
    prod = {
        "name": "meeshy-prod",
        "volumes": {
            "a": {"name": "meeshy-gateway-uploads"},
            "b": {"name": "meeshy-web-uploads"},
        },
    }
    # external volumes are never removed by down -v; "legacy" is mounted by a prod container
    assert shared_volumes(stack, prod, ["legacy"]) == ["legacy", "meeshy-gateway-uploads"]
    assert shared_volumes(stack, None) == []


def _mounting(*mounts: Any, volumes: Any = None, **svc: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"name": "x", "services": {"app": {"volumes": list(mounts), **svc}}}
    if volumes is not None:
        config["volumes"] = volumes
    return config


BOUND = {
    "data": {"driver": "local", "driver_opts": {"type": "none", "o": "bind", "device": "/srv/prod"}}
}


@pytest.mark.parametrize(
    ("prod", "staging", "found"),
    [
        # a named volume bound to a host folder, kept by staging: prod's data, writable
        (_mounting("data:/d", volumes=BOUND), _mounting("data:/d", volumes=BOUND), ["/srv/prod"]),
        # a bind mount into that folder, short and long syntax
        (_mounting("data:/d", volumes=BOUND), _mounting("/srv/prod/up:/u"), ["/srv/prod/up"]),
        (
            _mounting("/srv/prod/up:/u:ro"),
            _mounting({"type": "bind", "source": "/srv", "target": "/s"}),
            ["/srv"],
        ),
        # read-only in staging writes nothing (Traefik's Docker socket, a secrets file)
        (
            _mounting("/var/run/docker.sock:/var/run/docker.sock:ro"),
            _mounting(
                "/var/run/docker.sock:/var/run/docker.sock:ro",
                {"type": "bind", "source": "/srv/prod", "target": "/p", "read_only": True},
            ),
            [],
        ),
        # neighbours are not the same folder; named volumes are the volume check's business
        (_mounting("/srv/prod:/p"), _mounting("/srv/prod-staging:/p", "data:/d"), []),
    ],
)
def test_a_host_folder_prod_mounts_is_never_writable_by_staging(
    prod: dict[str, Any], staging: dict[str, Any], found: list[str]
) -> None:
    staging["name"] = "y"
    got = [c for c in clashes(prod, staging) if c.kind == "host path"]
    assert [c.value for c in got] == found
    for c in got:
        assert "and writable by staging (" in c.describe()


def test_staging_on_the_host_network_is_refused() -> None:
    staging = {"name": "y", "services": {"app": {"network_mode": "host"}}}
    assert separation_problems({"name": "x", "services": {}}, staging) == [
        "staging service 'app' uses the host's network (network_mode: host)"
    ]
