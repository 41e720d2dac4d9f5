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


def _running(service: str, *ports: tuple[int, int], state: str = "running") -> Any:
    from tasks.lib.compose.ports import Port
    from tasks.lib.stack.containers import ContainerState

    bound = [Port(t, h, "tcp", "0.0.0.0") for t, h in ports]
    bound += [Port(t, h, "tcp", "::") for t, h in ports]
    return ContainerState(
        id=service, name=f"p-{service}-1", service=service, state=state, ports=tuple(bound)
    )


def _dev() -> Any:
    return _project(
        [{"target": 80, "published": "8080"}],
        gateway={**GATEWAY, "profiles": ["full"]},
        web={
            "profiles": ["full"],
            "labels": {"traefik.http.routers.web.rule": "Host(`meeshy.local`)"},
            "ports": [{"target": 3100}],  # the engine picks the host port
        },
        database={"ports": [{"target": 27017, "published": "27017", "host_ip": "127.0.0.1"}]},
        worker={},
    )


def test_urls_of_a_running_stack_are_the_engines_ports() -> None:
    """Host ports as the engine published them (a variable moved at up, the engine picked
    one), not the file's; a Traefik entrypoint likewise."""
    containers = [
        _running("traefik", (80, 18080)),
        _running("gateway", (3000, 33000)),
        _running("web", (3100, 49153)),
        _running("database", (27017, 27018)),
        _running("worker"),
    ]
    got = [
        (u.url, u.service, u.via, u.running) for u in stack_urls(_dev(), "localhost", containers)
    ]
    unpublished = "traefik router gateway (websecure), entrypoint not published on the host"
    assert got == [
        ("https://traefik.meeshy.me:18080", "traefik", "traefik router dashboard (web)", True),
        ("https://gate.meeshy.me", "gateway", unpublished, True),
        ("https://api.meeshy.me", "gateway", unpublished, True),
        ("http://meeshy.local:18080", "web", "traefik router web (web)", True),
        ("http://localhost:18080", "traefik", "port 80", True),
        ("http://localhost:33000", "gateway", "port 3000", True),
        ("http://localhost:49153", "web", "port 3100", True),
        ("mongodb://localhost:27018", "database", "port 27017", True),
    ]


def test_what_does_not_run_is_said_so() -> None:
    """The dev stack without --profile full: stack.up lists no URL of a service it did not
    start, stack.urls the file's, marked; as stack.health says it."""
    containers = [_running("traefik", (80, 8080)), _running("database", (27017, 27017))]
    containers += [_running("worker", state="exited")]
    up = [
        (u.url, u.service, u.via)
        for u in stack_urls(_dev(), "localhost", containers, file_fallback=False)
    ]
    assert up == [
        ("https://traefik.meeshy.me:8080", "traefik", "traefik router dashboard (web)"),
        ("http://localhost:8080", "traefik", "port 80"),
        ("mongodb://localhost:27017", "database", "port 27017"),
        ("-", "gateway", "not started (profile full)"),
        ("-", "web", "not started (profile full)"),
    ]
    urls = {(u.url, u.via) for u in stack_urls(_dev(), "localhost", containers) if not u.running}
    unpublished = "traefik router gateway (websecure), entrypoint not published on the host"
    not_started = "; from the file: not started (profile full)"
    assert urls == {
        ("https://gate.meeshy.me", unpublished + not_started),
        ("https://api.meeshy.me", unpublished + not_started),
        ("http://meeshy.local:8080", "traefik router web (web)" + not_started),
        ("http://localhost:3000", "port 3000" + not_started),
    }
