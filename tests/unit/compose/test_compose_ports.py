"""Host ports: what a file publishes, the --port flag, moves that depend on this host."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.lib.compose.generate import StagingOptions, generate
from tasks.lib.compose.ports import (
    BumpedPort,
    bumped_ports,
    host_port,
    parse_port_map,
    published_host_ports,
)
from tasks.lib.compose.yaml import load_compose
from tasks.lib.errors import ConfigError


def test_bumped_ports_are_named() -> None:
    prod = {"services": {"gateway": {"image": "x", "ports": ["3000:3000", "127.0.0.1:80:80"]}}}
    opts = StagingOptions(taken_ports=frozenset({13000}), port_map={80: 8080})
    result = generate(prod, opts)
    assert bumped_ports(result.port_moves, opts.port_offset, opts.port_map) == [
        BumpedPort("gateway", 13000, 13001)
    ]
    assert host_port("127.0.0.1:8080:80/tcp", short=True) == 8080
    assert host_port("3000", short=True) is None
    assert host_port("8000-8010") == 8000


def test_published_host_ports_reads_unquoted_ports_as_compose_does() -> None:
    """The staging file's own ports are read back to keep them on a rerun: an unquoted
    ``10022:22`` (YAML 1.1: the integer 601342) must count as 10022."""
    text = (
        "services:\n"
        "  ssh:\n    ports:\n      - 10022:22\n      - 127.0.0.1:10080:80/udp\n"
        "  web:\n    ports:\n      - 19090-19091:8080-8081\n      - '3000'\n"
        "      - target: 8000\n        published: 18000\n"
        "      - ${P:-13100}:3100\n      - ${NODEFAULT}:1\n      - target: 1\n"
    )
    assert published_host_ports(load_compose(text, "staging.yml")) == {
        10022,
        10080,
        19090,
        19091,
        18000,
        13100,
    }


@pytest.mark.parametrize(
    "data",
    [None, [], {"services": None}, {"services": {"a": None}}, {"services": {"a": {"ports": 3}}}],
)
def test_published_host_ports_of_odd_data_is_empty(data: Any) -> None:
    assert published_host_ports(data) == frozenset()


def test_published_host_ports_of_normalised_config() -> None:
    config = {
        "services": {
            "a": {
                "ports": [
                    {"mode": "ingress", "target": 22, "published": "10022", "protocol": "tcp"}
                ]
            }
        }
    }
    assert published_host_ports(config) == {10022}


def test_parse_port_map() -> None:
    assert parse_port_map(["80:10080", "443=10443"]) == {80: 10080, 443: 10443}


@pytest.mark.parametrize("item", ["80", "a:b", "80:", "0:10", "80:70000"])
def test_parse_port_map_refuses(item: str) -> None:
    with pytest.raises(ConfigError, match="--port"):
        parse_port_map([item])
