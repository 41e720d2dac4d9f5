"""Which URLs a compose configuration serves through Traefik Host() rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.lib.compose.generate import generate
from tasks.lib.compose.traefik import (
    TraefikRoute,
    rule_urls,
    service_routes,
    traefik_routes,
    traefik_urls,
)
from tasks.lib.compose.yaml import read_compose

EXAMPLE = (
    Path(__file__).resolve().parents[3]
    / "example/infrastructure/docker/compose/docker-compose.prod.yml"
)


@pytest.mark.parametrize(
    ("rule", "tls", "expected"),
    [
        pytest.param("Host(`a.example`)", True, ["https://a.example"], id="one"),
        pytest.param("Host(`a.x`) || Host(`b.x`)", True, ["https://a.x", "https://b.x"], id="or"),
        pytest.param("Host(`a.x`, `b.x`)", False, ["http://a.x", "http://b.x"], id="v2-list"),
        pytest.param('Host("a.x")', True, ["https://a.x"], id="double-quotes"),
        pytest.param(
            "Host(`a.x`) && PathPrefix(`/api`)", True, ["https://a.x/api"], id="path-prefix"
        ),
        pytest.param(
            "(Host(`a.x`) && Path(`/x`)) || Host(`b.x`)",
            True,
            ["https://a.x/x", "https://b.x"],
            id="path-per-alternative",
        ),
        pytest.param("HostRegexp(`{sub:.+}.x`)", True, [], id="regexp-is-not-a-url"),
        pytest.param("PathPrefix(`/`)", True, [], id="no-host"),
        pytest.param("Host(`a.x`) || PathPrefix(`/p||q`)", True, ["https://a.x"], id="quoted-or"),
    ],
)
def test_rule_urls(rule: str, tls: bool, expected: list[str]) -> None:
    assert rule_urls(rule, tls=tls) == expected


def test_rule_urls_through_a_host_port() -> None:
    """A stack's entrypoint published on another port (staging's Traefik on 10443)."""
    rule = "(Host(`a.x`) && PathPrefix(`/api`)) || Host(`b.x`)"
    assert rule_urls(rule, tls=True, port=10443) == ["https://a.x:10443/api", "https://b.x:10443"]


def test_service_routes_read_entrypoints_and_tls() -> None:
    labels = {
        "traefik.http.routers.gw.rule": "Host(`gate.x`)",
        "traefik.http.routers.gw.entrypoints": "web, websecure",
        "traefik.http.routers.gw.tls": "true",
        "traefik.http.routers.off.rule": "Host(`o.x`)",
        "traefik.http.routers.off.tls": "false",
        "traefik.http.routers.none.rule": "PathPrefix(`/`)",
    }
    assert service_routes("gateway", labels) == [
        TraefikRoute("gateway", "gw", "Host(`gate.x`)", True, ("web", "websecure")),
        TraefikRoute("gateway", "off", "Host(`o.x`)", False, ()),
    ]
    assert service_routes("gateway", {**labels, "traefik.enable": "false"}) == []


def test_routes_of_a_normalised_config() -> None:
    config = {
        "services": {
            "web": {
                "labels": {
                    "traefik.enable": "true",
                    "traefik.http.routers.web.rule": "Host(`staging.meeshy.me`)",
                    "traefik.http.routers.web.tls.certresolver": "le",
                    "traefik.http.routers.plain.rule": "Host(`plain.meeshy.me`)",
                    "traefik.tcp.routers.db.rule": "HostSNI(`db.meeshy.me`)",
                }
            },
            "off": {
                "labels": {
                    "traefik.enable": "false",
                    "traefik.http.routers.off.rule": "Host(`off.meeshy.me`)",
                }
            },
            "tls-flag": {
                "labels": [
                    "traefik.http.routers.t.rule=Host(`t.x`)",
                    "traefik.http.routers.t.tls=true",
                ]
            },
            "tls-false": {
                "labels": [
                    "traefik.http.routers.f.rule=Host(`f.x`)",
                    "traefik.http.routers.f.tls=false",
                ]
            },
            "none": {"image": "x"},
        }
    }
    assert traefik_routes(config)[0] == TraefikRoute(
        "web", "web", "Host(`staging.meeshy.me`)", tls=True
    )
    assert traefik_routes(config)[0].urls == ("https://staging.meeshy.me",)
    assert traefik_urls(config) == [
        "https://staging.meeshy.me",
        "http://plain.meeshy.me",
        "https://t.x",
        "http://f.x",
    ]
    assert traefik_urls({}) == []


def test_example_urls_prod_and_staging() -> None:
    prod = read_compose(EXAMPLE)
    urls = traefik_urls(prod)
    assert "https://gate.${DOMAIN:-meeshy.me}" in urls
    assert len(urls) == len(set(urls))
    staging = traefik_urls(generate(prod).data)
    assert "https://gate.staging.${DOMAIN:-meeshy.me}" in staging
    assert "https://staging.${DOMAIN:-meeshy.me}" in staging
    assert not set(urls) & set(staging)
