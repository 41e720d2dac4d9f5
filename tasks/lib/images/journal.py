"""The record of temporary ``--registry-url`` tags, so that none outlives its run.

``images.push --registry-url H:P`` (and ``staging.push``, ``release``) must tag each image
``H:P/<repository>:<tag>`` for the engine to push it there. Each such tag is written to this
record BEFORE it is made (with what the name pointed at before, if anything) and dropped
after it is put back. A run killed in between (SIGKILL, a crash, a power cut) leaves its
entries behind; the next run through the same engine finds them and puts those names back as
they were before the killed run, instead of mistaking its leftovers for the user's tags.

One record per engine (``EngineTarget.describe()``), in the user's state folder
(``$XDG_STATE_HOME/meeshy-tasks``, default ``~/.local/state/meeshy-tasks``): it belongs to
the engine, not to a checkout, so a rerun from another folder still finds it. A run holds the
record's lock (``flock``) from before its first temporary tag until the last is put back: a
second push through the same engine waits, and the kernel frees the lock of a killed run, so
whoever holds the lock knows every entry left in the record is a dead run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.lib.errors import ConfigError

FOLDER = "meeshy-tasks"


def state_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/meeshy-tasks``, else ``~/.local/state/meeshy-tasks``. A relative
    XDG_STATE_HOME is ignored, as the XDG spec says: it named a folder per working directory,
    so two runs from two folders held two different locks of one project."""
    base = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):
        base = str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / FOLDER


def state_refusal(exc: OSError, doing: str, path: Path | str, what: str) -> ConfigError:
    """A file of the state folder that cannot be written: one line, and how to fix it."""
    return ConfigError(
        f"cannot {doing} {path} ({what}): {exc.strerror or exc}",
        hint="make that folder writable, or set XDG_STATE_HOME to a writable folder",
    )


@dataclass(frozen=True)
class TempTag:
    """A temporary tag: ``ref`` made to point at ``image_id``; before, it pointed at
    ``previous_id`` (None: it did not exist). ``digests_before``: the image's digest
    references in that repository before the push (a push adds one; ours is removed)."""

    ref: str
    image_id: str
    previous_id: str | None = None
    digests_before: tuple[str, ...] = ()
    # the tag is put back already; the entry stays for the digest reference the engine may
    # still add: a push cut short by a signal can end in the engine after the run put back
    # its tags (the registry had the manifest), and its digest reference would outlive it
    tag_restored: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "image_id": self.image_id,
            "previous_id": self.previous_id,
            "digests_before": list(self.digests_before),
            "tag_restored": self.tag_restored,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TempTag:
        return cls(
            ref=str(data["ref"]),
            image_id=str(data["image_id"]),
            previous_id=str(data["previous_id"]) if data.get("previous_id") else None,
            digests_before=tuple(str(d) for d in data.get("digests_before") or ()),
            tag_restored=bool(data.get("tag_restored")),
        )


class Journal:
    """The temporary tags of pushes through one engine."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path = path
        self.engine = engine
        self._lock: Any = None

    @classmethod
    def for_engine(cls, engine: str, env: Mapping[str, str]) -> Journal:
        key = hashlib.sha256(engine.encode()).hexdigest()[:16]
        return cls(state_dir(env) / f"push-tags-{key}.json", engine)

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def _refuse(self, exc: OSError, doing: str) -> ConfigError:
        return state_refusal(exc, doing, self.path, "the record of temporary push tags")

    def read(self) -> list[TempTag]:
        """The entries; none when there is no record."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._refuse(exc, "read") from exc
        try:
            return [TempTag.from_json(e) for e in json.loads(text)["tags"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{self.path} (the record of temporary push tags) is not what this tool "
                f"writes ({type(exc).__name__}: {exc})",
                hint="read it (it names the tags an interrupted push left), then remove it",
            ) from exc

    def _write(self, entries: Sequence[TempTag]) -> None:
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        data = {"engine": self.engine, "tags": [e.to_json() for e in entries]}
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".push-tags-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise self._refuse(exc, "write") from exc

    def add(self, entry: TempTag) -> None:
        self._write([*self.read(), entry])

    def discard(self, entries: Sequence[TempTag]) -> None:
        gone = set(entries)
        self._write([e for e in self.read() if e not in gone])

    @contextlib.contextmanager
    def locked(self, on_wait: Callable[[], None] | None = None) -> Iterator[Journal]:
        """Hold the record's lock; ``on_wait`` is called once if another run holds it."""
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = self.lock_path.open("a+")
        except OSError as exc:
            raise self._refuse(exc, "create") from exc
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield self
        finally:
            fh.close()  # closing the file frees the lock
