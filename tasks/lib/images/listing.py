"""The rows of an image listing (``images.list``, and the images ``staging.tag`` shows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.lib.config import SCHEMA_LABEL
from tasks.lib.images.freshness import schema_state
from tasks.lib.images.refs import Ref, matches
from tasks.lib.images.store import VERSION_LABEL, LocalImage


@dataclass(frozen=True)
class ImageRow:
    """One line of a listing: a repository and its tag(s) on one image."""

    repository: str
    tags: tuple[str, ...]
    id: str
    created: str  # ISO 8601, UTC
    size: int
    version: str
    schema: str
    schema_state: str

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tags": list(self.tags),
            "id": self.id,
            "created": self.created,
            "size": self.size,
            "version": self.version,
            "schema_sha256": self.schema,
            "schema": self.schema_state,
        }


def image_rows(
    images: Iterable[LocalImage],
    patterns: Sequence[str],
    current_schema: str | None,
    *,
    per_tag: bool = False,
) -> list[ImageRow]:
    """Rows for every tag matching ``patterns`` (the engine filtered already; an engine that
    returns an image's other tags too does not widen the listing), sorted by repository then
    tag. ``per_tag`` gives one row per ``repo:tag`` (as ``docker images``); otherwise one row
    per repository with its tags together."""
    rows: list[ImageRow] = []
    for img in images:
        by_repo: dict[str, list[str]] = {}
        for ref in img.tags:
            if matches(ref, patterns):
                parsed = Ref.parse(ref)
                by_repo.setdefault(parsed.repository, []).append(parsed.tag or "latest")
        for repo, tags in by_repo.items():
            groups = [[t] for t in sorted(tags)] if per_tag else [sorted(tags)]
            for group in groups:
                rows.append(
                    ImageRow(
                        repository=repo,
                        tags=tuple(group),
                        id=img.short_id,
                        created=img.created_iso,
                        size=img.size,
                        version=img.label(VERSION_LABEL),
                        schema=img.label(SCHEMA_LABEL),
                        schema_state=schema_state(img, current_schema).value,
                    )
                )
    rows.sort(key=lambda r: (r.repository, r.tags))
    return rows
