"""The staging compose generator: every rewrite rule, on small prod configurations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.compose.generate import StagingOptions, generate
from tasks.lib.compose.mounts import SharedBind
from tasks.lib.compose.ports import PortMove
from tasks.lib.compose.yaml import load_compose
from tasks.lib.errors import ConfigError

EXAMPLE = (
    Path(__file__).resolve().parents[3]
    / "example/infrastructure/docker/compose/docker-compose.prod.yml"
)


def one(service: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A prod config with one service ``svc``."""
    return {"services": {"svc": service}, **top}


def staged(service: dict[str, Any], options: StagingOptions | None = None, **top: Any) -> Any:
    """The staging twin of ``svc``."""
    result = generate(one(service, **top), options or StagingOptions())
    return result.data["services"]["svc"]


# --- refusals ------------------------------------------------------------------------------------


def test_generate_refuses_a_non_mapping_service() -> None:
    with pytest.raises(ConfigError, match="service 'a' is not a mapping"):
        generate({"services": {"a": "nope"}})


def test_generate_refuses_without_services() -> None:
    with pytest.raises(ConfigError, match="no `services` mapping"):
        generate({"volumes": {}})


@pytest.mark.parametrize(
    "prod",
    [
        pytest.param({"include": ["other.yml"], "services": {}}, id="include"),
        pytest.param(
            {"services": {"a": {"extends": {"file": "base.yml", "service": "b"}}}},
            id="extends-file",
        ),
    ],
)
def test_generate_refuses_what_it_cannot_follow(prod: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="cannot") as info:
        generate(prod)
    assert info.value.hint == "flatten it first with `docker compose config`"


def test_generate_refuses_a_staging_file() -> None:
    with pytest.raises(ConfigError, match="already a staging name"):
        generate(one({"container_name": "meeshy-staging-gateway"}))


# --- immutability, project, containers ----------------------------------------------------------


def test_prod_is_never_mutated() -> None:
    prod = load_compose(EXAMPLE.read_text(), str(EXAMPLE))
    before = copy.deepcopy(prod)
    result = generate(prod)
    assert prod == before
    assert result.data["services"]["gateway"] is not prod["services"]["gateway"]


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param({}, "meeshy-staging", id="added"),
        pytest.param({"name": "meeshy"}, "meeshy-staging", id="renamed"),
        pytest.param({"name": "foo"}, "staging-foo", id="non-meeshy"),
    ],
)
def test_project_name_comes_first(top: dict[str, Any], expected: str) -> None:
    data = generate({"services": {"a": {}}, **top}).data
    assert next(iter(data)) == "name"
    assert data["name"] == expected
    assert list(data) == ["name", "services"]


def test_service_keys_and_key_order_are_kept() -> None:
    prod = {"services": {"b": {"image": "x", "container_name": "meeshy-b"}, "a": {}}}
    data = generate(prod).data
    assert list(data["services"]) == ["b", "a"]
    assert list(data["services"]["b"]) == ["image", "container_name"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("container_name", "meeshy-gateway", "meeshy-staging-gateway", id="container"),
        pytest.param(
            "network_mode", "container:meeshy-vpn", "container:meeshy-staging-vpn", id="nm"
        ),
        pytest.param("network_mode", "service:vpn", "service:vpn", id="network-mode-service"),
        pytest.param("network_mode", "host", "host", id="network-mode-host"),
        pytest.param("ipc", "container:meeshy-db", "container:meeshy-staging-db", id="ipc"),
        pytest.param("depends_on", ["database"], ["database"], id="depends-on-kept"),
        pytest.param("links", ["database:db"], ["database:db"], id="links-kept"),
        pytest.param("extends", {"service": "base"}, {"service": "base"}, id="extends-kept"),
        pytest.param(
            "volumes_from",
            ["database:ro", "container:meeshy-db"],
            ["database:ro", "container:meeshy-staging-db"],
            id="volumes-from",
        ),
    ],
)
def test_container_references(field: str, value: Any, expected: Any) -> None:
    assert staged({field: value})[field] == expected


# --- volumes ------------------------------------------------------------------------------------

PROD_VOLUMES = {
    "gateway_uploads": {"name": "meeshy-gateway-uploads"},
    "cache": None,
    "shared": {"external": True},
    "ext_named": {"external": True, "name": "meeshy-ext"},
}


def test_top_level_volumes_and_report() -> None:
    result = generate(one({}, name="meeshy", volumes=PROD_VOLUMES))
    assert result.data["volumes"] == {
        "gateway_staging_uploads": {"name": "meeshy-staging-gateway-uploads"},
        "cache_staging": None,
        "shared_staging": {"external": True, "name": "staging-shared"},
        "ext_staging_named": {"external": True, "name": "meeshy-staging-ext"},
    }
    assert result.renamed_volumes == (
        ("meeshy-gateway-uploads", "meeshy-staging-gateway-uploads"),
        ("meeshy_cache", "meeshy-staging_cache_staging"),
        ("shared", "staging-shared"),
        ("meeshy-ext", "meeshy-staging-ext"),
    )


def test_unnamed_volume_of_an_unnamed_prod_project() -> None:
    prod = one({}, volumes={"cache": None, "data": {"name": "meeshy-data"}})
    assert generate(prod).renamed_volumes == (("meeshy-data", "meeshy-staging-data"),)
    with_project = generate(prod, StagingOptions(prod_project="compose"))
    assert with_project.renamed_volumes[0] == ("compose_cache", "meeshy-staging_cache_staging")


@pytest.mark.parametrize(
    ("mount", "expected", "shared"),
    [
        pytest.param(
            "gateway_uploads:/app/uploads", "gateway_staging_uploads:/app/uploads", None, id="named"
        ),
        pytest.param("cache:/c:ro", "cache_staging:/c:ro", None, id="named-mode-kept"),
        pytest.param("/data", "/data", None, id="anonymous"),
        pytest.param(
            "./secrets/firebase-admin.json:/app/secrets/firebase-admin.json:ro",
            "./secrets/firebase-admin.json:/app/secrets/firebase-admin.json:ro",
            SharedBind(
                "svc", "./secrets/firebase-admin.json", "/app/secrets/firebase-admin.json", True
            ),
            id="secret-file",
        ),
        pytest.param(
            "/etc/meeshy/conf:/conf",
            "/etc/meeshy/conf:/conf",
            SharedBind("svc", "/etc/meeshy/conf", "/conf", False),
            id="host-dir-rw",
        ),
        pytest.param(
            "/var/run/docker.sock:/var/run/docker.sock",
            "/var/run/docker.sock:/var/run/docker.sock:ro",
            SharedBind("svc", "/var/run/docker.sock", "/var/run/docker.sock", True),
            id="socket-forced-ro",
        ),
        pytest.param(
            "/var/run/docker.sock:/var/run/docker.sock:rw,z",
            "/var/run/docker.sock:/var/run/docker.sock:z,ro",
            SharedBind("svc", "/var/run/docker.sock", "/var/run/docker.sock", True),
            id="socket-rw-replaced",
        ),
        pytest.param(
            "/var/run/docker.sock:/var/run/docker.sock:ro",
            "/var/run/docker.sock:/var/run/docker.sock:ro",
            SharedBind("svc", "/var/run/docker.sock", "/var/run/docker.sock", True),
            id="socket-already-ro",
        ),
        pytest.param(
            {"type": "volume", "source": "gateway_uploads", "target": "/u", "read_only": True},
            {
                "type": "volume",
                "source": "gateway_staging_uploads",
                "target": "/u",
                "read_only": True,
            },
            None,
            id="long-named",
        ),
        pytest.param(
            {"source": "cache", "target": "/c"},
            {"source": "cache_staging", "target": "/c"},
            None,
            id="long-default-type",
        ),
        pytest.param(
            {"type": "bind", "source": "/run/docker.sock", "target": "/var/run/docker.sock"},
            {
                "type": "bind",
                "source": "/run/docker.sock",
                "target": "/var/run/docker.sock",
                "read_only": True,
            },
            SharedBind("svc", "/run/docker.sock", "/var/run/docker.sock", True),
            id="long-socket-forced-ro",
        ),
        pytest.param(
            {"type": "bind", "source": "./conf", "target": "/conf"},
            {"type": "bind", "source": "./conf", "target": "/conf"},
            SharedBind("svc", "./conf", "/conf", False),
            id="long-bind",
        ),
        pytest.param(
            {"type": "tmpfs", "target": "/tmp"},
            {"type": "tmpfs", "target": "/tmp"},
            None,
            id="tmpfs",
        ),
    ],
)
def test_service_mounts(mount: Any, expected: Any, shared: SharedBind | None) -> None:
    result = generate(one({"volumes": [mount]}, volumes=PROD_VOLUMES))
    assert result.data["services"]["svc"]["volumes"] == [expected]
    assert result.shared_binds == ((shared,) if shared else ())


def test_file_secrets_and_configs_are_reported_as_shared() -> None:
    prod = one(
        {"secrets": ["firebase", {"source": "key", "target": "k.pem"}], "configs": ["nginx"]},
        secrets={"firebase": {"file": "./secrets/f.json"}, "key": {"file": "./k"}},
        configs={"nginx": {"file": "./nginx.conf"}},
    )
    assert generate(prod).shared_binds == (
        SharedBind("svc", "./secrets/f.json", "/run/secrets/firebase", True),
        SharedBind("svc", "./k", "/run/secrets/k.pem", True),
        SharedBind("svc", "./nginx.conf", "/nginx", True),
    )


# --- networks -----------------------------------------------------------------------------------


def test_networks_keys_names_and_references() -> None:
    prod = one(
        {
            "networks": {"meeshy-network": {"aliases": ["api"]}, "back": None},
            "labels": ["traefik.docker.network=meeshy-network"],
            "command": ["--providers.docker.network=meeshy-network", "--other=meeshy-network"],
        },
        networks={
            "meeshy-network": {"name": "meeshy-network", "driver": "bridge"},
            "back": None,
            "default": {"name": "meeshy-default"},
            "edge": {"external": True},
        },
    )
    data = generate(prod).data
    assert data["networks"] == {
        "meeshy-staging-network": {"name": "meeshy-staging-network", "driver": "bridge"},
        "back_staging": None,
        "default": {"name": "meeshy-staging-default"},
        "edge_staging": {"external": True, "name": "staging-edge"},
    }
    svc = data["services"]["svc"]
    assert svc["networks"] == {"meeshy-staging-network": {"aliases": ["api"]}, "back_staging": None}
    assert svc["labels"] == ["traefik.docker.network=meeshy-staging-network"]
    assert svc["command"][0] == "--providers.docker.network=meeshy-staging-network"
    assert svc["command"][1] == "--other=meeshy-network"


def test_service_network_list() -> None:
    prod = one({"networks": ["net", "other"]}, networks={"net": None})
    assert generate(prod).data["services"]["svc"]["networks"] == ["net_staging", "other"]


# --- ports --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param("80:80", "10080:80", id="short"),
        pytest.param("127.0.0.1:27017:27017", "127.0.0.1:37017:27017", id="host-ip"),
        pytest.param("8080:80/udp", "18080:80/udp", id="udp"),
        pytest.param("[::1]:8080:80", "[::1]:18080:80", id="ipv6"),
        pytest.param("9090-9091:8080-8081", "19090-19091:8080-8081", id="range"),
        pytest.param("${GATEWAY_PORT:-3000}:3000", "13000:3000", id="variable-default"),
        pytest.param("3000", "3000", id="container-only"),
        pytest.param(3000, 3000, id="container-only-int"),
        pytest.param("3000-3005", "3000-3005", id="container-range"),
        pytest.param("127.0.0.1::80", "127.0.0.1::80", id="random-host-port"),
        pytest.param(
            {"target": 8000, "published": 8000, "host_ip": "127.0.0.1"},
            {"target": 8000, "published": 18000, "host_ip": "127.0.0.1"},
            id="long-int",
        ),
        pytest.param(
            {"target": 3100, "published": "3100"},
            {"target": 3100, "published": "13100"},
            id="long-str",
        ),
        pytest.param({"target": 3100}, {"target": 3100}, id="long-unpublished"),
    ],
)
def test_port_rewrite(port: Any, expected: Any) -> None:
    assert staged({"ports": [port]})["ports"] == [expected]


def test_port_moves_are_reported_as_written() -> None:
    prod = one({"ports": ["80:80", "9229", {"target": 8000, "published": 8000, "protocol": "tcp"}]})
    assert generate(prod).port_moves == (
        PortMove("svc", "80:80", "10080:80"),
        PortMove("svc", "8000:8000/tcp", "18000:8000/tcp"),
    )


def test_one_prod_port_one_staging_port() -> None:
    ports = staged({"ports": ["443:443", "443:443/udp", "127.0.0.1:443:8443"]})["ports"]
    assert ports == ["10443:443", "10443:443/udp", "127.0.0.1:10443:8443"]


@pytest.mark.parametrize(
    ("options", "prod_ports", "expected"),
    [
        pytest.param(StagingOptions(), ["80:80"], ["10080:80"], id="offset"),
        pytest.param(StagingOptions(port_offset=1), ["80:80"], ["81:80"], id="small-offset"),
        pytest.param(
            StagingOptions(taken_ports=frozenset({10080, 10081})),
            ["80:80"],
            ["10082:80"],
            id="taken",
        ),
        pytest.param(
            StagingOptions(), ["80:80", "10080:1"], ["10081:80", "20080:1"], id="prod-collision"
        ),
        pytest.param(
            StagingOptions(port_offset=1),
            ["80:80", "81:81"],
            ["82:80", "83:81"],
            id="staging-chain",
        ),
        pytest.param(
            StagingOptions(port_map={80: 8080}),
            ["80:80", "443:443"],
            ["8080:80", "10443:443"],
            id="map",
        ),
        pytest.param(
            StagingOptions(taken_ports=frozenset({19091})),
            ["9090-9091:1-2"],
            ["19092-19093:1-2"],
            id="range-taken",
        ),
        pytest.param(StagingOptions(port_offset=0), ["80:80"], ["81:80"], id="zero-offset"),
    ],
)
def test_port_allocation(
    options: StagingOptions, prod_ports: list[str], expected: list[str]
) -> None:
    assert staged({"ports": prod_ports}, options)["ports"] == expected


@pytest.mark.parametrize(
    ("options", "ports", "match"),
    [
        pytest.param(
            StagingOptions(port_map={80: 443}), ["80:80", "443:443"], "used by prod", id="map-prod"
        ),
        pytest.param(
            StagingOptions(port_map={80: 9000}, taken_ports=frozenset({9000})),
            ["80:80"],
            "taken",
            id="map-taken",
        ),
        pytest.param(
            StagingOptions(port_map={80: 70000}), ["80:80"], "not a valid port", id="map-range"
        ),
        pytest.param(StagingOptions(), ["60000:1"], "no free staging host port", id="overflow"),
        pytest.param(StagingOptions(), ["${P}:1"], "has no default", id="variable-no-default"),
        pytest.param(StagingOptions(), ["http:1"], "not a port", id="garbage"),
    ],
)
def test_port_refusals(options: StagingOptions, ports: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        generate(one({"ports": ports}), options)


# --- hostnames ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "https://gate.${DOMAIN:-meeshy.me}",
            "https://gate.staging.${DOMAIN:-meeshy.me}",
            id="url",
        ),
        pytest.param(
            "https://${DOMAIN:-meeshy.me}", "https://staging.${DOMAIN:-meeshy.me}", id="bare-url"
        ),
        pytest.param("${DOMAIN:-meeshy.me}", "staging.${DOMAIN:-meeshy.me}", id="bare-domain"),
        pytest.param(
            "wss://gate.${DOMAIN:-meeshy.me}/ws",
            "wss://gate.staging.${DOMAIN:-meeshy.me}/ws",
            id="ws",
        ),
        pytest.param("https://${DOMAIN}", "https://staging.${DOMAIN}", id="no-default"),
        pytest.param("https://api.$DOMAIN/v1", "https://api.staging.$DOMAIN/v1", id="unbraced"),
        pytest.param("gate.meeshy.me", "gate.staging.meeshy.me", id="literal"),
        pytest.param("https://meeshy.me/path", "https://staging.meeshy.me/path", id="literal-bare"),
        pytest.param(".meeshy.me", ".staging.meeshy.me", id="cookie-domain"),
        pytest.param(
            "https://a.meeshy.me,https://b.meeshy.me:8443",
            "https://a.staging.meeshy.me,https://b.staging.meeshy.me:8443",
            id="list",
        ),
        pytest.param("gate.staging.meeshy.me", "gate.staging.meeshy.me", id="already-staging"),
        pytest.param("support@meeshy.me", "support@meeshy.me", id="email-literal"),
        pytest.param("admin@${DOMAIN:-meeshy.me}", "admin@${DOMAIN:-meeshy.me}", id="email-var"),
        pytest.param(
            "mongodb://database:27017/meeshy?replicaSet=rs0",
            "mongodb://database:27017/meeshy?replicaSet=rs0",
            id="internal-host",
        ),
        pytest.param("ws://gateway:3000", "ws://gateway:3000", id="internal-ws"),
        pytest.param("meeshy.medical", "meeshy.medical", id="longer-tld"),
        pytest.param("notmeeshy.me", "notmeeshy.me", id="other-domain"),
        pytest.param("meeshy.me.backup", "meeshy.me.backup", id="followed-by-label"),
        pytest.param(
            "${API:-https://api.meeshy.me}",
            "${API:-https://api.staging.meeshy.me}",
            id="other-default",
        ),
    ],
)
def test_hostname_rewrite_in_environment(value: str, expected: str) -> None:
    svc = staged({"environment": {"URL": value}})
    assert svc["environment"] == {"URL": expected}
    listed = staged({"environment": [f"URL={value}"]})
    assert listed["environment"] == [f"URL={expected}"]


def test_non_string_environment_values_pass() -> None:
    svc = staged({"environment": {"A": None, "B": 3, "C": True}})
    assert svc["environment"] == {"A": None, "B": 3, "C": True}
    assert staged({"environment": ["BARE"]})["environment"] == ["BARE"]


def test_literal_domain_learned_from_the_variable_default() -> None:
    options = StagingOptions(domains=())
    svc = staged(
        {"environment": {"A": "https://${DOMAIN:-example.org}", "B": "cdn.example.org"}}, options
    )
    assert svc["environment"] == {
        "A": "https://staging.${DOMAIN:-example.org}",
        "B": "cdn.staging.example.org",
    }


def test_dotless_default_is_not_learned() -> None:
    svc = staged({"environment": {"A": "${DOMAIN:-localhost}", "B": "http://localhost:3000"}})
    assert svc["environment"] == {"A": "staging.${DOMAIN:-localhost}", "B": "http://localhost:3000"}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            "Host(`gate.${DOMAIN:-meeshy.me}`) || Host(`api.${DOMAIN:-meeshy.me}`)",
            "Host(`gate.staging.${DOMAIN:-meeshy.me}`) || Host(`api.staging.${DOMAIN:-meeshy.me}`)",
            id="two-hosts",
        ),
        pytest.param(
            "Host(`${DOMAIN:-meeshy.me}`)", "Host(`staging.${DOMAIN:-meeshy.me}`)", id="bare-domain"
        ),
        pytest.param("Host(`meeshy.me`)", "Host(`staging.meeshy.me`)", id="literal"),
        pytest.param(
            "Host(`gate.meeshy.me`) && PathPrefix(`/api`)",
            "Host(`gate.staging.meeshy.me`) && PathPrefix(`/api`)",
            id="with-path",
        ),
    ],
)
def test_host_rules(rule: str, expected: str) -> None:
    listed = staged({"labels": [f"traefik.http.routers.web.rule={rule}"]})
    assert listed["labels"] == [f"traefik.http.routers.web_staging.rule={expected}"]
    mapped = staged({"labels": {"traefik.http.routers.web.rule": rule}})
    assert mapped["labels"] == {"traefik.http.routers.web_staging.rule": expected}


def test_traefik_names_and_references_are_renamed() -> None:
    prod = {
        "services": {
            "a": {
                "labels": [
                    "traefik.enable=true",
                    "traefik.http.routers.gateway.service=gateway",
                    "traefik.http.routers.gateway.middlewares=cors, auth@docker,headers@file",
                    "traefik.http.routers.dash.service=api@internal",
                    "traefik.http.middlewares.cors.headers.accesscontrolalloworiginlist=https://meeshy.me",
                    "traefik.http.middlewares.chain.chain.middlewares=cors,auth",
                    "traefik.tcp.routers.mongo.service=mongo",
                ]
            },
            "b": {
                "labels": {
                    "traefik.http.middlewares.auth.basicauth.users": "u:p",
                    "traefik.http.services.gateway.loadbalancer.server.port": "3000",
                }
            },
        }
    }
    data = generate(prod).data["services"]
    assert data["a"]["labels"] == [
        "traefik.enable=true",
        "traefik.http.routers.gateway_staging.service=gateway_staging",
        "traefik.http.routers.gateway_staging.middlewares=cors_staging,auth_staging@docker,headers@file",
        "traefik.http.routers.dash_staging.service=api@internal",
        "traefik.http.middlewares.cors_staging.headers.accesscontrolalloworiginlist="
        "https://staging.meeshy.me",
        "traefik.http.middlewares.chain_staging.chain.middlewares=cors_staging,auth_staging",
        "traefik.tcp.routers.mongo_staging.service=mongo",
    ]
    assert data["b"]["labels"] == {
        "traefik.http.middlewares.auth_staging.basicauth.users": "u:p",
        "traefik.http.services.gateway_staging.loadbalancer.server.port": "3000",
    }


@pytest.mark.parametrize(
    ("command", "expected_last"),
    [
        pytest.param(
            ["--providers.docker=true"],
            "--providers.docker.constraints=Label(`com.docker.compose.project`,`meeshy-staging`)",
            id="added",
        ),
        pytest.param(
            ["--providers.docker.constraints=Label(`tier`,`web`)"],
            "--providers.docker.constraints=(Label(`tier`,`web`)) && "
            "Label(`com.docker.compose.project`,`meeshy-staging`)",
            id="combined",
        ),
    ],
)
def test_traefik_constraint(command: list[str], expected_last: str) -> None:
    assert staged({"command": command})["command"][-1] == expected_last


def test_no_constraint_without_docker_provider() -> None:
    assert staged({"command": ["redis-server", "--appendonly", "yes"]})["command"] == [
        "redis-server",
        "--appendonly",
        "yes",
    ]
    assert staged({"command": "mongod --replSet rs0"})["command"] == "mongod --replSet rs0"


def test_acme_email_is_not_a_hostname() -> None:
    arg = "--certificatesresolvers.le.acme.email=admin@${DOMAIN:-meeshy.me}"
    assert staged({"command": [arg]})["command"] == [arg]


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(
            "${GATEWAY_IMAGE:-isopen/meeshy-gateway:latest}",
            "${GATEWAY_IMAGE:-isopen/meeshy-gateway:staging}",
            id="variable-default",
        ),
        pytest.param(
            "${FRONTEND_IMAGE-isopen/meeshy-web:latest}",
            "${FRONTEND_IMAGE-isopen/meeshy-web:staging}",
            id="variable-dash-only",
        ),
        pytest.param("isopen/meeshy-web:v1.2", "isopen/meeshy-web:staging", id="plain"),
        pytest.param("isopen/meeshy-translator", "isopen/meeshy-translator:staging", id="no-tag"),
        pytest.param(
            "registry.local:5000/isopen/meeshy-gateway:1.0@sha256:abc",
            "registry.local:5000/isopen/meeshy-gateway:staging",
            id="registry-port-digest",
        ),
        pytest.param("meeshy-gateway:latest", "meeshy-gateway:staging", id="no-namespace"),
        pytest.param("mongo:8.0", "mongo:8.0", id="not-an-app"),
        pytest.param("isopen/meeshy-gateway-tools:1", "isopen/meeshy-gateway-tools:1", id="prefix"),
        pytest.param("${GATEWAY_IMAGE}", "${GATEWAY_IMAGE}", id="variable-no-default"),
        pytest.param("registry:5000/redis", "registry:5000/redis", id="registry-port-no-tag"),
    ],
)
def test_image_rewrite(image: str, expected: str) -> None:
    assert staged({"image": image})["image"] == expected


def test_image_tag_option() -> None:
    options = StagingOptions(tag="rc", app_images=("meeshy-web",))
    assert staged({"image": "isopen/meeshy-web:latest"}, options)["image"] == "isopen/meeshy-web:rc"
    assert staged({"image": "isopen/meeshy-gateway:latest"}, options)["image"] == (
        "isopen/meeshy-gateway:latest"
    )


# --- rendering and the example ------------------------------------------------------------------


def test_render_header_and_round_trip() -> None:
    prod = load_compose(EXAMPLE.read_text(), str(EXAMPLE))
    result = generate(prod, source="docker-compose.prod.yml")
    text = result.render()
    lines = text.splitlines()
    assert lines[0] == "# GENERATED from docker-compose.prod.yml by `inv staging.compose`."
    assert lines[1] == "# Do not edit by hand: change the prod file and regenerate."
    assert lines[2] == "name: meeshy-staging"
    assert load_compose(text, "staging") == result.data
    assert list(load_compose(text, "staging")["services"]) == list(prod["services"])


def test_example_separation_summary() -> None:
    prod = load_compose(EXAMPLE.read_text(), str(EXAMPLE))
    result = generate(prod)
    data = result.data
    assert set(data["services"]) == set(prod["services"])
    for name, svc in data["services"].items():
        assert svc["container_name"] == f"meeshy-staging-{name}"
    assert dict(result.renamed_volumes) == {
        "meeshy-database-data": "meeshy-staging-database-data",
        "meeshy-database-config": "meeshy-staging-database-config",
        "meeshy-redis-data": "meeshy-staging-redis-data",
        "meeshy-redis-ui-data": "meeshy-staging-redis-ui-data",
        "meeshy-traefik-certs": "meeshy-staging-traefik-certs",
        "meeshy-models-data": "meeshy-staging-models-data",
        "meeshy-gateway-uploads": "meeshy-staging-gateway-uploads",
        "meeshy-web-uploads": "meeshy-staging-web-uploads",
    }
    assert list(data["volumes"]) == [
        "database_staging_data",
        "database_staging_config",
        "redis_staging_data",
        "redis-staging-ui-data",
        "traefik_staging_certs",
        "models_staging_data",
        "gateway_staging_uploads",
        "frontend_staging_uploads",
    ]
    gateway = data["services"]["gateway"]
    assert gateway["image"] == "${GATEWAY_IMAGE:-isopen/meeshy-gateway:staging}"
    assert gateway["environment"]["PUBLIC_URL"] == "https://gate.staging.${DOMAIN:-meeshy.me}"
    assert gateway["environment"]["FRONTEND_URL"] == "https://staging.${DOMAIN:-meeshy.me}"
    assert gateway["ports"] == ["13000:3000", "9229"]
    assert data["services"]["traefik"]["ports"] == ["10080:80", "10443:443", "10443:443/udp"]
    assert (
        SharedBind(
            "gateway", "./secrets/firebase-admin.json", "/app/secrets/firebase-admin.json", True
        )
        in result.shared_binds
    )


def test_external_objects_are_renamed_and_reported() -> None:
    """Compose never creates an external network or volume: the renamed ones must exist
    before `up`, so the result names them (and how to create them)."""
    prod = one(
        {"networks": ["edge"], "volumes": ["shared:/s"]},
        networks={"edge": {"external": True}, "own": None},
        volumes=PROD_VOLUMES,
    )
    result = generate(prod)
    assert [e.to_json() for e in result.external] == [
        {
            "kind": "network",
            "prod": "edge",
            "staging": "staging-edge",
            "create": ["docker", "network", "create", "staging-edge"],
        },
        {
            "kind": "volume",
            "prod": "shared",
            "staging": "staging-shared",
            "create": ["docker", "volume", "create", "staging-shared"],
        },
        {
            "kind": "volume",
            "prod": "meeshy-ext",
            "staging": "meeshy-staging-ext",
            "create": ["docker", "volume", "create", "meeshy-staging-ext"],
        },
    ]
    assert result.to_json()["must_exist"][0]["staging"] == "staging-edge"


def test_to_json() -> None:
    prod = load_compose(EXAMPLE.read_text(), str(EXAMPLE))
    data = generate(prod).to_json()
    assert data["project"] == "meeshy-staging"
    assert {"service": "gateway", "prod": "3000:3000", "staging": "13000:3000"} in data[
        "port_moves"
    ]
    assert data["must_exist"] == []
    assert {"prod": "meeshy-web-uploads", "staging": "meeshy-staging-web-uploads"} in data[
        "volumes"
    ]


def test_unquoted_port_in_prod_is_moved_not_misread() -> None:
    prod = load_compose("services:\n  ssh:\n    ports:\n      - 10022:22\n", "prod.yml")
    result = generate(prod)
    assert result.data["services"]["ssh"]["ports"] == ["20022:22"]
    assert "- '20022:22'" in result.render()
