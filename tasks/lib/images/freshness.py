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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from tasks.lib.config import SCHEMA_LABEL, Settings
from tasks.lib.images.store import LocalImage

if TYPE_CHECKING:
    import docker

    from tasks.lib.build.inputs import InputKey

# The build side's labels (tasks.lib.build.plan), repeated here so that listing images does not
# import the build pipeline and the schema gate; a unit test keeps the two equal.
INPUTS_LABEL = "me.meeshy.inputs.sha256"
INPUTS_PARTS_LABEL = "me.meeshy.inputs.parts"


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


@dataclass(frozen=True)
class InputKeyLabel:
    """The image's input key equals the key the checkout would build now: "this image is what
    ``inv build.*`` would make of the current files". A docs-only commit leaves it fresh; a
    changed source file, Dockerfile, build arg, base image or schema does not, and the
    verdict names which (the image records a digest per part of its key)."""

    expected: Mapping[str, InputKey]

    @property
    def problem(self) -> str | None:
        return None

    def __call__(self, service: str, image: LocalImage) -> Verdict:
        key = self.expected.get(service)
        label = image.label(INPUTS_LABEL)
        if key is None:
            return Verdict(True, INPUTS_LABEL, "-", label[:12] or "-", "", "")
        fresh = label == key.sha256
        if fresh:
            detail = ""
        elif not label:
            detail = "the label is missing (built before input keys, or by another tool)"
        else:
            from tasks.lib.build.inputs import changed_part

            detail = changed_part(key, image.label(INPUTS_PARTS_LABEL))
        return Verdict(
            fresh=fresh,
            check=INPUTS_LABEL,
            expected=key.sha256[:12],
            actual=label[:12] or "-",
            detail=detail,
            state="current inputs" if fresh else f"stale: {detail}",
        )


def default_rules(
    settings: Settings, client: docker.DockerClient | None = None, services: Sequence[str] = ()
) -> list[Freshness]:
    """The rules ``staging.tag`` and ``images.validate`` apply: the schema label, and (with
    an engine to resolve base images) the input key the checkout would build now."""
    rules: list[Freshness] = [SchemaLabel(settings.schema_sha256)]
    if client is not None and services:
        from tasks.lib.build.flow import expected_keys

        rules.append(InputKeyLabel(expected_keys(settings, services, client)))
    return rules


def judge(service: str, image: LocalImage, rules: Sequence[Freshness]) -> list[Verdict]:
    return [rule(service, image) for rule in rules]
