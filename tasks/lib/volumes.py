"""Copy prod volumes to their staging twins, and report volume sizes (no Invoke here).

Two layers, as everywhere in this project:

* the PLAN is pure data: which (source, target) pairs, which helper image, and every helper
  container as a :class:`HelperSpec` that renders as the equivalent ``docker run`` argv (what a
  dry run prints);
* the ENGINE runs those specs with the docker SDK, each in a throwaway container that is always
  removed (:func:`helper_container`), the source mounted read-only.

How a copy stays honest (staging plan, step 5):

1. preflight, before anything starts: every source exists and is a prod volume, every target is
   a staging name used once, the helper image is present, no other copy into a target is
   running, and a populated target is only overwritten with ``--force``;
2. the source is measured (a manifest: type, mode, owner, size, mtime of every entry);
3. the copy container first writes the marker :data:`MARKER` into the target, empties the
   rest of the target, then ``cp -a /from/. /to/`` (busybox and GNU ``cp -a`` keep modes,
   owners, timestamps and symlinks; symlink mtimes are then set with ``touch -h``);
4. the target's manifest (and with ``--checksum`` sha256 sums over a sorted file list, both
   sides) must equal the source's, the marker never counted;
5. only then a last container removes the marker (and restores the root's mtime).

A copy that is interrupted anywhere leaves the marker, so it is never reported done, and a
rerun sees an *incomplete* target and redoes it without needing ``--force``.
"""

from __future__ import annotations

import shlex
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from tasks.lib.errors import CommandFailed, ConfigError
from tasks.lib.naming import is_staging_name, staging_volume_name

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

    from tasks.lib.output import Output

DEFAULT_VOLUMES: tuple[str, ...] = ("meeshy-gateway-uploads", "meeshy-web-uploads")
MODELS_VOLUME = "meeshy-models-data"
DEFAULT_HELPER_IMAGE = "alpine"
MARKER = ".meeshy-staging-copy-incomplete"
SRC_DIR = "/from"
DST_DIR = "/to"
PROBE_DIR = "/probe"
VOLUME_PATH = "/volume"

HELPER_LABEL = "me.meeshy.helper"
HELPER_KIND = "volume-copy"
TARGET_LABEL = "me.meeshy.volume-copy.target"
COPY_OF_LABEL = "me.meeshy.staging-copy-of"

SUMS_HEADER = "--sha256--"
RESULT_FILE = "/meeshy-result"  # in the container's own layer (busybox has no /tmp)

TargetState = Literal["absent", "empty", "incomplete", "populated", "unknown"]

# ---------------------------------------------------------------------------------------------
# Plan: pure data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MountSpec:
    """A named volume mounted into a helper container."""

    volume: str
    path: str
    read_only: bool

    def flag(self) -> str:
        """The ``docker run --mount`` value."""
        ro = ",readonly" if self.read_only else ""
        return f"type=volume,source={self.volume},target={self.path}{ro}"


@dataclass(frozen=True)
class HelperSpec:
    """One throwaway helper container: image, ``sh -c`` script, mounts, labels.

    A script whose result matters writes it to ``output`` inside the container (read back
    with ``get_archive`` once it exits), not to its log: the engine's log driver may be
    ``none``, or rotate a long manifest away.
    """

    purpose: str
    image: str
    script: str
    mounts: tuple[MountSpec, ...]
    labels: tuple[tuple[str, str], ...] = ()
    output: str = ""

    @property
    def command(self) -> list[str]:
        return ["sh", "-c", self.script]

    def argv(self, prefix: Sequence[str] = ("docker",)) -> list[str]:
        """The equivalent ``docker run`` command line."""
        argv = [*prefix, "run", "--rm", "--network", "none"]
        for key, value in self.labels:
            argv += ["--label", f"{key}={value}"]
        for mount in self.mounts:
            argv += ["--mount", mount.flag()]
        return [*argv, self.image, *self.command]


@dataclass(frozen=True)
class VolumePair:
    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


def _helper_labels(target: str) -> tuple[tuple[str, str], ...]:
    return ((HELPER_LABEL, HELPER_KIND), (TARGET_LABEL, target))


def copy_script() -> str:
    """Marker first, empty the rest of the target, ``cp -a``, then symlink mtimes."""
    q_marker = shlex.quote(f"{DST_DIR}/{MARKER}")
    return "\n".join(
        [
            "set -eu",
            f"touch {q_marker}",
            f"find {DST_DIR} -mindepth 1 -maxdepth 1 ! -name {shlex.quote(MARKER)} "
            "-exec rm -rf {} +",
            f"cp -a {SRC_DIR}/. {DST_DIR}/",
            f"cd {SRC_DIR}",
            # cp -a cannot set a symlink's own mtime; touch -r would follow the link.
            "find . -type l -exec sh -c "
            + shlex.quote(f'for l; do touch -h -d "@$(stat -c %Y "$l")" "{DST_DIR}/$l"; done')
            + " sh {} +",
        ]
    )


def inspect_script(path: str, *, checksum: bool) -> str:
    """A manifest of every entry (marker excluded), then optionally sha256 over sorted files."""
    not_marker = f"! -path ./{shlex.quote(MARKER)}"
    lines = [
        "set -eu",
        f"exec >{RESULT_FILE}",
        f"cd {path}",
        f"find . {not_marker} -exec stat -c '%f %u %g %s %Y %N' {{}} +",
    ]
    if checksum:
        lines += [
            f"echo {SUMS_HEADER}",
            f"find . -type f {not_marker} -print0 | sort -z | xargs -0 -r sha256sum",
        ]
    return "\n".join(lines)


def finalize_script() -> str:
    """Drop the marker; give the root back the source root's mtime."""
    return "\n".join(
        ["set -eu", f"rm -f {shlex.quote(f'{DST_DIR}/{MARKER}')}", f"touch -r {SRC_DIR} {DST_DIR}"]
    )


def probe_script(count: int) -> str:
    """One line ``<index> <state>`` for each target mounted at ``/probe/<index>``."""
    indexes = " ".join(str(i) for i in range(count))
    return "\n".join(
        [
            "set -eu",
            f"exec >{RESULT_FILE}",
            f"for i in {indexes}; do",
            f"  d={PROBE_DIR}/$i",
            f'  if [ -e "$d/{MARKER}" ]; then echo "$i incomplete"',
            '  elif [ -n "$(ls -A "$d")" ]; then echo "$i populated"',
            '  else echo "$i empty"; fi',
            "done",
        ]
    )


@dataclass(frozen=True)
class CopyPlan:
    """What ``staging.volumes`` will do; nothing here talks to an engine."""

    pairs: tuple[VolumePair, ...]
    helper_image: str = DEFAULT_HELPER_IMAGE
    force: bool = False
    checksum: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(p.target for p in self.pairs)

    def probe_spec(self, targets: Sequence[str]) -> HelperSpec:
        mounts = tuple(MountSpec(t, f"{PROBE_DIR}/{i}", True) for i, t in enumerate(targets))
        return HelperSpec(
            "probe",
            self.helper_image,
            probe_script(len(targets)),
            mounts,
            ((HELPER_LABEL, HELPER_KIND),),
            RESULT_FILE,
        )

    def inspect_spec(self, pair: VolumePair, side: Literal["source", "target"]) -> HelperSpec:
        volume = pair.source if side == "source" else pair.target
        return HelperSpec(
            f"inspect {side}",
            self.helper_image,
            inspect_script(VOLUME_PATH, checksum=self.checksum),
            (MountSpec(volume, VOLUME_PATH, True),),
            _helper_labels(pair.target),
            RESULT_FILE,
        )

    def copy_spec(self, pair: VolumePair) -> HelperSpec:
        return HelperSpec(
            "copy",
            self.helper_image,
            copy_script(),
            (MountSpec(pair.source, SRC_DIR, True), MountSpec(pair.target, DST_DIR, False)),
            _helper_labels(pair.target),
        )

    def finalize_spec(self, pair: VolumePair) -> HelperSpec:
        return HelperSpec(
            "finalize",
            self.helper_image,
            finalize_script(),
            (MountSpec(pair.source, SRC_DIR, True), MountSpec(pair.target, DST_DIR, False)),
            _helper_labels(pair.target),
        )

    def create_argv(self, pair: VolumePair, prefix: Sequence[str] = ("docker",)) -> list[str]:
        return [
            *prefix,
            "volume",
            "create",
            "--label",
            f"{COPY_OF_LABEL}={pair.source}",
            pair.target,
        ]

    def commands(
        self, prefix: Sequence[str] = ("docker",), *, existing: Collection[str] | None = None
    ) -> list[list[str]]:
        """Every command a run would issue, in order (the dry run). ``existing``: the engine's
        volume names when known; targets not in it get a ``volume create``, and targets in it
        are probed first. Unknown (no engine): both are shown."""
        cmds: list[list[str]] = []
        probed = [t for t in self.targets if existing is None or t in existing]
        if probed:
            cmds.append(self.probe_spec(probed).argv(prefix))
        for pair in self.pairs:
            cmds.append(self.inspect_spec(pair, "source").argv(prefix))
            if existing is None or pair.target not in existing:
                cmds.append(self.create_argv(pair, prefix))
            cmds.append(self.copy_spec(pair).argv(prefix))
            cmds.append(self.inspect_spec(pair, "target").argv(prefix))
            cmds.append(self.finalize_spec(pair).argv(prefix))
        return cmds


def parse_volume_arg(arg: str) -> VolumePair:
    """``SOURCE`` (target from the naming rule) or ``SOURCE:TARGET``."""
    source, sep, target = arg.strip().partition(":")
    if not source or (sep and not target):
        raise ConfigError(f"--volume {arg!r}", hint="pass NAME or SOURCE:TARGET")
    if not sep:
        if is_staging_name(source):
            # staging_volume_name would raise a message about compose files; say it our way.
            return VolumePair(source, source)
        target = staging_volume_name(source)
    return VolumePair(source, target)


def plan_copy(
    volumes: Sequence[str] = (),
    *,
    include_models: bool = False,
    helper_image: str = DEFAULT_HELPER_IMAGE,
    force: bool = False,
    checksum: bool = False,
    existing: Collection[str] | None = None,
) -> CopyPlan:
    """The pairs to copy, or ConfigError naming every refused pair.

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


# ---------------------------------------------------------------------------------------------
# Manifests: parse what the inspect containers print, compare two volumes
# ---------------------------------------------------------------------------------------------

_S_IFMT = 0o170000
_ROOTS = (".", "'.'")
_KINDS = {0o040000: "dir", 0o100000: "file", 0o120000: "symlink"}


@dataclass(frozen=True)
class Entry:
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int


@dataclass(frozen=True)
class Manifest:
    """Every entry of a volume keyed by ``stat``'s ``%N`` (path, and ``-> target`` for links)."""

    entries: Mapping[str, Entry]
    sums: Mapping[str, str] | None = None

    @property
    def files(self) -> int:
        """Entries that are not directories (files, symlinks, others)."""
        return sum(1 for e in self.entries.values() if e.kind != "dir")

    @property
    def dirs(self) -> int:
        """Directories below the root."""
        return sum(1 for k, e in self.entries.items() if e.kind == "dir" and k not in _ROOTS)

    @property
    def bytes(self) -> int:
        """Sum of regular file sizes."""
        return sum(e.size for e in self.entries.values() if e.kind == "file")

    @property
    def apparent(self) -> int:
        """Roughly ``du -sb``: every entry's size (the progress total)."""
        return sum(e.size for e in self.entries.values())


def parse_manifest(text: str) -> Manifest:
    entries: dict[str, Entry] = {}
    sums: dict[str, str] | None = None
    for line in text.splitlines():
        if not line:
            continue
        if line == SUMS_HEADER:
            sums = {}
            continue
        if sums is not None:
            digest, _, path = line.partition("  ")
            sums[path] = digest
            continue
        parts = line.split(" ", 5)
        if len(parts) != 6:
            raise CommandFailed(
                f"cannot read the volume's file list at {line[:60]!r}",
                hint="a file name with a newline in it is not supported; rename it",
            )
        raw_mode, uid, gid, size, mtime, name = parts
        mode = int(raw_mode, 16)
        entries[name] = Entry(
            _KINDS.get(mode & _S_IFMT, "other"),
            mode & 0o7777,
            int(uid),
            int(gid),
            int(size),
            int(mtime),
        )
    return Manifest(entries, sums)


def compare_manifests(source: Manifest, target: Manifest, *, limit: int = 5) -> list[str]:
    """What differs between two volumes, at most ``limit`` items (empty: equal)."""
    problems: list[str] = []
    for name, src in source.entries.items():
        dst = target.entries.get(name)
        if dst is None:
            problems.append(f"missing {name}")
            continue
        fields = ["kind", "mode", "uid", "gid", "mtime"] + ([] if src.kind == "dir" else ["size"])
        diff = [f for f in fields if getattr(src, f) != getattr(dst, f)]
        if diff:
            problems.append(f"{name} differs ({', '.join(diff)})")
    problems += [f"extra {name}" for name in target.entries if name not in source.entries]
    if source.sums is not None and target.sums is not None:
        for path, digest in source.sums.items():
            if target.sums.get(path) != digest:
                problems.append(f"{path} content differs (sha256)")
    elif source.sums is not None or target.sums is not None:
        problems.append("checksums missing on one side")
    return problems[:limit] + (
        [f"... {len(problems) - limit} more"] if len(problems) > limit else []
    )


# ---------------------------------------------------------------------------------------------
# Results and progress views
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyResult:
    source: str
    target: str
    files: int
    dirs: int
    bytes: int
    seconds: float
    verified: str
    before: str

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "files": self.files,
            "dirs": self.dirs,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.mb_per_s, 2),
            "verified": self.verified,
            "target_before": self.before,
        }


COPY_COLUMNS = ("source", "target", "files", "bytes", "seconds", "MB/s", "verified")


def copy_rows(results: Iterable[CopyResult]) -> list[list[str]]:
    from tasks.lib.output import size as human_size

    return [
        [
            r.source,
            r.target,
            str(r.files),
            human_size(r.bytes),
            f"{r.seconds:.1f}",
            f"{r.mb_per_s:.1f}",
            r.verified,
        ]
        for r in results
    ]


class CopyReporter(Protocol):
    def started(self, pair: VolumePair, total: int) -> None: ...
    def advanced(self, pair: VolumePair, done: int) -> None: ...
    def finished(self, pair: VolumePair) -> None: ...


class NullReporter:
    """JSON mode and tests: no progress."""

    def started(self, pair: VolumePair, total: int) -> None:
        pass

    def advanced(self, pair: VolumePair, done: int) -> None:
        pass

    def finished(self, pair: VolumePair) -> None:
        pass


class PlainReporter:
    """CI logs: a line when a copy starts, then at most one every ``every`` seconds."""

    def __init__(self, out: Output, every: float = 5.0) -> None:
        self.out = out
        self.every = every
        self._total = 0
        self._last = 0.0

    def started(self, pair: VolumePair, total: int) -> None:
        from tasks.lib.output import size as human_size

        self._total = total
        self._last = time.monotonic()
        self.out.info(f"copying {pair} ({human_size(total)})")

    def advanced(self, pair: VolumePair, done: int) -> None:
        from tasks.lib.output import size as human_size

        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        pct = 100 * min(done, self._total) // self._total if self._total else 100
        self.out.info(f"  {pair.target}: {pct}% ({human_size(done)} of {human_size(self._total)})")

    def finished(self, pair: VolumePair) -> None:
        pass


class RichReporter:
    """A terminal: one rich progress bar by bytes per volume."""

    def __init__(self, out: Output) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=out.out,
            transient=False,
        )
        self._tasks: dict[VolumePair, Any] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, pair: VolumePair, total: int) -> None:
        self._tasks[pair] = self.progress.add_task(pair.target, total=max(total, 1))

    def advanced(self, pair: VolumePair, done: int) -> None:
        task = self._tasks[pair]
        total = self.progress.tasks[task].total or 1
        self.progress.update(task, completed=min(done, int(total)))

    def finished(self, pair: VolumePair) -> None:
        task = self._tasks[pair]
        self.progress.update(task, completed=self.progress.tasks[task].total)


@contextmanager
def reporter_for(out: Output) -> Iterator[CopyReporter]:
    """The progress view that suits ``out``: none for JSON, lines in CI, a bar on a TTY."""
    if out.json_mode:
        yield NullReporter()
    elif out.plain:
        yield PlainReporter(out)
    else:
        with RichReporter(out) as view:
            yield view


# ---------------------------------------------------------------------------------------------
# Engine: the docker SDK
# ---------------------------------------------------------------------------------------------


def volume_names(client: docker.DockerClient) -> set[str]:
    return {str(v.name) for v in client.volumes.list()}


@contextmanager
def helper_container(client: docker.DockerClient, spec: HelperSpec) -> Iterator[Container]:
    """Create the helper container (not started); always remove it, also on Ctrl-C.

    The container gets a unique name first, so even a create interrupted half-way (the engine
    made it, the answer never arrived) is found and removed.
    """
    from docker.errors import APIError, NotFound
    from docker.types import Mount

    name = f"meeshy-{HELPER_KIND}-{uuid.uuid4().hex[:12]}"
    try:
        yield client.containers.create(
            spec.image,
            spec.command,
            name=name,
            labels=dict(spec.labels),
            network_mode="none",
            mounts=[
                Mount(m.path, m.volume, type="volume", read_only=m.read_only) for m in spec.mounts
            ],
        )
    finally:
        try:
            client.containers.get(name).remove(force=True)
        except NotFound:
            pass
        except APIError as exc:  # "removal already in progress" and the like
            if getattr(exc, "status_code", None) != 409:
                raise


def _failed(
    spec: HelperSpec, container: Container, code: int, prefix: Sequence[str]
) -> CommandFailed:
    err = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
    tail = "\n".join(err.splitlines()[-10:])
    return CommandFailed(
        f"{spec.purpose} container exited with {code}"
        + (f": {tail.splitlines()[-1]}" if tail else ""),
        argv=spec.argv(prefix),
        return_code=code,
        output=tail,
    )


def run_helper(
    client: docker.DockerClient, spec: HelperSpec, prefix: Sequence[str] = ("docker",)
) -> str:
    """Run ``spec`` to its end; its stdout, or CommandFailed with its stderr."""
    with helper_container(client, spec) as container:
        container.start()
        code = int(container.wait().get("StatusCode", 1))
        if code != 0:
            raise _failed(spec, container, code, prefix)
        if spec.output:
            return _read_file(container, spec.output)
        return str(container.logs(stdout=True, stderr=False).decode(errors="replace"))


def _read_file(container: Container, path: str) -> str:
    """One file out of a (stopped) container."""
    import io
    import tarfile

    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        f = tar.extractfile(member) if member is not None else None
        if f is None:
            raise CommandFailed(f"{path} missing from the helper container")
        return f.read().decode(errors="replace")


def ensure_helper_image(client: docker.DockerClient, image: str) -> None:
    """The helper image is local, or pulled; else ConfigError before anything starts."""
    from docker.errors import APIError, ImageNotFound
    from docker.utils import parse_repository_tag

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    repo, tag = parse_repository_tag(image)
    try:
        client.images.pull(repo, tag=tag or "latest")
    except APIError as exc:
        raise ConfigError(
            f"helper image {image!r} is not available locally and cannot be pulled",
            hint="`docker pull` it, or pass --helper-image IMAGE (any image with sh, cp, find, "
            "stat, sort, xargs, sha256sum, du: busybox, alpine, debian)",
        ) from exc


def target_states(
    client: docker.DockerClient,
    plan: CopyPlan,
    existing: Collection[str],
    prefix: Sequence[str] = ("docker",),
) -> dict[str, TargetState]:
    """absent / empty / incomplete (marker left by an interrupted copy) / populated."""
    states: dict[str, TargetState] = {t: "absent" for t in plan.targets if t not in existing}
    probed = [t for t in plan.targets if t in existing]
    if probed:
        out = run_helper(client, plan.probe_spec(probed), prefix)
        for line in out.splitlines():
            index, _, state = line.partition(" ")
            if state in ("empty", "incomplete", "populated"):
                states[probed[int(index)]] = state  # type: ignore[assignment]
    for t in plan.targets:
        states.setdefault(t, "unknown")
    return states


def preflight(
    client: docker.DockerClient,
    plan: CopyPlan,
    existing: Collection[str],
    prefix: Sequence[str] = ("docker",),
) -> dict[str, TargetState]:
    """Every engine-side refusal, for all pairs, before the first copy starts."""
    ensure_helper_image(client, plan.helper_image)
    problems: list[str] = []
    for target in plan.targets:
        running = client.containers.list(
            filters={"label": [f"{HELPER_LABEL}={HELPER_KIND}", f"{TARGET_LABEL}={target}"]}
        )
        if running:
            problems.append(f"{target}: another copy is running (container {running[0].name})")
            continue
        users = client.containers.list(filters={"volume": target})  # running ones only
        if users:
            names = ", ".join(sorted(str(c.name) for c in users))
            problems.append(
                f"{target}: in use by running container(s) {names}; stop the staging stack first"
            )
    states = target_states(client, plan, existing, prefix)
    if not plan.force:
        problems += [
            f"{t}: target is not empty (pass --force to replace its content)"
            for t, s in states.items()
            if s in ("populated", "unknown")
        ]
    if problems:
        raise ConfigError("refused, nothing copied: " + "; ".join(problems))
    return states


def inspect_volume(
    client: docker.DockerClient,
    plan: CopyPlan,
    pair: VolumePair,
    side: Literal["source", "target"],
    prefix: Sequence[str] = ("docker",),
) -> Manifest:
    return parse_manifest(run_helper(client, plan.inspect_spec(pair, side), prefix))


def _copied_bytes(container: Container) -> int | None:
    from docker.errors import APIError

    try:
        code, output = container.exec_run(["du", "-sb", DST_DIR])
    except APIError:  # the copy just ended
        return None
    if code != 0:
        return None
    try:
        return int(cast(bytes, output).split()[0])
    except (IndexError, ValueError):
        return None


def run_copy(
    client: docker.DockerClient,
    plan: CopyPlan,
    pair: VolumePair,
    *,
    total: int,
    reporter: CopyReporter,
    prefix: Sequence[str] = ("docker",),
    poll: float = 1.0,
) -> float:
    """The copy container, with progress polled from ``du -sb`` of the target; its seconds."""
    spec = plan.copy_spec(pair)
    with helper_container(client, spec) as container:
        reporter.started(pair, total)
        start = time.monotonic()
        container.start()
        delay = 0.1
        shown = 0
        while True:
            container.reload()
            if container.status not in ("created", "running"):
                break
            done = _copied_bytes(container)
            # Never backwards: a --force/incomplete rerun first clears the target, so du falls
            # before it rises; the bar waits at the last value meanwhile.
            if done is not None and done >= shown:
                shown = done
                reporter.advanced(pair, done)
            time.sleep(delay)
            delay = min(delay * 2, poll)
        code = int(container.wait().get("StatusCode", 1))
        seconds = time.monotonic() - start
        if code != 0:
            raise _failed(spec, container, code, prefix)
        reporter.finished(pair)
        return seconds


def copy_volume(
    client: docker.DockerClient,
    plan: CopyPlan,
    pair: VolumePair,
    *,
    existing: Collection[str],
    before: TargetState,
    reporter: CopyReporter,
    out: Output,
    prefix: Sequence[str] = ("docker",),
) -> CopyResult:
    """One pair: measure, copy, verify, then (only then) drop the marker."""
    out.step(f"{pair}  (target was {before})")
    source = inspect_volume(client, plan, pair, "source", prefix)
    if pair.target not in existing:
        client.volumes.create(name=pair.target, labels={COPY_OF_LABEL: pair.source})
    seconds = run_copy(client, plan, pair, total=source.apparent, reporter=reporter, prefix=prefix)
    target = inspect_volume(client, plan, pair, "target", prefix)
    problems = compare_manifests(source, target)
    if problems:
        raise CommandFailed(
            f"{pair.target} does not match {pair.source}: " + "; ".join(problems),
            hint="the target stays marked incomplete; rerun to redo it (stop the source's "
            "writers if it changed during the copy)",
        )
    run_helper(client, plan.finalize_spec(pair), prefix)
    return CopyResult(
        pair.source,
        pair.target,
        source.files,
        source.dirs,
        source.bytes,
        seconds,
        "sha256" if plan.checksum else "metadata",
        before,
    )


def execute_copy(
    client: docker.DockerClient,
    plan: CopyPlan,
    *,
    existing: Collection[str],
    out: Output,
    reporter: CopyReporter | None = None,
    prefix: Sequence[str] = ("docker",),
) -> list[CopyResult]:
    """Preflight every pair, then copy each; the per-volume results."""
    states = preflight(client, plan, existing, prefix)
    reporter = reporter or NullReporter()
    results: list[CopyResult] = []
    for pair in plan.pairs:
        try:
            results.append(
                copy_volume(
                    client,
                    plan,
                    pair,
                    existing=existing,
                    before=states[pair.target],
                    reporter=reporter,
                    out=out,
                    prefix=prefix,
                )
            )
        except BaseException:
            # what was copied and verified before the failure stays done: say so
            for r in results:
                out.warn(
                    f"done before the failure: {r.source} -> {r.target} "
                    f"({r.files} files, {r.bytes} bytes, verified)"
                )
            raise
    return results


# ---------------------------------------------------------------------------------------------
# volumes.size
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeUsage:
    name: str
    driver: str
    size: int | None
    containers: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "driver": self.driver,
            "size": self.size,
            "containers": list(self.containers),
        }


SIZE_COLUMNS = ("volume", "driver", "size", "containers")


def usage_report(
    df_volumes: Iterable[Mapping[str, Any]],
    containers: Iterable[Mapping[str, Any]],
    *,
    all_volumes: bool = False,
    word: str = "meeshy",
) -> list[VolumeUsage]:
    """Join ``docker system df`` volumes with the containers mounting them.

    ``containers`` are list-API dicts (``Names``, ``Mounts``); a size of -1 (non-local
    drivers) becomes None.
    """
    users: dict[str, list[str]] = {}
    for c in containers:
        cname = ",".join(n.lstrip("/") for n in c.get("Names") or []) or str(c.get("Id", ""))[:12]
        for m in c.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                users.setdefault(str(m["Name"]), []).append(cname)
    rows = []
    for v in df_volumes:
        name = str(v.get("Name", ""))
        if not all_volumes and word not in name:
            continue
        raw = (v.get("UsageData") or {}).get("Size")
        size = int(raw) if isinstance(raw, int) and raw >= 0 else None
        rows.append(
            VolumeUsage(
                name, str(v.get("Driver", "")), size, tuple(sorted(set(users.get(name, []))))
            )
        )
    return sorted(rows, key=lambda r: r.name)


def volume_usage(client: docker.DockerClient, *, all_volumes: bool = False) -> list[VolumeUsage]:
    df = client.df()
    containers = [c.attrs for c in client.containers.list(all=True, sparse=True)]
    return usage_report(df.get("Volumes") or [], containers, all_volumes=all_volumes)


def size_rows(rows: Iterable[VolumeUsage]) -> list[list[str]]:
    from tasks.lib.output import size as human_size

    return [[r.name, r.driver, human_size(r.size), "\n".join(r.containers) or "-"] for r in rows]
