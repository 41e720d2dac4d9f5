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
from tasks.lib.gate import ContextSource, context_files

VOLATILE_ARGS = frozenset({"BUILD_DATE", "VCS_REF"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Sources:
    """What one image takes from outside its Dockerfile, as the gate reads it: context
    sources (``""`` is the whole context) and external images."""

    paths: tuple[ContextSource | str, ...] = ("",)
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputKey:
    image: str
    sha256: str
    parts: tuple[tuple[str, str], ...] = ()
    files: tuple[str, ...] = ()
    images: tuple[tuple[str, str | None], ...] = ()
    missing_images: tuple[str, ...] = field(default=())

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


def compute(
    image: ImageBuild,
    sources: Sources,
    *,
    local_ids: Mapping[str, str | None],
    schema_sha256: str | None,
    files: Sequence[str] | None = None,
) -> InputKey:
    """The input key of ``image`` (``local_ids``: external image ref -> local image id):
    a hash per part (:data:`PARTS`), and the key the hash of those."""
    context = Path(image.context)
    dockerfile = Path(image.dockerfile)
    chosen = list(files) if files is not None else files_of(image, sources)
    part = {name: _Part() for name in PARTS}
    part["dockerfile"].put(hashlib.sha256(fsread.read_bytes(dockerfile)).hexdigest())
    for rel in chosen:
        full = context / rel
        st = os.lstat(full)
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            part["files"].put("link", rel, os.readlink(full))
        elif stat.S_ISDIR(st.st_mode):
            part["files"].put("dir", rel, mode)
        elif stat.S_ISREG(st.st_mode):
            part["files"].put("file", rel, mode, _file_digest(full))
        else:  # a FIFO, socket or device: its kind and mode (and device number), never read
            part["files"].put("special", rel, oct(st.st_mode), str(st.st_rdev))
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
    )


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
