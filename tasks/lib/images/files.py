"""Read files out of an image without running it (``images.validate`` checks the schema
file inside each image)."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from tasks.lib.images.signals import held_signals

if TYPE_CHECKING:
    import docker

SYMLINK_HOPS = 8
READER_LABEL = "me.meeshy.image-reader"  # value: one token per read, to find it again
STALE_READER = 60.0  # seconds: a reader lives for one read; older ones were abandoned


def read_image_files(
    client: docker.DockerClient, ref: str, paths: Sequence[str]
) -> dict[str, bytes | None]:
    """Create a container (never started), ``get_archive`` each path, remove the container.
    A missing path maps to None; symlinks are followed.

    The container carries :data:`READER_LABEL`: a signal that cuts the create short (the
    engine made it, the answer never came back) removes it by its label, and readers left by
    a killed run are removed by the next read (a ``created`` container also makes
    ``docker.ensure`` wait for it)."""
    from docker.errors import NotFound

    out: dict[str, bytes | None] = {}
    if not paths:
        return out
    remove_stale_readers(client)
    token = uuid.uuid4().hex
    try:
        made = client.api.create_container(
            ref, command=["true"], entrypoint=[], labels={READER_LABEL: token}
        )
    except BaseException:
        with held_signals():
            remove_readers(client, f"{READER_LABEL}={token}")
        raise
    container = str(made["Id"])
    try:
        for path in paths:
            current = path
            data: bytes | None = None
            for _ in range(SYMLINK_HOPS):
                try:
                    stream, _stat = client.api.get_archive(container, current)
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
            # v: and the anonymous volumes of its VOLUMEs
            client.api.remove_container(container, force=True, v=True)
    return out


def remove_readers(client: docker.DockerClient, label: str, *, older_than: float = 0.0) -> None:
    """Remove the reader containers matching ``label`` created more than ``older_than``
    seconds ago; best effort (the engine may be gone, another run may remove one first)."""
    from docker.errors import DockerException
    from requests import RequestException

    lost = (DockerException, RequestException, OSError)  # never a signal's Interrupted
    with contextlib.suppress(*lost):
        now = time.time()
        for c in client.api.containers(all=True, filters={"label": label}):
            if now - float(c.get("Created") or 0) >= older_than:
                with contextlib.suppress(*lost):
                    client.api.remove_container(c["Id"], force=True, v=True)


def remove_stale_readers(client: docker.DockerClient, *, older_than: float = STALE_READER) -> None:
    """Readers a killed run left (another run's live reader is younger than a minute)."""
    remove_readers(client, READER_LABEL, older_than=older_than)


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
