"""A prod-like world for stack tests on the real engine, built from the local busybox only:

* one small "app" image (busybox httpd serving ``/health`` and ``/`` on ``$PORT``, labelled
  with the current schema's sha256), tagged ``<ns>/meeshy-{gateway,web,translator}:latest``
  under a namespace unique to the run (never an upstream name);
* a prod-like compose file written into a copy of the example monorepo (where
  ``staging.compose`` reads it): a Traefik-style proxy stand-in (entrypoint flags, router
  labels), a database that turns healthy after a few seconds, the three app services with
  healthchecks, named volumes and a named network (all named ``meeshy-st<uid>-...``), host
  ports chosen free now, on 127.0.0.1 only;
* config overrides giving the prod and staging stacks project names unique to the run.

:meth:`StackWorld.cleanup` removes every container, network, volume and image carrying the
run's uid or namespace, whatever state the tests left.
"""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import tarfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.lib.config import SCHEMA_LABEL, deep_merge, defaults

PROD_FILE = "infrastructure/docker/compose/docker-compose.prod.yml"
STAGING_FILE = "infrastructure/docker/compose/docker-compose.staging.yml"

APP_DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www && echo ok > /www/health && echo meeshy > /www/index.html
ENV PORT=8080
LABEL {label}="{sha}" me.meeshy.stacktest="{uid}"
CMD ["sh", "-c", "echo serving on $PORT; exec httpd -f -v -p $PORT -h /www"]
"""


def _port_free(port: int) -> bool:
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_ports(count: int, *, offset: int = 10000) -> list[int]:
    """Ports free now whose +offset twin is free too (staging's default move)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + offset > 65000 or port in found:
            port = port % 20000 + 20000
        if port not in found and _port_free(port) and _port_free(port + offset):
            found.append(port)
    return found


def prod_compose(uid: str, ns: str, ports: Mapping[str, int]) -> str:
    n = f"meeshy-st{uid}"
    health = (
        '    healthcheck:\n      test: ["CMD-SHELL", "wget -q -O /dev/null '
        'http://127.0.0.1:$$PORT/health"]\n      interval: 1s\n      timeout: 2s\n'
        "      retries: 30\n"
    )
    return f"""\
# prod-like stack of a test run (uid {uid})
services:
  proxy:
    image: busybox:latest
    container_name: {n}-proxy
    init: true
    entrypoint:
      - sh
      - -c
      - mkdir -p /srv && echo ok > /srv/index.html && exec httpd -f -p 80 -h /srv
      - traefik
    command: ["--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443"]
    ports:
      - "127.0.0.1:{ports["proxy"]}:80"
    networks: [meeshy-network]
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.dashboard.rule=Host(`traefik.${{DOMAIN:-meeshy.test}}`)"
      - "traefik.http.routers.dashboard.entrypoints=web"

  database:
    image: busybox:latest
    container_name: {n}-database
    init: true
    command:
      - sh
      - -c
      - echo starting {uid}; sleep 3; touch /ready; echo database ready {uid}; exec sleep 86400
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
      timeout: 2s
      retries: 60
    volumes:
      - database_data:/data/db
    networks: [meeshy-network]

  gateway:
    image: {ns}/meeshy-gateway:latest
    container_name: {n}-gateway
    init: true
    restart: unless-stopped
    depends_on:
      database:
        condition: service_healthy
    environment:
      PORT: "3000"
      PUBLIC_URL: "https://gate.${{DOMAIN:-meeshy.test}}"
    ports:
      - "127.0.0.1:{ports["gateway"]}:3000"
{health}    volumes:
      - gateway_uploads:/app/uploads
    networks: [meeshy-network]
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.gateway.rule=Host(`gate.${{DOMAIN:-meeshy.test}}`)"
      - "traefik.http.routers.gateway.entrypoints=web"

  translator:
    image: {ns}/meeshy-translator:latest
    container_name: {n}-translator
    init: true
    restart: unless-stopped
    environment:
      PORT: "8000"
    ports:
      - "127.0.0.1:{ports["translator"]}:8000"
{health}    networks: [meeshy-network]

  frontend:
    image: {ns}/meeshy-web:latest
    container_name: {n}-frontend
    init: true
    restart: unless-stopped
    depends_on: [gateway]
    environment:
      PORT: "3100"
    ports:
      - target: 3100
        published: {ports["web"]}
        host_ip: 127.0.0.1
{health}    volumes:
      - frontend_uploads:/app/public/uploads
    networks: [meeshy-network]
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.frontend.rule=Host(`${{DOMAIN:-meeshy.test}}`)"
      - "traefik.http.routers.frontend.entrypoints=web"

networks:
  meeshy-network:
    name: {n}-network

volumes:
  database_data:
    name: {n}-database-data
  gateway_uploads:
    name: {n}-gateway-uploads
  frontend_uploads:
    name: {n}-web-uploads
"""


@dataclass
class StackWorld:
    root: Path
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    ports: dict[str, int] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    extra_stacks: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return f"stacktest{self.uid}"

    @property
    def prefix(self) -> str:
        """What every Docker object of the prod-like stack is named after."""
        return f"meeshy-st{self.uid}"

    def project(self, env: str) -> str:
        return f"stacktest-{self.uid}-{env}"

    def config(self) -> dict[str, Any]:
        """The ``meeshy`` config a task of this world runs with."""
        stacks = {
            env: {"project": self.project(env)} for env in ("dev", "local", "prod", "staging")
        }
        return deep_merge(
            defaults(),
            {
                "root": str(self.root),
                "registry": self.ns,
                "stacks": deep_merge(stacks, self.extra_stacks),
            },
        )

    def env(self) -> dict[str, str]:
        """The same for the real CLI (``inv``), through env vars."""
        out = {"MEESHY_ROOT": str(self.root), "DOCKER_REGISTRY": self.ns}
        for env in ("dev", "local", "prod", "staging"):
            out[f"INVOKE_MEESHY_STACKS_{env.upper()}_PROJECT"] = self.project(env)
        return out

    # -- setup ----------------------------------------------------------------------------

    def build(self, client: Any, sha: str) -> None:
        """The app image, tagged for the three app services."""
        dockerfile = APP_DOCKERFILE.format(label=SCHEMA_LABEL, sha=sha, uid=self.uid)
        ref = f"{self.ns}/meeshy-app:build"
        self.images.append(ref)
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
        for app in ("gateway", "web", "translator"):
            self.tag(client, ref, f"{self.ns}/meeshy-{app}:latest")

    def build_variant(self, client: Any, ref: str, sha: str) -> None:
        """Another build of the app image (a different image id), e.g. with another schema."""
        dockerfile = APP_DOCKERFILE.format(label=SCHEMA_LABEL, sha=sha, uid=self.uid) + (
            f'LABEL me.meeshy.variant="{uuid.uuid4().hex}"\n'
        )
        self.images.append(ref)
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)

    def tag(self, client: Any, source: str, ref: str) -> None:
        repo, _, tag = ref.rpartition(":")
        client.images.get(source).tag(repo, tag)
        self.images.append(ref)

    def write_prod(self) -> Path:
        self.ports = dict(
            zip(("proxy", "gateway", "translator", "web"), free_ports(4), strict=True)
        )
        path = self.root / PROD_FILE
        path.write_text(prod_compose(self.uid, self.ns, self.ports), encoding="utf-8")
        return path

    # -- volumes --------------------------------------------------------------------------

    def fill_volume(self, client: Any, volume: str, files: Mapping[str, bytes]) -> None:
        """Write files into a volume through a throwaway busybox container."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o640
                tar.addfile(info, io.BytesIO(data))
        c = client.containers.create(
            "busybox:latest",
            ["true"],
            volumes={volume: {"bind": "/v", "mode": "rw"}},
            name=f"{self.prefix}-fill-{uuid.uuid4().hex[:6]}",
        )
        try:
            c.put_archive("/v", buf.getvalue())
        finally:
            c.remove(force=True)

    def volume_digest(self, client: Any, volume: str) -> str:
        """sha256 of a tar of the volume's whole content (names, modes, owners, mtimes and
        bytes), read through a read-only busybox container."""
        out = client.containers.run(
            "busybox:latest",
            ["sh", "-c", "cd /v && tar -cf - $(ls -A | sort) | sha256sum"],
            volumes={volume: {"bind": "/v", "mode": "ro"}},
            name=f"{self.prefix}-digest-{uuid.uuid4().hex[:6]}",
            remove=True,
        )
        return str(out.decode().split()[0])

    # -- cleanup --------------------------------------------------------------------------

    def cleanup(self, client: Any) -> list[str]:
        """Remove everything of this run; returns what was removed (for the record)."""
        removed: list[str] = []
        containers = client.containers.list(all=True, filters={"name": self.uid})
        containers += client.containers.list(
            all=True, filters={"label": "com.docker.compose.project"}
        )
        seen: set[str] = set()
        for c in containers:
            project = c.labels.get("com.docker.compose.project", "")
            if c.id in seen or (self.uid not in c.name and self.uid not in project):
                continue
            seen.add(c.id)
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)
                removed.append(f"container {c.name}")
        for net in client.networks.list(filters={"name": self.uid}):
            with contextlib.suppress(Exception):
                net.remove()
                removed.append(f"network {net.name}")
        for vol in client.volumes.list(filters={"name": self.uid}):
            with contextlib.suppress(Exception):
                vol.remove(force=True)
                removed.append(f"volume {vol.name}")
        for img in client.images.list():
            if any(t.startswith(f"{self.ns}/") for t in img.tags):
                for t in img.tags:
                    if t.startswith(f"{self.ns}/"):
                        with contextlib.suppress(Exception):
                            client.images.remove(t, force=True)
                            removed.append(f"image {t}")
        for img in client.images.list(filters={"label": f"me.meeshy.stacktest={self.uid}"}):
            with contextlib.suppress(Exception):
                client.images.remove(img.id, force=True)
                removed.append(f"image {img.id[:19]}")
        return removed

    def leftovers(self, client: Any) -> list[str]:
        names = [c.name for c in client.containers.list(all=True, filters={"name": self.uid})]
        names += [n.name for n in client.networks.list(filters={"name": self.uid})]
        names += [v.name for v in client.volumes.list(filters={"name": self.uid})]
        names += [t for i in client.images.list() for t in i.tags if t.startswith(self.ns)]
        return names


@contextlib.contextmanager
def docker_sdk() -> Iterator[Any]:
    import docker

    client = docker.from_env(timeout=120)
    try:
        yield client
    finally:
        client.close()


def remove_project(client: Any, project: str, uid: str) -> None:
    """Remove a test stack: its containers (by compose's project label, with their anonymous
    volumes), then the networks and volumes whose names carry the test's ``uid``."""
    for c in client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    ):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters={"name": uid}):
        n.remove()
    for v in client.volumes.list(filters={"name": uid}):
        v.remove(force=True)


def compose_ps(project: str) -> list[dict[str, Any]]:
    """``docker compose -p PROJECT ps --all --format json`` (a second opinion, from compose)."""
    import json

    r = subprocess.run(
        ["docker", "compose", "-p", project, "ps", "--all", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text = r.stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class FixtureStack:
    """One small stack of one test: its own compose file (``fx.yml`` in ``root``), project
    and stack name ``fx``, no env file; the staging stack renamed into the test's own."""

    root: Path
    uid: str

    @property
    def project(self) -> str:
        return f"stacktest-{self.uid}-fx"

    @property
    def file(self) -> Path:
        return self.root / "fx.yml"

    def write(self, services: str) -> None:
        self.file.write_text(f"services:\n{services}", encoding="utf-8")

    def config(self) -> dict[str, Any]:
        return deep_merge(
            defaults(),
            {
                "root": str(self.root),
                "stacks": {
                    "fx": {"file": str(self.file), "project": self.project, "env_file": ""},
                    "staging": {"project": f"stacktest-{self.uid}-staging"},
                },
            },
        )

    def run(self, task: Any, **flags: Any) -> tuple[int, str, str]:
        from tests.integration.stack.stack_run import run_task

        return run_task(self.config(), task, **flags)

    def states(self) -> dict[str, str]:
        return {r["Service"]: r["State"] for r in compose_ps(self.project)}
