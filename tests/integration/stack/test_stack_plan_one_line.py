"""The staging plan of 2026-01-25 as one line, on the example monorepo:

    inv build.all staging.tag staging.compose staging.volumes stack.up --env staging

It runs literally (no flag added), on a private second engine: the plan's default names
(``meeshy-gateway-uploads``, ``meeshy-staging-*``, ``meeshy-network``) are real prod names on
a developer's machine, so they are only ever used on an engine that this test starts and
deletes. The example's prod compose file is made runnable offline in the test's copy only:

* its third-party images (traefik, mongo, mongoclient, redis, p3x-redis-ui, nginx) become
  stand-ins built from busybox under a namespace unique to the run (never an upstream name),
  which understand what the file asks of them (Traefik's flags, ``mongod``, ``mongosh``,
  ``redis-server``) and listen on the same ports;
* the app services, which in the example only print a file, get a command that serves
  ``/health`` and ``/`` with busybox httpd on their port; their images are the ones
  ``build.all`` builds (schema label and all) under ``DOCKER_REGISTRY`` unique to the run;
* host ports move to ports free now, on 127.0.0.1; the secrets file it bind-mounts is made.

Everything else (services, container names, network, volumes, Traefik labels, depends_on,
healthchecks) is the example's file as it is.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import run_inv
from tests.conftest import EXAMPLE
from tests.integration.engine.second_engine import SecondEngine, require_second_engine
from tests.integration.stack.stack_world import PROD_FILE, free_ports

pytestmark = pytest.mark.engine

STANDIN = """\
#!/bin/sh
# Offline stand-in for a third-party image of the example's prod file (test only).
serve() {
  trap 'kill $pids 2>/dev/null; exit 0' TERM INT
  pids=""
  for p in "$@"; do httpd -f -p "$p" -h /srv & pids="$pids $!"; done
  wait
}
case "${1:-}" in
  --serve) shift; serve "$@" ;;
  --*) serve 80 443 ;;            # Traefik's flags
  "") serve "${STANDIN_PORT:-80}" ;;
  *) exec "$@" ;;
esac
"""
FAKES = {
    "mongod": "#!/bin/sh\nexec /usr/local/bin/standin --serve 27017\n",
    "mongosh": "#!/bin/sh\nexit 0\n",
    "redis-server": "#!/bin/sh\nexec /usr/local/bin/standin --serve 6379\n",
}
STANDIN_DOCKERFILE = """\
FROM busybox:latest
COPY standin mongod mongosh redis-server /usr/local/bin/
RUN mkdir -p /srv && echo ok > /srv/index.html && echo ok > /srv/health
ENTRYPOINT ["/usr/local/bin/standin"]
"""
# third-party image of the example -> port its stand-in listens on without a command
THIRD_PARTY = {
    "traefik:v3.3": 80,
    "mongo:8.0": 27017,
    "mongoclient/mongoclient:latest": 3000,
    "redis:8-alpine": 6379,
    "patrikx3/p3x-redis-ui:latest": 7843,
    "nginx:alpine": 80,
}
SERVE = (
    "W=/srv; mkdir -p $$W 2>/dev/null || W=$$PWD/dist; "
    "echo ok > $$W/health && echo meeshy > $$W/index.html && exec httpd -f -p {port} -h $$W"
)
APP_PORTS = {"gateway": 3000, "translator": 8000, "frontend": 3100}


def _tar(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build_standins(client: Any, ns: str) -> dict[str, str]:
    """Third-party image -> its stand-in, built on ``client``'s engine."""
    base = f"{ns}/standin:base"
    client.images.build(
        fileobj=_tar({"Dockerfile": STANDIN_DOCKERFILE, "standin": STANDIN, **FAKES}),
        custom_context=True,
        tag=base,
        rm=True,
    )
    out: dict[str, str] = {}
    for image, port in THIRD_PARTY.items():
        name = image.split("/")[-1].split(":")[0]
        ref = f"{ns}/standin-{name}:1"
        dockerfile = f"FROM {base}\nENV STANDIN_PORT={port}\n"
        client.images.build(fileobj=_tar({"Dockerfile": dockerfile}), custom_context=True, tag=ref)
        out[image] = ref
    return out


def offline_prod(text: str, standins: dict[str, str], ns: str) -> tuple[str, dict[int, int]]:
    """The example's prod file made runnable offline (see the module docstring); returns it
    and the host port moves (prod port -> port used here)."""
    data = yaml.safe_load(text)
    wanted = sorted(
        {
            int(str(p.get("published") if isinstance(p, dict) else p.split(":")[-2]))
            for s in data["services"].values()
            for p in s.get("ports", [])
            if (isinstance(p, dict) and p.get("published")) or (isinstance(p, str) and ":" in p)
        }
    )
    moved = dict(zip(wanted, free_ports(len(wanted)), strict=True))
    for name, svc in data["services"].items():
        image = str(svc["image"])
        if image in standins:
            svc["image"] = standins[image]
        else:
            svc["image"] = image.replace("isopen/", f"{ns}/")
            svc["command"] = ["sh", "-c", SERVE.format(port=APP_PORTS[name])]
            svc["init"] = True
        ports: list[Any] = []
        for p in svc.get("ports", []):
            if isinstance(p, dict):
                if p.get("published"):
                    p["published"] = moved[int(p["published"])]
                p["host_ip"] = "127.0.0.1"
                ports.append(p)
            elif ":" in p:
                spec, _, proto = p.partition("/")
                host, container = spec.split(":")[-2:]
                ports.append(
                    f"127.0.0.1:{moved[int(host)]}:{container}" + (f"/{proto}" if proto else "")
                )
            else:
                ports.append(f"127.0.0.1::{p}")
        if ports:
            svc["ports"] = ports
    header = "# the example's prod file, made runnable offline by a test (see its docstring)\n"
    return header + yaml.safe_dump(data, sort_keys=False), moved


@pytest.fixture(scope="module")
def engine() -> Iterator[SecondEngine]:
    require_second_engine()
    with SecondEngine(seed=("busybox:latest", "alpine:latest")) as e:
        yield e


def test_the_staging_plan_in_one_line(engine: SecondEngine, tmp_path: Path) -> None:
    ns = f"stackplan{uuid.uuid4().hex[:8]}"
    root = tmp_path / "meeshy"
    shutil.copytree(EXAMPLE, root, symlinks=True)
    (root / "infrastructure/docker/compose/secrets").mkdir()
    (root / "infrastructure/docker/compose/secrets/firebase-admin.json").write_text("{}\n")
    client = engine.client()
    try:
        standins = build_standins(client, ns)
        prod_file = root / PROD_FILE
        text, moved = offline_prod(prod_file.read_text(encoding="utf-8"), standins, ns)
        prod_file.write_text(text, encoding="utf-8")
        env = {
            "MEESHY_ROOT": str(root),
            "DOCKER_REGISTRY": ns,
            "DOCKER_HOST": engine.host,
            "DOCKER_CONTEXT": "",
        }

        # prod runs first (its images built once), with data in the volumes the plan copies
        r = run_inv("build.all", "--progress", "plain", env=env)
        assert r.code == 0, r
        r = run_inv("stack.up", "--env", "prod", env=env)
        assert r.code == 0, r
        assert "[mongo-init] up in" in r.out and "completed (exit 0)" in r.out
        for volume in ("meeshy-gateway-uploads", "meeshy-web-uploads"):
            client.containers.run(
                "busybox:latest",
                ["sh", "-c", f"mkdir -p /v/a && echo {volume} > /v/a/file && chmod 640 /v/a/file"],
                volumes={volume: {"bind": "/v", "mode": "rw"}},
                remove=True,
            )

        # THE line
        r = run_inv(
            "build.all", "staging.tag", "staging.compose", "staging.volumes",
            "stack.up", "--env", "staging",
            env=env,
        )  # fmt: skip
        assert r.code == 0, r
        assert "meeshy-staging is up (docker-compose.staging.yml)" in r.out
        https = moved[443] + 10000
        assert f"https://gate.staging.meeshy.me:{https}" in r.out  # env file's DOMAIN
        assert "meeshy-staging-gateway-uploads" in r.out  # staging.volumes' report

        for env_name, project in (("prod", "meeshy-prod"), ("staging", "meeshy-staging")):
            h = run_inv("stack.health", "--env", env_name, "--json", env=env)
            report = json.loads(h.out)
            assert h.code == 0 and report["ok"], h
            assert report["project"] == project
        states = {
            c.name: c.status
            for c in client.containers.list(all=True)
            if c.name.startswith("meeshy-")
        }
        assert states["meeshy-gateway"] == "running"
        assert states["meeshy-staging-gateway"] == "running"
        assert states["meeshy-staging-mongo-init"] == "exited"
        copied = client.containers.run(
            "busybox:latest",
            ["cat", "/v/a/file"],
            volumes={"meeshy-staging-gateway-uploads": {"bind": "/v", "mode": "ro"}},
            remove=True,
        )
        assert copied.decode().strip() == "meeshy-gateway-uploads"

        # --context reaches the same engine (compose through python-on-whales, the SDK)
        by_context = {k: v for k, v in env.items() if k != "DOCKER_HOST"}
        r = run_inv("stack.status", "--env", "prod", "--context", engine.context, "--json",
                    env={**by_context, "DOCKER_HOST": ""})  # fmt: skip
        assert r.code == 0, r
        assert {row["state"] for row in json.loads(r.out)["services"]} == {
            "running",
            "exited (0)",  # mongo-init, the one-shot
        }

        r = run_inv("stack.down", "--env", "staging", "--volumes", env=env)
        assert r.code == 0, r
        left = {c.name for c in client.containers.list(all=True)}
        assert not {n for n in left if n.startswith("meeshy-staging")}
        assert "meeshy-gateway" in {c.name for c in client.containers.list()}
        assert "meeshy-gateway-uploads" in {v.name for v in client.volumes.list()}
    finally:
        client.close()
