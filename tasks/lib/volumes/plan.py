"""What ``staging.volumes`` will do, as pure data: the (source, target) pairs and their
refusals, the names of everything a run creates on the engine, and the exact ``docker``
commands a dry run prints. Nothing here talks to an engine.

One run, per pair (:mod:`tasks.lib.volumes.copy` carries it out):

1. the target volume is created when absent (label :data:`COPY_OF_LABEL`);
2. ONE helper container, named :func:`lock_name` (a container name is unique on an engine,
   so creating it is the lock: a second run into the same target fails to create it), with
   the source mounted read-only, scans both sides and reports what it found;
3. the marker volume :func:`marker_name` is created: while it exists the target is
   *incomplete* (it lives outside the copied tree, so no file of the source can be it);
4. the helper copies, verifies with the task (manifests, optionally checksums), exits;
5. only then the marker volume is removed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.lib.compose.names import is_staging_name, staging_volume_name
from tasks.lib.errors import ConfigError
from tasks.lib.volumes import script

DEFAULT_VOLUMES: tuple[str, ...] = ("meeshy-gateway-uploads", "meeshy-web-uploads")
MODELS_VOLUME = "meeshy-models-data"
DEFAULT_HELPER_IMAGE = "alpine"

HELPER_LABEL = "me.meeshy.helper"  # every helper container of these tasks: its kind
HELPER_KIND = "volume-copy"
# a helper still "created" this long after its creation was abandoned (a killed run's)
STALE_CREATED = 60.0
TARGET_LABEL = "me.meeshy.volume-copy.target"
SOURCE_LABEL = "me.meeshy.volume-copy.source"
COPY_OF_LABEL = "me.meeshy.staging-copy-of"
MARKER_LABEL = "me.meeshy.copy-incomplete-of"
LOCK_PREFIX = "meeshy-volume-copy-"
MARKER_SUFFIX = ".copy-incomplete"

# Docker's rule for local volume names (daemon/names: RestrictedNamePattern).
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_MAX_NAME = 200  # leaves room for the lock and marker names built from it


def lock_name(target: str) -> str:
    """The helper container of a copy into ``target``: its name is the lock."""
    return f"{LOCK_PREFIX}{target}"


def marker_name(target: str) -> str:
    """The volume whose existence marks ``target`` incomplete."""
    return f"{target}{MARKER_SUFFIX}"


def check_volume_name(name: str, what: str) -> None:
    """ConfigError naming the value when Docker would refuse it as a volume name."""
    if not _VOLUME_NAME.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} is not a valid volume name",
            hint="volume names are letters, digits and _ . - (not first), e.g. meeshy-web-uploads",
        )
    if len(name) > _MAX_NAME:
        raise ConfigError(f"{what} {name[:40]!r}... is longer than {_MAX_NAME} characters")


@dataclass(frozen=True)
class VolumePair:
    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target}


@dataclass(frozen=True)
class MountSpec:
    """A named volume mounted into the helper container."""

    volume: str
    path: str
    read_only: bool

    def flag(self) -> str:
        """The ``docker run --mount`` value."""
        ro = ",readonly" if self.read_only else ""
        return f"type=volume,source={self.volume},target={self.path}{ro}"


@dataclass(frozen=True)
class HelperSpec:
    """The one helper container of a pair: what the engine is asked to create."""

    name: str
    image: str
    command: tuple[str, ...]
    mounts: tuple[MountSpec, ...]
    labels: tuple[tuple[str, str], ...]

    def argv(self, prefix: Sequence[str] = ("docker",)) -> list[str]:
        """The equivalent ``docker run`` (``-i``: the task talks with it on stdin)."""
        argv = [*prefix, "run", "--rm", "-i", "--name", self.name, "--network", "none"]
        for key, value in self.labels:
            argv += ["--label", f"{key}={value}"]
        for mount in self.mounts:
            argv += ["--mount", mount.flag()]
        return [*argv, self.image, *self.command]


@dataclass(frozen=True)
class CopyPlan:
    """The pairs and options of one ``staging.volumes`` run."""

    pairs: tuple[VolumePair, ...]
    helper_image: str = DEFAULT_HELPER_IMAGE
    force: bool = False
    checksum: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(p.target for p in self.pairs)

    def helper(self, pair: VolumePair) -> HelperSpec:
        return HelperSpec(
            name=lock_name(pair.target),
            image=self.helper_image,
            command=("sh", "-c", script.render(), "sh", "1" if self.checksum else "0"),
            mounts=(
                MountSpec(pair.source, script.SRC_DIR, True),
                MountSpec(pair.target, script.DST_DIR, False),
            ),
            labels=(
                (HELPER_LABEL, HELPER_KIND),
                (TARGET_LABEL, pair.target),
                (SOURCE_LABEL, pair.source),
            ),
        )

    def create_target_argv(
        self, pair: VolumePair, prefix: Sequence[str] = ("docker",)
    ) -> list[str]:
        label = f"{COPY_OF_LABEL}={pair.source}"
        return [*prefix, "volume", "create", "--label", label, pair.target]

    def marker_argv(self, pair: VolumePair, prefix: Sequence[str] = ("docker",)) -> list[str]:
        label = f"{MARKER_LABEL}={pair.target}"
        return [*prefix, "volume", "create", "--label", label, marker_name(pair.target)]

    def commands(
        self, prefix: Sequence[str] = ("docker",), *, existing: Collection[str] | None = None
    ) -> list[list[str]]:
        """What a run issues, in order (the dry run). ``existing``: the engine's volume names
        when known; a target not in it is created first (unknown: shown)."""
        cmds: list[list[str]] = []
        for pair in self.pairs:
            if existing is None or pair.target not in existing:
                cmds.append(self.create_target_argv(pair, prefix))
            cmds.append(self.marker_argv(pair, prefix))
            cmds.append(self.helper(pair).argv(prefix))
            cmds.append([*prefix, "volume", "rm", marker_name(pair.target)])
        return cmds

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": [p.to_json() for p in self.pairs],
            "helper_image": self.helper_image,
            "force": self.force,
            "checksum": self.checksum,
        }


def parse_volume_arg(arg: str) -> VolumePair:
    """``SOURCE`` (target from the naming rule) or ``SOURCE:TARGET``."""
    source, sep, target = arg.strip().partition(":")
    if not source or (sep and not target):
        raise ConfigError(f"--volume {arg!r}", hint="pass NAME or SOURCE:TARGET")
    check_volume_name(source, "--volume")
    if sep:
        check_volume_name(target, "--volume target")
        return VolumePair(source, target)
    if is_staging_name(source):
        # staging_volume_name would raise a message about compose files; say it our way.
        return VolumePair(source, source)
    return VolumePair(source, staging_volume_name(source))


def plan_copy(
    volumes: Sequence[str] = (),
    *,
    include_models: bool = False,
    helper_image: str = DEFAULT_HELPER_IMAGE,
    force: bool = False,
    checksum: bool = False,
    existing: Collection[str] | None = None,
) -> CopyPlan:
    """The pairs to copy, or one ConfigError naming every refused pair.

    ``volumes`` replaces the default set (gateway and web uploads); ``include_models`` adds
    ``meeshy-models-data``. ``existing`` is the set of volume names on the engine (None when
    unknown: a dry run without an engine), used to refuse a missing source.
    """
    if not helper_image.strip():
        raise ConfigError(
            "--helper-image is empty", hint=f"pass an image, e.g. {DEFAULT_HELPER_IMAGE}"
        )
    names = list(volumes) or list(DEFAULT_VOLUMES)
    if include_models:
        names.append(MODELS_VOLUME)
    pairs: list[VolumePair] = []
    for name in names:
        pair = parse_volume_arg(name)
        if pair not in pairs:
            pairs.append(pair)
    problems: list[str] = []
    seen_targets: dict[str, str] = {}
    for pair in pairs:
        if is_staging_name(pair.source):
            problems.append(f"{pair.source}: is a staging volume, copy from a prod volume")
        elif pair.source == pair.target:
            problems.append(f"{pair.source}: source and target are the same volume")
        elif not is_staging_name(pair.target):
            problems.append(f"{pair.source}: target {pair.target} is not a staging volume name")
        elif pair.target.endswith(MARKER_SUFFIX):
            problems.append(f"{pair.target}: is the name of a copy marker, not a volume to fill")
        elif pair.target in seen_targets:
            problems.append(
                f"{pair.target}: target of both {seen_targets[pair.target]} and {pair.source}"
            )
        if existing is not None and pair.source not in existing:
            problems.append(f"{pair.source}: no such volume")
        seen_targets.setdefault(pair.target, pair.source)
    if problems:
        raise ConfigError(
            "refused, nothing copied: " + "; ".join(problems),
            hint="check `docker volume ls`; sources are prod volumes, targets their staging twins",
        )
    return CopyPlan(tuple(pairs), helper_image.strip(), force, checksum)
