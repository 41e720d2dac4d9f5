"""Real-engine helpers for the volume tests (integration and hostile): volumes private to one
test (``meeshy-t3-<id>-*`` and their ``meeshy-staging-t3-<id>-*`` twins), filled by a busybox
container, read back independently of the code under test, and everything removed after:
volumes, marker volumes, helper containers."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import re
import tarfile
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

IMAGE = "alpine"

POPULATE = r"""
set -eu
cd /v
mkdir -p docs/nested/deep
printf 'hello\n' > docs/readme.txt
chmod 640 docs/readme.txt
chown 1234:5678 docs/readme.txt
printf '#!/bin/sh\n' > run.sh
chmod 4755 run.sh
: > empty
head -c 100000 /dev/urandom > docs/nested/deep/blob.bin
chmod 600 docs/nested/deep/blob.bin
printf 'x\n' > 'with space'
ln -s docs/readme.txt link
chown -h 1234:5678 link
ln -s /nowhere dangling
chmod 700 docs/nested
chown 42:43 docs
touch -d '2001-02-03 04:05:06' docs/readme.txt empty run.sh docs/nested/deep/blob.bin \
  docs/nested/deep docs/nested docs 'with space'
touch -h -d '2002-03-04 05:06:07' link
touch -d '2003-01-01 00:00:00' /v
"""
FILES = 7  # readme, run.sh, empty, blob, 'with space', link, dangling
BYTES = 6 + 10 + 0 + 100000 + 2

# Every entry's name and stat line (nanosecond mtime; a directory's size is the file system's
# business), by a busybox container: a listing that does not use the code under test. Names
# are NUL-terminated, so any name reads back exactly.
LIST = r"""
cd /v
find . -print0 | sort -z | xargs -0 -r sh -c '
for f; do
  printf "%s\0" "$f"
  if [ -d "$f" ] && [ ! -L "$f" ]; then stat -c "%f %u %g - %t %T %y" "$f"  # no dir sizes
  else stat -c "%f %u %g %s %t %T %y" "$f"; fi
  if [ -L "$f" ]; then readlink "$f"; elif [ -f "$f" ]; then md5sum < "$f"; fi
  printf "\0"
done' sh
"""

Snapshot = dict[str, tuple[Any, ...]]


@dataclasses.dataclass
class Vols:
    client: docker.DockerClient
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:6])

    def name(self, what: str) -> str:
        return f"meeshy-t3-{self.run_id}-{what}"

    def twin(self, what: str) -> str:
        return f"meeshy-staging-t3-{self.run_id}-{what}"

    def create(self, what: str, script: str = POPULATE) -> str:
        name = self.name(what)
        self.client.volumes.create(name)
        self.run(name, script)
        return name

    def run(self, volume: str, script: str, *, read_only: bool = False) -> bytes:
        from docker.types import Mount

        out = self.client.containers.run(
            IMAGE,
            ["sh", "-c", script],
            mounts=[Mount("/v", volume, type="volume", read_only=read_only)],
            network_mode="none",
            remove=True,
        )
        return bytes(out)

    def listing(self, volume: str, *, link_seconds: bool = True) -> dict[bytes, bytes]:
        """name -> its stat line (nanosecond mtime) plus link target or md5 of content.
        ``link_seconds``: a symlink's own time to the second (busybox cannot set more)."""
        raw = self.run(volume, LIST, read_only=True)
        fields = raw.split(b"\0")
        out = dict(zip(fields[0:-1:2], fields[1::2], strict=True))
        if link_seconds:
            for name, line in out.items():
                if (int(line.split(b" ", 1)[0], 16) & 0o170000) == 0o120000:
                    out[name] = re.sub(rb"(\d\d:\d\d:\d\d)\.\d+", rb"\1", line)
        return out

    def snapshot(self, volume: str) -> Snapshot:
        """Every entry of ``volume`` read as a tarball from a never-started container."""
        from docker.types import Mount

        container = self.client.containers.create(
            IMAGE,
            ["true"],
            mounts=[Mount("/v", volume, type="volume", read_only=True)],
            network_mode="none",
        )
        try:
            stream, _ = container.get_archive("/v")
            data = b"".join(stream)
        finally:
            container.remove(force=True)
        snap: Snapshot = {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                content = b""
                if m.isfile():
                    f = tar.extractfile(m)
                    assert f is not None
                    content = f.read()
                name = "." if m.name == "v" else m.name.removeprefix("v/")
                snap[name] = (
                    m.type,
                    m.mode,
                    m.uid,
                    m.gid,
                    int(m.mtime),
                    m.linkname,
                    m.size if m.isfile() else 0,
                    hashlib.sha256(content).hexdigest(),
                )
        return snap

    def helpers_left(self) -> list[str]:
        """Helper containers (any state) for this test's targets."""
        return [
            str(c.name)
            for c in self.client.containers.list(
                all=True, filters={"label": "me.meeshy.helper=volume-copy"}
            )
            if self.run_id in (c.labels.get("me.meeshy.volume-copy.target") or "")
        ]

    def wait_helpers_gone(self, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.helpers_left()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def volumes(self) -> set[str]:
        return {str(v.name) for v in self.client.volumes.list() if self.run_id in str(v.name)}

    def cleanup(self) -> None:
        from docker.errors import APIError, NotFound

        for c in self.client.containers.list(all=True):
            mounts = c.attrs.get("Mounts") or []
            if any(self.run_id in str(m.get("Name", "")) for m in mounts) or self.run_id in (
                c.name or ""
            ):
                with contextlib.suppress(NotFound, APIError):
                    c.remove(force=True)
        for v in self.client.volumes.list():
            if self.run_id in str(v.name):
                for _ in range(50):
                    try:
                        v.remove(force=True)
                        break
                    except NotFound:
                        break
                    except APIError:  # a helper being removed still holds it
                        time.sleep(0.2)
