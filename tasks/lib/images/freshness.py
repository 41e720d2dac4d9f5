"""Is a local image built from the current inputs? The one rule ``staging.tag`` and
``stack.up --env staging`` refuse by and ``images.validate`` checks, pluggable: they take a
sequence of :class:`Freshness` rules and an image is fresh when every rule says so.

Today's rule is :class:`SchemaLabel`: the image's ``me.meeshy.schema.sha256`` label equals the
sha256 of the monorepo's shared schema; an image without the label counts as stale (it cannot
be proven to be built from the current schema). A rule on the build side's input-key label
(``me.meeshy.inputs.sha256``) is one more class with the same two members (it gets the
service name, so it can hold one expected key per service), added in :func:`default_rules`;
the labels come with the one list call, so such a rule needs no further engine call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from tasks.lib.config import SCHEMA_LABEL, Settings
from tasks.lib.images.store import LocalImage


class SchemaState(StrEnum):
    """What an image's schema label says against the current schema (listings show it)."""

    MATCH = "match"
    STALE = "stale"
    UNLABELLED = "unlabelled"
    UNKNOWN = "unknown"  # no current schema to compare with


@dataclass(frozen=True)
class Verdict:
    """One rule's answer about one image."""

    fresh: bool
    check: str  # the name images.validate shows for this check (a label name)
    expected: str
    actual: str
    detail: str = ""  # why not, for people ("" when fresh)
    state: str = ""  # a short word for listings and refusals


class Freshness(Protocol):
    """A freshness rule. ``problem`` is why it cannot decide here (e.g. the schema file is
    missing), or None; when set, ``staging.tag`` refuses unless ``--allow-stale``."""

    @property
    def problem(self) -> str | None: ...

    def __call__(self, service: str, image: LocalImage) -> Verdict:
        """The verdict on ``image``, the local image of ``service`` being checked."""
        ...


def schema_state(image: LocalImage, current: str | None) -> SchemaState:
    label = image.label(SCHEMA_LABEL)
    if not label:
        return SchemaState.UNLABELLED
    if current is None:
        return SchemaState.UNKNOWN
    return SchemaState.MATCH if label == current else SchemaState.STALE


@dataclass(frozen=True)
class SchemaLabel:
    """The schema label equals the current schema's sha256."""

    current: str | None

    @property
    def problem(self) -> str | None:
        if self.current is None:
            return "cannot compare the images' schema: the shared schema file is missing"
        return None

    def __call__(self, service: str, image: LocalImage) -> Verdict:
        label = image.label(SCHEMA_LABEL)
        state = schema_state(image, self.current)
        fresh = state is SchemaState.MATCH
        if fresh:
            detail = ""
        elif not label:
            detail = "carries no schema label"
        elif self.current is None:
            detail = "cannot be checked (no current schema to compare with)"
        else:
            detail = "built from another schema"
        return Verdict(
            fresh=fresh,
            check=SCHEMA_LABEL,
            expected=(self.current or "?")[:12],
            actual=label[:12] or "-",
            detail=detail,
            state=f"schema {label[:12]}" if label else "no schema label",
        )


def default_rules(settings: Settings) -> list[Freshness]:
    """The rules ``staging.tag`` and ``images.validate`` apply. The input-key rule of issue 8
    goes here once the build side writes ``me.meeshy.inputs.sha256``."""
    return [SchemaLabel(settings.schema_sha256)]


def judge(service: str, image: LocalImage, rules: Sequence[Freshness]) -> list[Verdict]:
    return [rule(service, image) for rule in rules]
