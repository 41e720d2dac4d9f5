"""Reading ``docker compose config --format json`` into a ProjectSpec."""

from __future__ import annotations

from tasks.lib.compose.ports import Port
from tasks.lib.images.refs import Ref
from tasks.lib.stack.spec import parse_config

CONFIG = {
    "name": "meeshy-prod",
    "services": {
        "gateway": {
            "image": "isopen/meeshy-gateway:latest",
            "container_name": "meeshy-gateway",
            "depends_on": {"database": {"condition": "service_healthy", "required": True}},
            "ports": [
                {"mode": "ingress", "target": 3000, "published": "3000", "protocol": "tcp"},
                {"mode": "ingress", "target": 9229, "protocol": "tcp"},
                {"target": 8000, "published": "8000-8001", "host_ip": "127.0.0.1"},
            ],
            "labels": {"traefik.enable": "true"},
            "restart": "unless-stopped",
            "command": ["a", "b"],
        },
        "database": {
            "image": "mongo:8.0",
            "labels": ["a=b", "c"],
            "profiles": ["full"],
            "command": "mongod --replSet rs0",
            "build": {"context": "."},
        },
    },
    "networks": {"meeshy-network": {"name": "meeshy-network"}, "default": {}},
    "volumes": {
        "data": {"name": "meeshy-data"},
        "ext": {"external": True},
        "anon": None,
    },
}


def test_parse_config() -> None:
    spec = parse_config(CONFIG)
    gw = spec.service("gateway")
    assert gw is not None
    assert gw.container_name == "meeshy-gateway"
    assert gw.depends_on == ("database",)
    # compose splits "8000-8001:8000-8001" into one entry per port; a range it leaves in
    # ``published`` is the host ports the engine picks ONE container port's binding from
    assert gw.ports == (
        Port(3000, 3000),
        Port(9229, None),
        Port(8000, 8000, "tcp", "127.0.0.1"),
        Port(8000, 8001, "tcp", "127.0.0.1"),
    )
    assert gw.restart == "unless-stopped"
    db = spec.service("database")
    assert db is not None
    assert db.labels == {"a": "b", "c": ""}
    assert db.profiles == ("full",)
    assert db.command == ("mongod", "--replSet", "rs0")
    assert db.has_build
    assert spec.networks == {
        "meeshy-network": ("meeshy-network", False),
        "default": ("meeshy-prod_default", False),
    }
    assert spec.volumes == {
        "data": ("meeshy-data", False),
        "ext": ("ext", True),
        "anon": ("meeshy-prod_anon", False),
    }


def test_dependencies_are_transitive_and_ordered() -> None:
    spec = parse_config(
        {
            "services": {
                "a": {"depends_on": {"b": {}}},
                "b": {"depends_on": {"c": {}}},
                "c": {},
                "d": {},
            }
        },
        "p",
    )
    assert spec.name == "p"
    assert spec.with_dependencies(["a"]) == ("a", "b", "c")
    assert spec.with_dependencies(["d", "c"]) == ("c", "d")


def test_port_show() -> None:
    assert Port(80, 10080).show() == "10080->80"
    assert Port(80, 10080, "udp", "127.0.0.1").show() == "127.0.0.1:10080->80/udp"
    assert Port(9229, None).show() == "?->9229"


def test_image_names() -> None:
    """App images are recognised by the repository's last component (the docker SDK's
    parsing, through the images package's Ref)."""
    assert Ref.parse("127.0.0.1:5000/ns/meeshy-web:staging") == Ref(
        "127.0.0.1:5000/ns/meeshy-web", "staging"
    )
    assert Ref.parse("127.0.0.1:5000/meeshy-web") == Ref("127.0.0.1:5000/meeshy-web")
    assert Ref.parse("127.0.0.1:5000/meeshy-web").basename == "meeshy-web"
    assert Ref.parse("isopen/meeshy-gateway:v1.0.40").basename == "meeshy-gateway"
    assert Ref.parse("busybox").basename == "busybox"
    assert Ref.parse("x/meeshy-web@sha256:abc").basename == "meeshy-web"
