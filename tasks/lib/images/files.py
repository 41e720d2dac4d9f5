"""Read files out of an image without running it (``images.validate`` checks the schema
file inside each image)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from tasks.lib.images.signals import held_signals

if TYPE_CHECKING:
    import docker

SYMLINK_HOPS = 8


def read_image_files(
    client: docker.DockerClient, ref: str, paths: Sequence[str]
) -> dict[str, bytes | None]:
    """Create a container (never started), ``get_archive`` each path, remove the container.
    A missing path maps to None; symlinks are followed."""
    from docker.errors import NotFound

    out: dict[str, bytes | None] = {}
    if not paths:
        return out
    container = client.containers.create(ref, command=["true"], entrypoint=[])
    try:
        for path in paths:
            current = path
            data: bytes | None = None
            for _ in range(SYMLINK_HOPS):
                try:
                    stream, _stat = container.get_archive(current)
                except NotFound:
                    data = None
                    break
                member_data, link = first_member(b"".join(stream))
                if link is None:
                    data = member_data
                    break
                current = (
                    link if link.startswith("/") else str(PurePosixPath(current).parent / link)
                )
            out[path] = data
    finally:
        with held_signals():  # a Ctrl-C now must not leave the container behind
            container.remove(force=True, v=True)  # and the anonymous volumes of its VOLUMEs
    return out


def first_member(tar_bytes: bytes) -> tuple[bytes | None, str | None]:
    """(content, None) for a regular file, (None, target) for a symlink, (None, None) else."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar:
            if member.issym():
                return None, member.linkname
            if member.isfile():
                f = tar.extractfile(member)
                return (f.read() if f else None), None
            return None, None
    return None, None
