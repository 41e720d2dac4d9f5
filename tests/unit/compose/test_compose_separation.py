"""What two compose configurations share: the check staging.compose makes before writing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.compose.generate import generate
from tasks.lib.compose.separation import claims, separation_problems
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
            "volume 'meeshy-data' is used by both",
            id="volume",
        ),
        pytest.param(
            {"networks": {"n": {"name": "meeshy-network", "external": True}}},
            "network 'meeshy-network' is used by both",
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
    assert claims(prod).volumes == {"p_cache"}
    assert claims(prod).networks == {"p_default"}
    same = separation_problems(prod, {**prod, "name": "q", "volumes": {"c": {"name": "p_cache"}}})
    assert same == ["volume 'p_cache' is used by both"]


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
