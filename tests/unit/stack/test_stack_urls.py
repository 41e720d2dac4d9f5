"""URLs from Traefik rules and published ports, as `make urls` lists them."""

from __future__ import annotations

from typing import Any

from tasks.lib.stack.spec import parse_config
from tasks.lib.stack.urls import entrypoints, stack_urls


def _project(traefik_ports: list[dict[str, Any]], **services: Any) -> Any:
    return parse_config(
        {
            "name": "p",
            "services": {
                "traefik": {
                    "command": [
                        "--providers.docker=true",
                        "--entrypoints.web.address=:80",
                        "--entryPoints.websecure.address=:443",
                        "--entrypoints.quic.address=:443/udp",
                    ],
                    "ports": traefik_ports,
                    "labels": {
                        "traefik.http.routers.dashboard.rule": "Host(`traefik.meeshy.me`)",
                        "traefik.http.routers.dashboard.tls.certresolver": "le",
                    },
                },
                **services,
            },
        }
    )


GATEWAY: dict[str, Any] = {
    "labels": {
        "traefik.enable": "true",
        "traefik.http.routers.gateway.rule": 'Host(`gate.meeshy.me`) || Host("api.meeshy.me")',
        "traefik.http.routers.gateway.entrypoints": "websecure",
    },
    "ports": [{"target": 3000, "published": "3000"}],
}


def test_entrypoints_are_read_from_flags() -> None:
    eps = entrypoints(_project([{"target": 443, "published": "10443", "protocol": "tcp"}]))
    assert {k: (e.port, e.published) for k, e in eps.items()} == {
        "web": (80, None),
        "websecure": (443, 10443),
    }


def test_prod_urls() -> None:
    spec = _project(
        [{"target": 80, "published": "80"}, {"target": 443, "published": "443"}],
        gateway=GATEWAY,
        database={"ports": [{"target": 27017, "published": "27017", "host_ip": "127.0.0.1"}]},
        redis={"ports": [{"target": 6379, "published": "6379", "host_ip": "127.0.0.1"}]},
    )
    # Traefik routes first, then published ports, each in service order
    assert [u.url for u in stack_urls(spec)] == [
        "https://traefik.meeshy.me",
        "https://gate.meeshy.me",
        "https://api.meeshy.me",
        "http://localhost:80",
        "https://localhost:443",
        "http://localhost:3000",
        "mongodb://127.0.0.1:27017",
        "redis://127.0.0.1:6379",
    ]


def test_staging_urls_carry_the_moved_port() -> None:
    spec = _project(
        [{"target": 80, "published": "10080"}, {"target": 443, "published": "10443"}],
        gateway={
            **GATEWAY,
            "labels": {
                **GATEWAY["labels"],
                "traefik.http.routers.gateway.rule": "Host(`gate.staging.meeshy.me`)",
            },
        },
    )
    urls = stack_urls(spec, "staging.host")
    assert urls[0].url == "https://traefik.meeshy.me:10443"
    assert urls[1].url == "https://gate.staging.meeshy.me:10443"
    assert urls[1].via == "traefik router gateway (websecure)"
    assert "http://staging.host:3000" in [u.url for u in urls]


def test_router_without_tls_on_plain_entrypoint() -> None:
    spec = _project(
        [{"target": 80, "published": "8081"}],
        web={
            "labels": {
                "traefik.http.routers.web.rule": "Host(`meeshy.local`)",
                "traefik.http.routers.web.entrypoints": "web",
            }
        },
    )
    assert stack_urls(spec)[1].url == "http://meeshy.local:8081"


def test_unpublished_entrypoint_and_disabled_service() -> None:
    spec = _project(
        [],
        gateway=GATEWAY,
        hidden={
            "labels": {
                "traefik.enable": "false",
                "traefik.http.routers.h.rule": "Host(`h.meeshy.me`)",
            }
        },
    )
    urls = stack_urls(spec)
    assert urls[1].url == "https://gate.meeshy.me"
    assert urls[1].via.endswith("entrypoint not published on the host")
    assert not any("h.meeshy.me" in u.url for u in urls)


def test_no_traefik_at_all() -> None:
    spec = parse_config(
        {
            "services": {
                "web": {
                    "labels": {"traefik.http.routers.w.rule": "Host(`w.x`)"},
                    "ports": [{"target": 3100, "published": "3100", "host_ip": "::1"}],
                }
            }
        }
    )
    assert [u.url for u in stack_urls(spec)] == ["http://w.x", "http://[::1]:3100"]
