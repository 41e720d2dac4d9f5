"""Content-addressed builds: the input key of an image, and whether the engine already holds
an image built from exactly those inputs.

The key is a sha256 over everything that decides what BuildKit produces for an image:

* the Dockerfile's bytes;
* every file the final image's stages take from the context (``COPY``/``ADD`` sources and
  ``RUN --mount=type=bind`` sources, as the schema gate resolves them), after
  ``.dockerignore`` with Docker's own rules (``<Dockerfile>.dockerignore`` beside the
  Dockerfile wins over the context's; ``!`` re-includes; ``**``), each by path, mode and
  content (a symlink by its target; a folder, empty or not, by its mode; a FIFO, socket or
  device by its kind, never opened);
* the build args except ``BUILD_DATE`` and ``VCS_REF`` (they change every run);
* variant, target and platforms;
* the local image ID of every external image the final image depends on (``FROM`` images that
  are not stages, ``COPY --from=<image>``); an image absent from the engine means "build";
* the schema's sha256.

Each build labels its image with the key (``me.meeshy.inputs.sha256``); a later run skips an
image whose every tag already carries it.

The key is hashed from one read of the files and BuildKit reads them again, later. So the key
also keeps a stamp of every input (inode, size, nanosecond mtime and ctime, taken before its
content is read): after a build, :func:`moved` recomputes the key and compares both. An input
that changed in between (an editor saving, a ``git checkout``) means the image may hold either
version and its label is not to be trusted: the build fails and no tag is written (see
:func:`tasks.lib.build.flow.land`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tasks.lib import fsread
from tasks.lib.build.plan import INPUTS_LABEL, INPUTS_PARTS_LABEL, ImageBuild
from tasks.lib.errors import CommandFailed
from tasks.lib.gate import ContextSource, context_files
from tasks.lib.gate.context import context_rel, has_glob
from tasks.lib.stamps import FileStamp, build_files, file_stamp, stamp_of

VOLATILE_ARGS = frozenset({"BUILD_DATE", "VCS_REF"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Sources:
    """What one image takes from outside its Dockerfile, as the gate reads it: context
    sources (``""`` is the whole context) and external images."""

    paths: tuple[ContextSource | str, ...] = ("",)
    images: tuple[str, ...] = ()
    # the image the final stage starts from ("" for scratch, or several platforms built):
    # the built image's first layers must be its layers (land checks it)
    root: str = ""
    # why the Dockerfile could not be read for them (only with --skip-schema-check: the
    # gate refuses such a file first); its base images are then unknown: never up to date
    unread: str = ""


@dataclass(frozen=True)
class InputKey:
    image: str
    sha256: str
    parts: tuple[tuple[str, str], ...] = ()
    files: tuple[str, ...] = ()
    images: tuple[tuple[str, str | None], ...] = ()
    missing_images: tuple[str, ...] = field(default=())
    # (path, stamp) of the Dockerfile, the ignore files and every context entry, in order
    stamps: tuple[tuple[str, FileStamp], ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "sha256": self.sha256,
            "files": len(self.files),
            "images": dict(self.images),
        }


def files_of(image: ImageBuild, sources: Sources) -> list[str]:
    """The context files the image's build reads, as BuildKit sends them (the gate's
    reading of the ignore file, wildcards and symlinks)."""
    return context_files(Path(image.context), Path(image.dockerfile), sources.paths)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with fsread.open_file(path) as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# The parts of a key, in the order a changed input is named when an image is stale.
PARTS = ("dockerfile", "files", "args", "variant", "images", "schema")
PART_WORDS = {
    "dockerfile": "the Dockerfile",
    "files": "a file it copies from the context",
    "args": "a build arg",
    "variant": "the variant or platforms",
    "images": "a base image",
    "schema": "the shared schema",
}


class _Part:
    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def put(self, *parts: str) -> None:
        for p in parts:
            self.h.update(p.encode("utf-8", "surrogateescape"))
            self.h.update(b"\0")


def as_named(path: str, context: Path | str) -> str:
    """``path`` as a user names it: relative to the build context when inside it."""
    if not os.path.isabs(path):
        return path
    rel = os.path.relpath(path, context)
    return path if rel.startswith("..") else rel


class InputVanished(CommandFailed):
    """An input that disappeared between the listing of the context and its reading."""

    def __init__(self, filename: str, context: Path) -> None:
        self.filename = as_named(filename, context)
        super().__init__(
            f"{self.filename} disappeared while the input key of the build was made "
            "(a save, a checkout or a build tool writing there)",
            hint="rerun once the files are settled",
        )


def compute(
    image: ImageBuild,
    sources: Sources,
    *,
    local_ids: Mapping[str, str | None],
    schema_sha256: str | None,
    files: Sequence[str] | None = None,
    early: Sequence[tuple[str, FileStamp]] = (),
) -> InputKey:
    """The input key of ``image`` (``local_ids``: external image ref -> local image id):
    a hash per part (:data:`PARTS`), and the key the hash of those. ``early``: stamps taken
    before (the plan's, :attr:`ImageBuild.early_stamps`), kept for their paths. Raises
    InputVanished when a file goes while it is made."""
    part = {name: _Part() for name in PARTS}
    try:
        chosen, stamps = _read_files(image, sources, files, part, dict(early))
    except FileNotFoundError as exc:
        if not exc.filename:
            raise
        raise InputVanished(str(exc.filename), Path(image.context)) from exc
    for k, v in sorted(image.build_args):
        if k not in VOLATILE_ARGS:
            part["args"].put(k, v)
    part["variant"].put(image.variant or "", ",".join(image.platforms))
    images = tuple((ref, local_ids.get(ref)) for ref in sources.images)
    for ref, image_id in images:
        part["images"].put(ref, image_id or "absent")
    part["schema"].put(schema_sha256 or "")
    digests = {name: p.h.hexdigest() for name, p in part.items()}
    whole = hashlib.sha256("".join(digests[n] for n in PARTS).encode()).hexdigest()
    return InputKey(
        image=image.name,
        sha256=whole,
        parts=tuple((n, digests[n][:12]) for n in PARTS),
        files=tuple(chosen),
        images=images,
        missing_images=tuple(ref for ref, i in images if i is None),
        stamps=stamps,
    )


def _read_files(
    image: ImageBuild,
    sources: Sources,
    files: Sequence[str] | None,
    part: dict[str, _Part],
    early: dict[str, FileStamp],
) -> tuple[list[str], tuple[tuple[str, FileStamp], ...]]:
    """The Dockerfile and the context entries into their parts: the entries (listed now
    unless given) and the stamp of every file read."""
    context = Path(image.context)
    dockerfile = Path(image.dockerfile)
    # stamped before anything is read, so a change while the key is made is seen too; the
    # plan's stamps (taken before the gate and the schema's hash read these files) win
    stamps: list[tuple[str, FileStamp]] = [
        (str(p), early[str(p)] if str(p) in early else file_stamp(p))
        for p in build_files(dockerfile, context)
    ]
    # the folders the sources name: an entry created in one (and gone again) is not listed
    stamps += [(str(context / d), file_stamp(context / d)) for d in _source_folders(sources)]
    chosen = list(files) if files is not None else files_of(image, sources)
    part["dockerfile"].put(hashlib.sha256(fsread.read_bytes(dockerfile)).hexdigest())
    for rel in chosen:
        full = context / rel
        st = os.lstat(full)
        stamps.append((str(full), early.get(str(full), stamp_of(st))))
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            part["files"].put("link", rel, os.readlink(full))
        elif stat.S_ISDIR(st.st_mode):
            part["files"].put("dir", rel, mode)
        elif stat.S_ISREG(st.st_mode):
            part["files"].put("file", rel, mode, _file_digest(full))
        else:  # a FIFO, socket or device: its kind and mode (and device number), never read
            part["files"].put("special", rel, oct(st.st_mode), str(st.st_rdev))
    return chosen, tuple(stamps)


def _source_folders(sources: Sources) -> list[str]:
    """Each source as the folder whose entries it may take (context-relative; ``.`` is the
    root): the source itself, or, for a wildcard, the folder above its first wildcard. A
    source that is a file stamps itself as an entry; its folder is not watched (a file
    saved beside ``package.json`` does not change what ``COPY package.json`` takes)."""
    folders: list[str] = []
    for source in sources.paths:
        rel = context_rel(source.path if isinstance(source, ContextSource) else source)
        if has_glob(rel):
            parts = rel.split("/")
            rel = "/".join(parts[: next(i for i, c in enumerate(parts) if has_glob(c))])
        folders.append(rel or ".")
    return list(dict.fromkeys(folders))


def moved(before: InputKey, after: InputKey) -> str | None:
    """The first input that is not what it was when ``before`` was made (``after``: the key
    made again now), as a path; None when every input is as it was, content and stamp."""
    if before.sha256 == after.sha256 and before.stamps == after.stamps:
        return None
    then, now = dict(before.stamps), dict(after.stamps)
    differ = [
        path
        for path in dict.fromkeys(p for p, _ in [*before.stamps, *after.stamps])
        if then.get(path, "absent") != now.get(path, "absent")
    ]
    # a file added or saved also moves its folder's stamp: name the file
    files = [p for p in differ if not (_is_dir(then.get(p)) or _is_dir(now.get(p)))]
    if files or differ:
        return (files or differ)[0]
    return "an input"  # same files and stamps, other content: a stamp did not move (coarse clock)


def _is_dir(stamp: object) -> bool:
    return isinstance(stamp, tuple) and stat.S_ISDIR(stamp[2])


def parts_label(key: InputKey) -> str:
    """``dockerfile=1a2b.. files=.. ...``: what the image records of each part."""
    return " ".join(f"{n}={d}" for n, d in key.parts)


def changed_part(key: InputKey, recorded: str) -> str:
    """The first input that differs from what an image recorded, in words."""
    old = dict(item.split("=", 1) for item in recorded.split() if "=" in item)
    for name, digest in key.parts:
        if old.get(name) != digest:
            return PART_WORDS[name] + " changed" if name in old else "its inputs changed"
    return "its inputs changed"


def label(key: InputKey) -> tuple[tuple[str, str], ...]:
    return ((INPUTS_LABEL, key.sha256), (INPUTS_PARTS_LABEL, parts_label(key)))


@dataclass(frozen=True)
class Freshness:
    """Whether an image must be built, and why."""

    image: str
    up_to_date: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"image": self.image, "up_to_date": self.up_to_date, "reason": self.reason}


def judge(
    image: ImageBuild, key: InputKey, tag_labels: Mapping[str, Mapping[str, str] | None]
) -> Freshness:
    """Up to date when every tag exists on the engine carrying this key (``tag_labels``:
    tag -> the labels of the image it names, None when the tag does not exist)."""
    if image.force:
        why = "--no-cache" if image.no_cache else "--pull" if image.pull else "--force"
        return Freshness(image.name, False, f"{why}: built anyway")
    if key.missing_images:
        return Freshness(
            image.name, False, f"base image {key.missing_images[0]} is not on the engine"
        )
    for tag in image.tags:
        labels = tag_labels.get(tag)
        if labels is None:
            return Freshness(image.name, False, f"{tag} does not exist")
        if labels.get(INPUTS_LABEL) != key.sha256:
            if not labels.get(INPUTS_LABEL):
                return Freshness(image.name, False, f"{tag} carries no input key")
            what = changed_part(key, labels.get(INPUTS_PARTS_LABEL, ""))
            return Freshness(image.name, False, f"{tag} was built from other inputs: {what}")
    return Freshness(image.name, True, "every tag carries this input key")
