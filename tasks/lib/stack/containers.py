"""What the engine says about a stack's containers, through the docker SDK: one list call
filtered by the compose project label (what ``docker compose ps --all`` does), each container's
state, health (``State.Health.Status``), exit code, restarts and published ports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.lib.compose.ports import Port

if TYPE_CHECKING:
    import docker

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    service: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    health: str = ""  # starting, healthy, unhealthy; "" without a healthcheck
    exit_code: int = 0
    restarts: int = 0
    restart_policy: str = ""
    image_id: str = ""
    image_ref: str = ""
    ports: tuple[Port, ...] = ()
    mounts: tuple[str, ...] = ()  # names of the volumes it mounts

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> ContainerState:
        state = attrs.get("State") or {}
        config = attrs.get("Config") or {}
        labels = config.get("Labels") or {}
        host = attrs.get("HostConfig") or {}
        health = state.get("Health") or {}
        ports: list[Port] = []
        for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
            number, _, proto = str(key).partition("/")
            for b in bindings or ():
                try:
                    ports.append(
                        Port(int(number), int(b["HostPort"]), proto or "tcp", b.get("HostIp", ""))
                    )
                except (KeyError, TypeError, ValueError):
                    continue
        return cls(
            id=str(attrs.get("Id", "")),
            name=str(attrs.get("Name", "")).lstrip("/"),
            service=str(labels.get(SERVICE_LABEL, "")),
            state=str(state.get("Status", "")),
            health=str(health.get("Status", "")),
            exit_code=int(state.get("ExitCode") or 0),
            restarts=int(attrs.get("RestartCount") or 0),
            restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or ""),
            image_id=str(attrs.get("Image", "")),
            image_ref=str(config.get("Image", "")),
            ports=tuple(ports),
            mounts=tuple(
                str(m.get("Name"))
                for m in attrs.get("Mounts") or ()
                if m.get("Type") == "volume" and m.get("Name")
            ),
        )

    def host_port(self, target: int, protocol: str = "tcp") -> Port | None:
        """The binding of container port ``target`` (IPv4 first), or None if unpublished."""
        found = [p for p in self.ports if p.target == target and p.protocol == protocol]
        found.sort(key=lambda p: ":" in p.host_ip)
        return found[0] if found else None


def project_containers(client: docker.DockerClient, project: str) -> list[ContainerState]:
    """Every container of compose project ``project`` (any state; ``compose run`` one-offs
    left out), sorted by service then name."""
    found = client.containers.list(
        all=True, filters={"label": f"{PROJECT_LABEL}={project}"}, ignore_removed=True
    )
    states = [
        ContainerState.from_attrs(c.attrs)
        for c in found
        if (c.attrs.get("Config") or {}).get("Labels", {}).get(ONEOFF_LABEL) != "True"
    ]
    return sorted(states, key=lambda s: (s.service, s.name))


def by_service(states: list[ContainerState]) -> dict[str, list[ContainerState]]:
    out: dict[str, list[ContainerState]] = {}
    for s in states:
        out.setdefault(s.service, []).append(s)
    return out
