"""Read files out of an image without running it (``images.validate`` checks the schema
file inside each image)."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from tasks.lib.images.signals import held_signals

if TYPE_CHECKING:
    import docker

SYMLINK_HOPS = 8
READER_KIND = "image-reader"  # HELPER_LABEL's value on the reader containers
MAX_FILE = 16 << 20  # a schema file is kilobytes: no more than this is read of one file


def read_image_files(
    client: docker.DockerClient, ref: str, paths: Sequence[str]
) -> dict[str, bytes | None]:
    """Create a container (never started), ``get_archive`` each path, remove the container.
    A missing path maps to None; symlinks are followed.

    The container is a helper as the volume copies' are (``HELPER_LABEL``, kind
    :data:`READER_KIND`) with a name of its own: a signal that cuts the create short (the
    engine made it, the answer never came back) removes it by that name, and the readers a
    killed run left (still ``created`` after ``STALE_CREATED``; such a container also makes
    ``docker.ensure`` wait for it) are removed by the next read."""
    from docker.errors import NotFound

    from tasks.lib.volumes.plan import HELPER_LABEL

    out: dict[str, bytes | None] = {}
    if not paths:
        return out
    remove_stale_readers(client)
    container = f"meeshy-image-reader-{uuid.uuid4().hex[:12]}"
    try:
        client.api.create_container(
            ref,
            command=["true"],
            entrypoint=[],
            name=container,
            labels={HELPER_LABEL: READER_KIND},
        )
    except BaseException:
        with held_signals(), contextlib.suppress(*_lost()):
            client.api.remove_container(container, force=True, v=True)
        raise
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
                try:
                    member_data, link = first_member(stream)
                finally:
                    stream.close()  # the rest (a folder's whole tree) is never read
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


def _lost() -> tuple[type[BaseException], ...]:
    """What a best-effort cleanup swallows: the engine's and the link's errors, never a
    signal's Interrupted."""
    from docker.errors import DockerException
    from requests import RequestException

    return (DockerException, RequestException, OSError)


def remove_stale_readers(client: docker.DockerClient) -> None:
    """Remove the readers a killed run left: created more than ``STALE_CREATED`` ago (a
    younger one may be another run's live reader); best effort."""
    from tasks.lib.volumes.plan import HELPER_LABEL, STALE_CREATED

    lost = _lost()
    with contextlib.suppress(*lost):
        now = time.time()
        for c in client.api.containers(
            all=True, filters={"label": f"{HELPER_LABEL}={READER_KIND}"}
        ):
            if now - float(c.get("Created") or 0) >= STALE_CREATED:
                with contextlib.suppress(*lost):
                    client.api.remove_container(c["Id"], force=True, v=True)


def first_member(chunks: Iterable[bytes], limit: int = MAX_FILE) -> tuple[bytes | None, str | None]:
    """From a tar stream (``get_archive``), read as far as its first member only:
    (content, None) for a regular file (at most ``limit`` bytes of it: a bigger file is not
    the schema, and its first bytes differ from it), (None, target) for a symlink, (None, None)
    else. What follows (a folder's tree, a huge file's rest) is never read into memory."""
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:
        member = tar.next()
        if member is None:
            return None, None
        if member.issym():
            return None, member.linkname
        if member.isfile():
            f = tar.extractfile(member)
            return (_read_at_most(f, limit) if f else None), None
    return None, None


def _read_at_most(f: IO[bytes], limit: int, piece: int = 1 << 20) -> bytes:
    """Up to ``limit`` bytes, a piece at a time (one big read costs tarfile's stream mode
    several copies of it)."""
    data = bytearray()
    while len(data) < limit:
        got = f.read(min(piece, limit - len(data)))
        if not got:
            break
        data += got
    return bytes(data)


class _ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks, read only as far as asked."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n
