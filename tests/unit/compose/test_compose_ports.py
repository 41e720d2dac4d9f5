"""Host ports: what a file publishes, the --port flag, moves that depend on this host."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.lib.compose.generate import StagingOptions, generate
from tasks.lib.compose.ports import (
    BumpedPort,
    Port,
    bumped_ports,
    entry_ports,
    first_host_port,
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
    assert first_host_port("127.0.0.1:8080:80/tcp") == 8080
    assert first_host_port("3000") is None
    assert first_host_port({"target": 80, "published": "8000-8010"}) == 8000
    assert first_host_port("${P:-80}:80") == 80  # a variable's default, as the allocator


def test_a_port_moved_from_a_variable_is_reported_when_bumped() -> None:
    prod = {"services": {"web": {"image": "x", "ports": ["${WEB_PORT:-3100}:3100"]}}}
    opts = StagingOptions(taken_ports=frozenset({13100}))
    result = generate(prod, opts)
    assert bumped_ports(result.port_moves, opts.port_offset, opts.port_map) == [
        BumpedPort("web", 13100, 13101)
    ]


@pytest.mark.parametrize(
    ("entry", "ports"),
    [
        pytest.param(3000, [Port(3000, None)], id="int"),
        pytest.param("3000-3001", [Port(3000, None), Port(3001, None)], id="container-range"),
        pytest.param("8080:80", [Port(80, 8080)], id="short"),
        pytest.param(
            "127.0.0.1:9090-9091:8080-8081/udp",
            [Port(8080, 9090, "udp", "127.0.0.1"), Port(8081, 9091, "udp", "127.0.0.1")],
            id="ranges-pair-up",
        ),
        pytest.param(
            "2990-2991:80", [Port(80, 2990), Port(80, 2991)], id="host-range-one-container-port"
        ),
        pytest.param("[::1]:6001:6001", [Port(6001, 6001, "tcp", "::1")], id="ipv6"),
        pytest.param("[::]:6001:6001", [Port(6001, 6001, "tcp", "::")], id="ipv6-any"),
        pytest.param("127.0.0.1::5000", [Port(5000, None, "tcp", "127.0.0.1")], id="engine-picks"),
        pytest.param("${P:-13100}:3100", [Port(3100, 13100)], id="variable-default"),
        pytest.param("${P}:3100", [], id="variable-without-default"),
        pytest.param(
            {"mode": "ingress", "target": 443, "published": "10443", "protocol": "udp"},
            [Port(443, 10443, "udp")],
            id="long",
        ),
        pytest.param(
            {"target": 80, "published": "7000-7001"},
            [Port(80, 7000), Port(80, 7001)],
            id="long-host-range",
        ),
        pytest.param({"target": 9229, "protocol": "tcp"}, [Port(9229, None)], id="unpublished"),
        pytest.param({"published": "80"}, [], id="no-target"),
        pytest.param(None, [], id="odd"),
    ],
)
def test_entry_ports(entry: Any, ports: list[Port]) -> None:
    assert entry_ports(entry) == ports


def test_port_overlaps() -> None:
    assert Port(1, 9, "tcp", "").overlaps(Port(2, 9, "tcp", "127.0.0.1"))
    assert not Port(1, 9, "tcp", "127.0.0.1").overlaps(Port(2, 9, "tcp", "::1"))
    assert not Port(1, 9, "tcp").overlaps(Port(1, 9, "udp"))
    assert not Port(1, None).overlaps(Port(1, None))


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
