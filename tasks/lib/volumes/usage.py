"""``volumes.size``: every volume's size joined with the containers that mount it, from ONE
engine call (``docker system df -v``'s data: ``/system/df`` lists volumes with their usage and
containers with their mounts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker


@dataclass(frozen=True)
class VolumeUsage:
    name: str
    driver: str
    size: int | None  # None: the driver does not say (non-local drivers report -1)
    containers: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "driver": self.driver,
            "size": self.size,
            "containers": list(self.containers),
        }


def usage_report(
    df_volumes: Iterable[Mapping[str, Any]],
    containers: Iterable[Mapping[str, Any]],
    *,
    all_volumes: bool = False,
    word: str = "meeshy",
) -> list[VolumeUsage]:
    """Join ``/system/df`` volumes with the containers mounting them (list-API dicts with
    ``Names`` and ``Mounts``), by name; only names containing ``word`` unless ``all_volumes``."""
    users: dict[str, set[str]] = {}
    for c in containers:
        cname = ",".join(n.lstrip("/") for n in c.get("Names") or []) or str(c.get("Id", ""))[:12]
        for m in c.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                users.setdefault(str(m["Name"]), set()).add(cname)
    rows = []
    for v in df_volumes:
        name = str(v.get("Name", ""))
        if not all_volumes and word not in name:
            continue
        raw = (v.get("UsageData") or {}).get("Size")
        size = int(raw) if isinstance(raw, int) and raw >= 0 else None
        rows.append(
            VolumeUsage(name, str(v.get("Driver", "")), size, tuple(sorted(users.get(name, ()))))
        )
    return sorted(rows, key=lambda r: r.name)


def volume_usage(client: docker.DockerClient, *, all_volumes: bool = False) -> list[VolumeUsage]:
    """One ``/system/df`` call."""
    df = client.api.df()
    return usage_report(
        df.get("Volumes") or [], df.get("Containers") or [], all_volumes=all_volumes
    )
