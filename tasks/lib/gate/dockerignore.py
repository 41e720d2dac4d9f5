"""``.dockerignore`` files and ``COPY --exclude`` patterns, matched the way BuildKit matches them.

Which file applies: ``<Dockerfile>.dockerignore`` beside the Dockerfile, else ``.dockerignore``
at the context root; no other file is read. How a line becomes a pattern (moby's ignorefile
reader): a line starting with ``#`` in column 1 is a comment, whitespace is trimmed, ``!``
re-includes, the path is cleaned like Go's ``filepath.Clean`` and a leading ``/`` dropped.

How a path is matched (moby/patternmatcher ``MatchesUsingParentResults``, as BuildKit's context
walker calls it for every file and directory from the root down): ``*`` and ``?`` stop at
``/``, ``**`` crosses directories, matching is case-sensitive, a pattern that matched a parent
directory matches everything under it, the last matching pattern decides, and a pattern whose
verdict would not change the running result is not evaluated for that path (so a later
pattern that only matches a parent can lose to an earlier ``!`` pattern: a quirk kept on
purpose, checked on a real engine by tests/integration/test_gate_buildkit.py). An excluded
directory is still entered when any ``!`` pattern could re-include something below it.

The docker SDK's ``PatternMatcher`` is not used: it lowercases paths and patterns, tries only
one parent prefix, and skips an excluded directory unless a ``!`` pattern starts with its path;
each of these gives a different answer than BuildKit on the integration test's cases.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.lib import fsread
from tasks.lib.errors import ConfigError

_ESCAPED = frozenset(".+()|{}$")


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for a slash path, then no leading ``/`` (unless it is all)."""
    out = posixpath.normpath(path) if path else "."
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    if len(out) > 1 and out.startswith("/"):
        out = out[1:]
    return out


def translate(pattern: str) -> str:
    """The regular expression moby's patternmatcher compiles ``pattern`` to."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in _ESCAPED:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class IgnorePattern:
    """One pattern: where it was written, as written, and cleaned."""

    line: int
    text: str
    pattern: str
    exclusion: bool
    regex: re.Pattern[str]

    def matches(self, rel: str) -> bool:
        """Whether the pattern matches context path ``rel`` itself."""
        return self.regex.fullmatch(rel) is not None

    def could_match_below(self, folder: str) -> bool:
        """Whether the pattern could match some path strictly below ``folder``."""
        parts = [p for p in folder.split("/") if p]
        comps = self.pattern.split("/")
        for i, part in enumerate(parts):
            if i >= len(comps):
                return False
            if "**" in comps[i]:
                return True
            if not fnmatch.fnmatchcase(part, comps[i].replace("\\", "")):
                return False
        return len(comps) > len(parts) or any("**" in c for c in comps)


# what Go's strings.TrimSpace trims (unicode.IsSpace), as moby's reader trims each line:
# Python's str.strip also takes \x1c-\x1f, which stay in the pattern BuildKit gets
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)


def _compile(line: int, raw: str, source: str | None) -> IgnorePattern | None:
    """The pattern of one line; None for a blank one. ConfigError for what BuildKit refuses
    (the build would fail, while a key would still call an image up to date): a ``!`` alone
    ("illegal exclusion pattern"), a control character other than a tab (the patterns travel
    in the session's gRPC headers: "PROTOCOL_ERROR"), a pattern that does not compile."""
    text = raw.strip(_GO_SPACE)
    if not text:
        return None
    where = f"{source}:{line}" if source else f"pattern {line}"
    control = next((c for c in text if (c < " " and c != "\t") or c == "\x7f"), None)
    if control is not None:
        raise ConfigError(
            f"{where}: pattern {text!r} holds the control character {control!r}",
            hint="BuildKit fails the build on it (PROTOCOL_ERROR): remove it",
        )
    exclusion = text.startswith("!")
    body = text[1:].strip(_GO_SPACE) if exclusion else text
    if not body:
        raise ConfigError(
            f"{where}: '!' alone is not a pattern",
            hint="Docker refuses it (illegal exclusion pattern): name what to re-include after "
            "it, or remove the line",
        )
    pattern = clean(body)
    try:
        regex = re.compile(translate(pattern))
    except re.error as exc:
        raise ConfigError(
            f"{where}: pattern {text!r} is invalid ({exc})", hint="fix or remove the pattern"
        ) from None
    return IgnorePattern(line, text, pattern, exclusion, regex)


MatchInfo = tuple[bool, ...]


class IgnoreRules:
    """A list of patterns and the verdict BuildKit gives each context path."""

    def __init__(self, lines: Iterable[tuple[int, str]] = (), source: str | None = None) -> None:
        self.source = source
        compiled = (_compile(number, raw, source) for number, raw in lines)
        self.patterns: tuple[IgnorePattern, ...] = tuple(p for p in compiled if p is not None)
        self._info: dict[str, tuple[IgnorePattern | None, MatchInfo]] = {}

    @classmethod
    def parse(cls, text: str, source: str | None = None) -> IgnoreRules:
        """Rules from the text of an ignore file (moby's reader: ``#`` in column 1, BOM; a
        line ends at ``\n`` only, a ``\r`` before it dropped: not at U+2028 or U+0085 as
        ``str.splitlines`` would)."""
        lines: list[tuple[int, str]] = []
        for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
            line = raw.removesuffix("\r")
            if not line.startswith("#"):
                lines.append((number, line))
        return cls(lines, source)

    @classmethod
    def read(cls, path: Path | None, shown: str | None = None) -> IgnoreRules:
        """Rules from the file at ``path`` (no rules when ``path`` is ``None``)."""
        if path is None:
            return cls()
        try:
            text = fsread.read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 at byte {exc.start}"
            raise ConfigError(
                f"{shown or path}: cannot read the ignore file ({why})",
                hint="Docker cannot either: make it a text file or remove it",
            ) from None
        return cls.parse(text, shown or str(path))

    @classmethod
    def of(cls, patterns: Sequence[str], source: str | None = None) -> IgnoreRules:
        """Rules from a list of patterns (``COPY --exclude``), numbered from 1."""
        return cls(enumerate(patterns, 1), source)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _match(self, rel: str) -> tuple[IgnorePattern | None, MatchInfo]:
        """The pattern that excludes ``rel`` (``None``: kept) and the per-pattern match info
        its children are matched with (``MatchesUsingParentResults``)."""
        hit = self._info.get(rel)
        if hit is not None:
            return hit
        parent = posixpath.dirname(rel)
        parent_info: MatchInfo | None = self._match(parent)[1] if parent else None
        matched = False
        decided: IgnorePattern | None = None
        info: list[bool] = []
        for i, pattern in enumerate(self.patterns):
            match = parent_info[i] if parent_info is not None else False
            if not match:
                if pattern.exclusion != matched:
                    info.append(False)
                    continue
                match = pattern.matches(rel)
            info.append(match)
            if match:
                matched = not pattern.exclusion
                decided = pattern if matched else None
        result = (decided if matched else None, tuple(info))
        self._info[rel] = result
        return result

    def culprit(self, rel: str) -> IgnorePattern | None:
        """The pattern that leaves context path ``rel`` out (``None``: it is kept)."""
        rel = clean(rel)
        if rel in ("", "."):
            return None
        return self._match(rel)[0]

    def excluded(self, rel: str) -> bool:
        """Whether context path ``rel`` is left out."""
        return self.culprit(rel) is not None

    def may_keep_below(self, folder: str) -> bool:
        """Whether some path below excluded ``folder`` could still be kept by a ``!`` pattern."""
        return any(p.exclusion and p.could_match_below(clean(folder)) for p in self.patterns)


def ignore_file(context_dir: Path, dockerfile: Path) -> Path | None:
    """The ignore file Docker reads for this build (``<Dockerfile>.dockerignore`` wins)."""
    specific = dockerfile.parent / f"{dockerfile.name}.dockerignore"
    if specific.exists():  # not only a file: Docker reads whatever is there (and fails)
        return specific
    root_file = context_dir / ".dockerignore"
    return root_file if root_file.exists() else None
