"""The build context as BuildKit receives it: the files under the context root that the ignore
rules let through, symlinks kept as symlinks, and how a ``COPY`` source path resolves in it.

Facts this follows (each checked by a real build in tests/integration/test_gate_buildkit.py):
an excluded directory is still sent, holding only what a ``!`` pattern re-includes; a
``COPY``/``ADD`` source is resolved through symlinks (all of its components, the last one too,
scoped to the context root: an absolute link target is read from the context root); inside a
copied directory, symlinks are copied as symlinks; wildcard sources match one path component
per pattern component (Go's ``filepath.Match``), and each match is resolved like a plain source.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from tasks.lib import fsread
from tasks.lib.gate.dockerignore import IgnorePattern, IgnoreRules, clean
from tasks.lib.stamps import FileStamp, file_stamp

Kind = Literal["file", "dir", "link"]
_GLOB_CHARS = frozenset("*?[")
_MAX_LINKS = 40


def has_glob(path: str) -> bool:
    """Whether ``path`` has a wildcard (``*``, ``?`` or ``[``) that is not escaped."""
    if "*" not in path and "?" not in path and "[" not in path:
        return False
    i = 0
    while i < len(path):
        if path[i] == "\\":
            i += 2
            continue
        if path[i] in _GLOB_CHARS:
            return True
        i += 1
    return False


@functools.lru_cache(maxsize=512)
def _component_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append("\\[")
                continue
            body = pattern[i:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out))


def match_component(name: str, pattern: str) -> bool:
    """Go's ``filepath.Match`` for one path component (``[^x]`` negates, ``\\`` escapes)."""
    try:
        return _component_regex(pattern).fullmatch(name) is not None
    except re.error:
        return False


def context_rel(source: str) -> str:
    """A source path as a context-relative path (``""`` for the root; ``..`` cannot leave it)."""
    rel = posixpath.normpath("/" + source).lstrip("/")
    return "" if rel == "." else rel


class BuildContext:
    """What a build with context ``root`` and ``ignore`` rules can read."""

    def __init__(self, root: Path, ignore: IgnoreRules) -> None:
        self.root = root
        self.ignore = ignore
        self._kinds: dict[str, Kind | None] = {}
        self._lists: dict[str, list[str]] = {}
        self._texts: dict[str, str | None] = {}
        self._dirs: dict[str, bool] = {}
        # path -> its stamp, taken just before the gate read it: a build compares these
        # after it ends, so a file saved after the gate read it is seen (tasks/lib/build)
        self.read_stamps: dict[str, FileStamp] = {}

    def _lstat_kind(self, rel: str) -> Kind | None:
        try:
            mode = os.lstat(self.root / rel if rel else self.root).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        return "file"

    def listdir(self, rel: str) -> list[str]:
        """Names in directory ``rel`` on disk (sorted; empty when it cannot be read)."""
        if rel not in self._lists:
            try:
                names = sorted(os.listdir(self.root / rel if rel else self.root))
            except OSError:
                names = []
            self._lists[rel] = names
        return self._lists[rel]

    def kind(self, rel: str) -> Kind | None:
        """What the sent context holds at ``rel`` (``None``: nothing, or left out)."""
        rel = clean(rel) if rel else ""
        if rel == ".":
            rel = ""
        if rel in self._kinds:
            return self._kinds[rel]
        found = self._lstat_kind(rel)
        if found is not None and rel:
            # below a symlink the path does not exist in the context (it is not followed);
            # an excluded parent folder is still sent when this entry is
            parent = posixpath.dirname(rel)
            kept = not self.ignore.excluded(rel) or (found == "dir" and self._keeps_some(rel))
            if not kept or (parent and not self._real_dir(parent)):
                found = None
        self._kinds[rel] = found
        return found

    def _real_dir(self, rel: str) -> bool:
        """Whether ``rel`` and every folder above it are folders, not symlinks."""
        if rel in self._dirs:
            return self._dirs[rel]
        parent = posixpath.dirname(rel)
        real = self._lstat_kind(rel) == "dir" and (not parent or self._real_dir(parent))
        self._dirs[rel] = real
        return real

    def _keeps_some(self, folder: str) -> bool:
        """Whether excluded directory ``folder`` still sends something a ``!`` re-includes."""
        if not self.ignore.may_keep_below(folder):
            return False
        return any(self.kind(f"{folder}/{name}") is not None for name in self.listdir(folder))

    def culprit(self, rel: str) -> IgnorePattern | None:
        """The ignore pattern that leaves ``rel`` (or the nearest left-out parent) out."""
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            hit = self.ignore.culprit(prefix)
            if hit is not None and self.kind(prefix) is None:
                return hit
        return None

    def on_disk(self, rel: str) -> bool:
        """Whether ``rel`` exists on disk, sent or not."""
        return self._lstat_kind(rel) is not None

    def read_text(self, rel: str) -> str | None:
        """The text of context file ``rel`` (``None`` when it cannot be read as UTF-8)."""
        if rel not in self._texts:
            self.read_stamps[str(self.root / rel)] = file_stamp(self.root / rel)
            try:
                self._texts[rel] = fsread.read_text(self.root / rel)
            except (OSError, UnicodeDecodeError):
                self._texts[rel] = None
        return self._texts[rel]

    def link_target(self, rel: str) -> str:
        """The text of symlink ``rel``."""
        return os.readlink(self.root / rel)

    def resolve(self, rel: str) -> str | None:
        """``rel`` with every symlink followed inside the context (BuildKit's ``RootPath``):
        ``None`` when a component is missing from the sent context."""
        parts = [p for p in rel.split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/".join([*done, part])
            kind = self.kind(current)
            if kind is None:
                return None
            if kind == "link":
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                target = self.link_target(current)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            done.append(part)
        return "/".join(done)

    def glob(self, pattern: str) -> list[str]:
        """Context paths a wildcard source matches (BuildKit's ``ResolveWildcards``)."""
        parts = [p for p in pattern.split("/") if p]
        first = next((i for i, p in enumerate(parts) if has_glob(p)), len(parts))
        base = self.resolve("/".join(parts[:first]))
        if base is None:
            return []
        found = [base]
        for comp in parts[first:]:
            nxt: list[str] = []
            for prefix in found:
                if prefix and self.kind(prefix) != "dir":
                    continue
                for name in self.listdir(prefix):
                    cand = f"{prefix}/{name}" if prefix else name
                    if match_component(name, comp) and self.kind(cand) is not None:
                        nxt.append(cand)
            found = nxt
        return found

    def walk(self, rel: str, excludes: IgnoreRules | None = None) -> Iterator[str]:
        """Entries the context sends under ``rel`` (``rel`` itself if it is not a folder):
        files, symlinks, special files and folders (an empty one too: BuildKit copies it),
        without those ``excludes`` (matched relative to ``rel``) leaves out; sorted. A folder
        that is left out but holds something re-included is sent, as its parent."""
        kind = self.kind(rel)
        if kind is None:
            return
        if kind != "dir":
            if excludes is None or not excludes.excluded(posixpath.basename(rel)):
                yield rel
            return
        yield from self._walk_dir(rel, "", excludes)

    def _walk_dir(self, base: str, inner: str, excludes: IgnoreRules | None) -> Iterator[str]:
        folder = f"{base}/{inner}".strip("/") if inner else base
        for name in self.listdir(folder):
            rel = f"{folder}/{name}" if folder else name
            kind = self.kind(rel)
            if kind is None:
                continue
            sub = f"{inner}/{name}" if inner else name
            if excludes is not None and excludes.excluded(sub):
                if kind != "dir" or not excludes.may_keep_below(sub):
                    continue
                below = list(self._walk_dir(base, sub, excludes))
                if below:
                    yield rel
                    yield from below
                continue
            yield rel
            if kind == "dir":
                yield from self._walk_dir(base, sub, excludes)
