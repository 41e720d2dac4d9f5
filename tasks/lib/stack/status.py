"""``stack.status``: per service, its containers' state, health, published ports, image, and
whether that image is still the build its reference names (and, for app images, the schema's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.lib.config import Settings
from tasks.lib.stack.containers import ContainerState, by_service
from tasks.lib.stack.images import Found, app_services, current_build, schema_word
from tasks.lib.stack.spec import ProjectSpec

if TYPE_CHECKING:
    from tasks.lib.engine import EngineTarget
    from tasks.lib.stack.plan import Stack


@dataclass(frozen=True)
class Observed:
    """A stack as the engine runs it now: what ``status`` and ``health`` read."""

    settings: Settings
    stack: Stack
    target: EngineTarget
    spec: ProjectSpec
    containers: list[ContainerState]
    found: Found  # the local images of the file's and the containers' references


def observe(
    settings: Settings, stack: Stack, target: EngineTarget, *, images: bool = False
) -> Observed:
    """The stack's file, its containers (one list call) and, with ``images``, the local
    images their references name (one list call)."""
    from tasks.lib.engine import connect
    from tasks.lib.images.store import find_images
    from tasks.lib.stack import compose
    from tasks.lib.stack.containers import project_containers

    spec = compose.spec(stack, target)
    with connect(target) as client:
        containers = project_containers(client, stack.project)
        refs = [sv.image for sv in spec.services] + [ct.image_ref for ct in containers]
        found = find_images(client, refs) if images else {}
    return Observed(settings, stack, target, spec, containers, found)


@dataclass(frozen=True)
class StatusRow:
    service: str
    container: str
    state: str
    health: str
    ports: tuple[str, ...]
    image: str
    current_build: bool | None
    schema: str  # app images: match/stale/unlabelled/unknown/missing; "" otherwise

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "container": self.container,
            "state": self.state,
            "health": self.health,
            "ports": list(self.ports),
            "image": self.image,
            "current_build": self.current_build,
            "schema": self.schema or None,
        }


def status_rows(
    spec: ProjectSpec,
    containers: Sequence[ContainerState],
    found: Found,
    settings: Settings,
) -> list[StatusRow]:
    """One row per container; a service without one gets a row in state ``not created``."""
    grouped = by_service(list(containers))
    apps = {svc: ref for svc, _app, ref in app_services(spec, settings)}
    current = settings.schema_sha256
    rows: list[StatusRow] = []
    for s in spec.services:
        schema = schema_word(found.get(s.image), current) if s.name in apps else ""
        cs = grouped.get(s.name, [])
        if not cs:
            rows.append(StatusRow(s.name, "", "not created", "", (), s.image, None, schema))
            continue
        for c in cs:
            rows.append(
                StatusRow(
                    service=s.name,
                    container=c.name,
                    state=c.state if c.state != "exited" else f"exited ({c.exit_code})",
                    health=c.health,
                    ports=tuple(p.show() for p in c.ports if ":" not in p.host_ip),
                    image=c.image_ref or s.image,
                    current_build=current_build(c.image_id, found, c.image_ref or s.image),
                    schema=schema,
                )
            )
    return rows
