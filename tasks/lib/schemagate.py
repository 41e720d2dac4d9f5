"""The schema gate: proves from the Dockerfile alone that an image is built from the shared schema.

It maps COPY/ADD sources from the build context to their paths in each stage (WORKDIR, ENV/ARG,
wildcards, directories, ``--from`` between stages, the ``.dockerignore``) and the bind mounts of
each RUN (``RUN --mount=type=bind``, seen by that RUN only), keeps only the stages
the final image depends on, and then checks the service's policy: ``generate`` (some RUN runs
``prisma generate`` on a file that came from the schema), ``copy`` (the schema is copied in) or
``none`` (report only).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tasks.lib.errors import ConfigError, DockerfileError
from tasks.lib.gate.dockerfile import Dockerfile, Heredoc, Instruction, Stage, mount_options, parse
from tasks.lib.gate.expand import expand
from tasks.lib.gate.stages import Scope, base_stages, required_stages, stage_refs, walk

Policy = Literal["generate", "copy", "none"]
Verdict = Literal["pass", "fail", "skip"]
POLICIES: tuple[Policy, ...] = ("generate", "copy", "none")

_GLOB_CHARS = re.compile(r"[*?\[]")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_RUNNERS = frozenset({"npm", "pnpm", "yarn", "bun"})
_MAX_DEPTH = 64  # stage hops followed by a lookup
_MAX_SCRIPT_DEPTH = 8  # nested shells and package scripts


@dataclass(frozen=True)
class GateInput:
    """What the gate checks: one service (and variant) built from one Dockerfile."""

    service: str
    variant: str | None
    policy: Policy
    root: Path
    dockerfile: str
    context: str = "."
    build_args: Mapping[str, str] = field(default_factory=dict)
    schema: str = "packages/shared/prisma/schema.prisma"
    target: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One step of the proof: a stage, a Dockerfile line and what it does with the schema."""

    stage: str
    line: int
    text: str


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict for one service/variant."""

    service: str
    variant: str | None
    policy: Policy
    verdict: Verdict
    evidence: tuple[Evidence, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    schema: str
    schema_sha256: str | None

    @property
    def ok(self) -> bool:
        """False only when the verdict is ``fail``."""
        return self.verdict != "fail"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "service": self.service,
            "variant": self.variant,
            "policy": self.policy,
            "verdict": self.verdict,
            "ok": self.ok,
            "evidence": [{"stage": e.stage, "line": e.line, "text": e.text} for e in self.evidence],
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "schema": self.schema,
            "schema_sha256": self.schema_sha256,
        }


def schema_sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _strip_prisma_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def schema_problems(path: Path, shown: str) -> list[str]:
    """What is wrong with the schema file itself (missing, no datasource, no generator)."""
    if not path.is_file():
        return [f"{shown}: schema file not found; restore it or fix the service's schema path"]
    try:
        text = _strip_prisma_comments(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{shown}: cannot read the schema ({exc})"]
    out: list[str] = []
    if not re.search(r"(?m)^\s*datasource\s+\w+\s*\{", text):
        out.append(f"{shown}: no datasource block; add datasource db {{ provider = ... }}")
    if not re.search(r"(?m)^\s*generator\s+\w+\s*\{", text):
        out.append(f"{shown}: no generator block; add generator client {{ provider = ... }}")
    return out


# --------------------------------------------------------------------------------------------
# .dockerignore


class IgnoreRules:
    """A ``.dockerignore`` with Docker's rules.

    Patterns are the docker SDK's (``docker.utils.build.PatternMatcher``: ``**``, ``!``
    re-includes, cleaned paths); like BuildKit, a pattern also excludes everything under a
    directory it matches at any depth (the SDK only tries one parent prefix), and the last
    matching pattern decides.
    """

    def __init__(self, lines: Sequence[tuple[int, str]] = (), source: str | None = None) -> None:
        from docker.utils.build import PatternMatcher

        self.source = source
        self._patterns: list[tuple[int, str, Any]] = []
        for number, raw in lines:
            compiled: Any = PatternMatcher([raw]).patterns
            if len(compiled) > 1:  # the SDK drops empty patterns and appends "!.dockerignore"
                self._patterns.append((number, raw, compiled[0]))
        self._cache: dict[str, tuple[int, str] | None] = {}

    @classmethod
    def read(cls, path: Path | None, shown: str | None = None) -> IgnoreRules:
        """Rules from ``path`` (none when ``path`` is ``None``)."""
        if path is None:
            return cls()
        lines: list[tuple[int, str]] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if text and not text.startswith("#"):
                lines.append((number, text))
        return cls(lines, shown if shown is not None else str(path))

    def excluded(self, rel: str) -> bool:
        """Whether context path ``rel`` is left out of the build context."""
        return self.culprit(rel) is not None

    def culprit(self, rel: str) -> tuple[int, str] | None:
        """Line number and text of the pattern that excludes ``rel`` (``None``: included)."""
        if rel in ("", "."):
            return None
        if rel in self._cache:
            return self._cache[rel]
        parts = [p for p in rel.split("/") if p and p != "."]
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        found: tuple[int, str] | None = None
        for number, raw, pattern in self._patterns:
            if any(pattern.match(prefix) for prefix in prefixes):
                found = None if pattern.exclusion else (number, raw)
        self._cache[rel] = found
        return found


# --------------------------------------------------------------------------------------------
# The file mapping


@dataclass(frozen=True)
class _Copy:
    stage: str
    line: int
    keyword: str
    from_stage: int | None  # None: the build context (or a heredoc, or an image)
    external: str | None  # an image named by --from
    src: str  # context-relative path, or an absolute path in the source stage
    shown_src: str
    dest: str  # absolute path in the image
    shown_dest: str
    into_dir: bool  # the destination is a directory (trailing slash or several sources)
    kind: Literal["file", "dir", "unknown"]
    heredoc: str | None = None
    excludes: tuple[str, ...] = ()

    from_label: str | None = None  # the --from value (stage label or image)

    def header(self) -> str:
        ref = f" --from={self.from_label}" if self.from_label is not None else ""
        return f"{self.keyword}{ref} {self.shown_src} -> {self.shown_dest}"


@dataclass(frozen=True)
class _Run:
    stage: str
    line: int
    instruction: Instruction
    scope: Scope
    mounts: tuple[_Copy, ...] = ()  # bind mounts: visible to this RUN only


@dataclass(frozen=True)
class _Found:
    context_path: str | None
    content: str | None
    chain: tuple[tuple[_Copy, str, str], ...]  # (copy, source path, image path)


class _Model:
    """Per-stage COPY/RUN events and lookups of what file sits at an image path."""

    def __init__(
        self,
        df: Dockerfile,
        build_args: Mapping[str, str],
        context_dir: Path,
        ignore: IgnoreRules,
    ) -> None:
        self.df = df
        self.context_dir = context_dir
        self.ignore = ignore
        self.parents = base_stages(df, build_args)
        self.events: list[list[_Copy | _Run]] = [[] for _ in df.stages]
        self.warnings: list[tuple[int, str]] = []  # (stage index, message)
        self._memo: dict[tuple[int, str, int | None], _Found | None] = {}
        for stage, ins, scope in walk(df, build_args):
            self._add(stage, ins, scope)

    # building

    def _label(self, index: int) -> str:
        return self.df.stages[index].label

    def _add(self, stage: Stage, ins: Instruction, scope: Scope) -> None:
        if ins.keyword == "RUN":
            mounts = tuple(self._mounts(stage, ins, scope))
            self.events[stage.index].append(_Run(stage.label, ins.line, ins, scope, mounts))
        elif ins.keyword in ("COPY", "ADD"):
            self.events[stage.index].extend(self._copies(stage, ins, scope))

    def _expand(self, word: str, scope: Scope, line: int) -> str:
        try:
            return expand(word, scope.vars(), escape=self.df.escape)
        except ConfigError as exc:
            raise DockerfileError(self.df.path, line, exc.message) from None

    def _copies(self, stage: Stage, ins: Instruction, scope: Scope) -> list[_Copy]:
        if ins.json_form:
            words = list(ins.args)
        else:
            words = [self._expand(w, scope, ins.line) for w in ins.args]
        if len(words) < 2:
            return []
        sources, shown_dest = words[:-1], words[-1]
        heredocs = {h.name: h for h in ins.heredocs}
        dest = posixpath.normpath(posixpath.join(scope.workdir, shown_dest))
        if dest.startswith("//"):
            dest = "/" + dest.lstrip("/")
        has_glob = any(_GLOB_CHARS.search(s) for s in sources)
        into_dir = shown_dest.endswith("/") or len(sources) > 1 or has_glob
        shown_dest_abs = dest + ("/" if shown_dest.endswith("/") and dest != "/" else "")
        from_ref = ins.flag("from")
        from_index: int | None = None
        external: str | None = None
        if from_ref is not None:
            ref = self._expand(from_ref, scope, ins.line)
            target = self.df.stage(ref)
            if target is None:
                external = ref
            else:
                from_index = target.index
        excludes = tuple(self._expand(v, scope, ins.line) for v in ins.flag_values("exclude") if v)
        out: list[_Copy] = []
        template = _Copy(
            stage=stage.label,
            line=ins.line,
            keyword=ins.keyword,
            from_stage=from_index,
            external=external,
            src="",
            shown_src="",
            dest=dest,
            shown_dest=shown_dest_abs,
            into_dir=into_dir,
            kind="unknown",
            excludes=excludes,
            from_label=self._label(from_index) if from_index is not None else external,
        )
        for source in sources:
            marker = re.match(r"^\d*<<-?(.*)$", source)
            if marker and not ins.json_form:
                name = marker.group(1).replace('"', "").replace("'", "")
                if name in heredocs:
                    out.append(
                        replace(
                            template,
                            src=name,
                            shown_src=f"<<{name}",
                            kind="file",
                            heredoc=heredocs[name].body,
                        )
                    )
                    continue
            if re.match(r"^[a-z][a-z0-9+.-]*://", source) or source.startswith("git@"):
                continue  # ADD of a URL or a git repository: nothing from the context
            if from_index is not None or external is not None:
                src = posixpath.normpath("/" + source.lstrip("/"))
                if src.startswith("//"):
                    src = "/" + src.lstrip("/")
                out.append(replace(template, src=src, shown_src=source))
                continue
            for rel in self._context_matches(source, stage, ins):
                path = self.context_dir / rel if rel else self.context_dir
                kind: Literal["file", "dir"] = "dir" if path.is_dir() else "file"
                out.append(replace(template, src=rel, shown_src=source, kind=kind))
        return out

    def _mounts(self, stage: Stage, ins: Instruction, scope: Scope) -> list[_Copy]:
        """The bind mounts of RUN ``ins`` as copies that only this RUN sees.

        ``type=bind`` (the default type) with ``source``/``src`` (default: the context root, or
        the root of ``from``), ``target``/``dst``/``destination`` (relative to the WORKDIR) and
        ``from`` (a stage, or an image: nothing from the context). Other types map nothing.
        """
        out: list[_Copy] = []
        for value in ins.flag_values("mount"):
            if not value:
                continue
            raw = mount_options(value)
            if self._expand(raw.get("type", "bind"), scope, ins.line).lower() != "bind":
                continue  # cache, secret, ssh, tmpfs: nothing from the context or a stage
            wanted = ("target", "dst", "destination", "source", "src", "from")
            opts = {k: self._expand(raw[k], scope, ins.line) for k in wanted if k in raw}
            shown_dest = opts.get("target") or opts.get("dst") or opts.get("destination")
            if not shown_dest:
                continue  # BuildKit refuses a mount without a target
            dest = _absolute(posixpath.join(scope.workdir, shown_dest))
            source = opts.get("source") or opts.get("src")
            ref = opts.get("from")
            keyword = "RUN --mount=type=bind"
            template = _Copy(
                stage=stage.label,
                line=ins.line,
                keyword=keyword,
                from_stage=None,
                external=None,
                src="",
                shown_src=source or ".",
                dest=dest,
                shown_dest=dest,
                into_dir=False,
                kind="unknown",
            )
            if ref:
                found = self.df.stage(ref)
                label = found.label if found is not None else ref
                src = _absolute("/" + (source or "/").lstrip("/"))
                out.append(
                    replace(
                        template,
                        keyword=f"{keyword},from={label}",
                        from_stage=found.index if found is not None else None,
                        external=ref if found is None else None,
                        src=src,
                        shown_src=source or "/",
                    )
                )
                continue
            rel = _context_rel(source or ".")
            path = self.context_dir / rel if rel else self.context_dir
            culprit = self.ignore.culprit(rel)
            why = ""
            if not path.exists():
                why = "is not in the context"
            elif culprit is not None:
                why = f"is excluded by {self.ignore.source}:{culprit[0]} pattern '{culprit[1]}'"
            if why:
                self.warnings.append(
                    (
                        stage.index,
                        f"{self.df.path}:{ins.line}: RUN --mount source {source} {why}; "
                        "the build will fail there",
                    )
                )
            kind: Literal["file", "dir", "unknown"] = (
                "dir" if path.is_dir() else "file" if path.exists() else "unknown"
            )
            out.append(replace(template, src=rel, kind=kind))
        return out

    def _context_matches(self, source: str, stage: Stage, ins: Instruction) -> list[str]:
        rel = _context_rel(source)
        if not _GLOB_CHARS.search(rel):
            path = self.context_dir / rel if rel else self.context_dir
            if not path.exists() or self.ignore.excluded(rel):
                why = (
                    "is excluded by the .dockerignore" if path.exists() else "is not in the context"
                )
                self.warnings.append(
                    (
                        stage.index,
                        f"{self.df.path}:{ins.line}: {ins.keyword} source {source} {why}; "
                        "the build will fail there",
                    )
                )
                return []
            return [rel]
        matches = self._glob(rel)
        if not matches:
            self.warnings.append(
                (
                    stage.index,
                    f"{self.df.path}:{ins.line}: {ins.keyword} source {source} matches nothing "
                    "in the context; the build will fail there",
                )
            )
        return matches

    def _glob(self, pattern: str) -> list[str]:
        found = [""]
        for part in pattern.split("/"):
            nxt: list[str] = []
            for prefix in found:
                folder = self.context_dir / prefix if prefix else self.context_dir
                if not folder.is_dir():
                    continue
                if not _GLOB_CHARS.search(part):
                    cand = f"{prefix}/{part}" if prefix else part
                    if (self.context_dir / cand).exists():
                        nxt.append(cand)
                    continue
                for entry in sorted(os.listdir(folder)):
                    if fnmatch.fnmatchcase(entry, part):
                        nxt.append(f"{prefix}/{entry}" if prefix else entry)
            found = nxt
        return [f for f in found if not self.ignore.excluded(f)]

    # looking things up

    def _context_file(self, rel: str, copy: _Copy) -> bool:
        path = self.context_dir / rel
        if not path.is_file() or self.ignore.excluded(rel):
            return False
        if copy.excludes and copy.kind == "dir":
            inner = rel[len(copy.src) :].lstrip("/") if copy.src else rel
            return not any(
                fnmatch.fnmatchcase(inner, p) or fnmatch.fnmatchcase(posixpath.basename(inner), p)
                for p in copy.excludes
            )
        return True

    @staticmethod
    def _candidates(copy: _Copy, path: str) -> list[str]:
        """Source paths that ``copy`` would put at image path ``path``."""
        out: list[str] = []
        dest = copy.dest
        kinds = ("file", "dir") if copy.kind == "unknown" else (copy.kind,)
        for kind in kinds:
            if kind == "file":
                target = (
                    posixpath.join(dest, posixpath.basename(copy.src)) if copy.into_dir else dest
                )
                if path == target:
                    out.append(copy.src)
            else:
                prefix = dest.rstrip("/") + "/"
                if path.startswith(prefix):
                    rest = path[len(prefix) :]
                    joined = posixpath.join(copy.src, rest) if copy.src else rest
                    out.append(joined)
        return out

    def lookup(
        self, stage: int, path: str, upto: int | None = None, depth: int = 0
    ) -> _Found | None:
        """What sits at image ``path`` in ``stage`` before event ``upto`` (end when ``None``)."""
        key = (stage, path, upto)
        if key not in self._memo:
            self._memo[key] = self._lookup(stage, path, upto, depth)
        return self._memo[key]

    def lookup_in_run(
        self, stage: int, path: str, upto: int, mounts: Sequence[_Copy]
    ) -> _Found | None:
        """What RUN ``upto`` of ``stage`` sees at ``path``: its bind mounts hide the image."""
        best: _Copy | None = None
        for mount in mounts:  # the deepest target wins; among equal ones, the last
            inside = path == mount.dest or path.startswith(mount.dest.rstrip("/") + "/")
            if inside and (best is None or len(mount.dest) >= len(best.dest)):
                best = mount
        if best is None:
            return self.lookup(stage, path, upto)
        return self._through(best, path, 0)

    def _through(self, event: _Copy, path: str, depth: int) -> _Found | None:
        """What ``event`` (a COPY/ADD or a bind mount) puts at ``path``, if anything."""
        for src in self._candidates(event, path):
            if event.heredoc is not None:
                return _Found(None, event.heredoc, ((event, f"<<{event.src}", path),))
            if event.external is not None:
                return _Found(None, None, ((event, src, path),))
            if event.from_stage is not None:
                inner = self.lookup(event.from_stage, src, None, depth + 1)
                if inner is not None:
                    return _Found(
                        inner.context_path, inner.content, (*inner.chain, (event, src, path))
                    )
                continue
            if self._context_file(src, event):
                return _Found(src, None, ((event, src, path),))
        return None

    def _lookup(self, stage: int, path: str, upto: int | None, depth: int) -> _Found | None:
        if depth > _MAX_DEPTH:
            return None
        events = self.events[stage][:upto] if upto is not None else self.events[stage]
        for event in reversed(events):
            if not isinstance(event, _Copy):
                continue
            hit = self._through(event, path, depth)
            if hit is not None:
                return hit
        parent = self.parents[stage]
        if parent is not None:
            return self.lookup(parent.index, path, None, depth + 1)
        return None

    def locations(self, stage: int, context_path: str, depth: int = 0) -> list[str]:
        """Image paths in ``stage`` (at its end) where context file ``context_path`` sits."""
        if depth > _MAX_DEPTH:
            return []
        found: list[str] = []
        parent = self.parents[stage]
        if parent is not None:
            found.extend(self.locations(parent.index, context_path, depth + 1))
        for event in self.events[stage]:
            if not isinstance(event, _Copy) or event.heredoc is not None or event.external:
                continue
            sources: list[str]
            if event.from_stage is not None:
                sources = self.locations(event.from_stage, context_path, depth + 1)
            else:
                sources = [context_path]
            for src in sources:
                found.extend(_forward(event, src))
        result: list[str] = []
        for path in dict.fromkeys(found):
            hit = self.lookup(stage, path, None, depth)
            if hit is not None and hit.context_path == context_path:
                result.append(path)
        return result

    def read_json(self, found: _Found) -> dict[str, Any] | None:
        """The JSON object a lookup found (a context file or a heredoc)."""
        try:
            if found.content is not None:
                data = json.loads(found.content)
            elif found.context_path is not None:
                data = json.loads((self.context_dir / found.context_path).read_text("utf-8"))
            else:
                return None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _absolute(path: str) -> str:
    """``path`` normalized, with a single leading slash."""
    out = posixpath.normpath(path)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def _context_rel(source: str) -> str:
    """A source path as a context-relative path (``""`` for the root; no escaping it)."""
    rel = posixpath.normpath(source.lstrip("/"))
    if rel == ".":
        rel = ""
    while rel.startswith("../"):
        rel = rel[3:]
    if rel == "..":
        rel = ""
    return rel


def _forward(copy: _Copy, src: str) -> list[str]:
    """Where ``copy`` puts source path ``src`` (if it covers it)."""
    out: list[str] = []
    kinds = ("file", "dir") if copy.kind == "unknown" else (copy.kind,)
    for kind in kinds:
        if kind == "file" and src == copy.src:
            out.append(
                posixpath.join(copy.dest, posixpath.basename(src)) if copy.into_dir else copy.dest
            )
        elif kind == "dir":
            if copy.src in ("", "/"):
                rest = src.lstrip("/")
            elif src.startswith(copy.src.rstrip("/") + "/"):
                rest = src[len(copy.src.rstrip("/")) + 1 :]
            else:
                continue
            out.append(posixpath.join(copy.dest, rest))
    return out


# --------------------------------------------------------------------------------------------
# Shell commands


def _tokens(text: str) -> list[str]:
    """Split shell text into raw words (quotes kept) and operators."""
    out: list[str] = []
    i, n = 0, len(text)
    word: list[str] = []

    def flush() -> None:
        if word:
            out.append("".join(word))
            word.clear()

    while i < n:
        c = text[i]
        if c in " \t\r":
            flush()
            i += 1
        elif c == "\n":
            flush()
            out.append(";")
            i += 1
        elif c == "#" and not word:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "\\" and i + 1 < n:
            if text[i + 1] == "\n":
                i += 2
                continue
            word.append(text[i : i + 2])
            i += 2
        elif c in "'\"":
            end = i + 1
            while end < n and text[end] != c:
                end += 2 if c == '"' and text[end] == "\\" else 1
            word.append(text[i : end + 1])
            i = end + 1
        elif c in ";&|()":
            flush()
            op = text[i : i + 2] if text[i : i + 2] in ("&&", "||", ";;") else c
            out.append(op)
            i += len(op)
        elif c in "<>":
            flush()
            j = i
            while j < n and text[j] in "<>&-":
                j += 1
            out.append("<redirect>")
            i = j
        else:
            word.append(c)
            i += 1
    flush()
    return out


def _simple_commands(text: str, env: Mapping[str, str]) -> list[list[str]]:
    """Simple commands of shell ``text`` with words expanded (best effort)."""
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in _tokens(text):
        if token in (";", "&&", "||", "|", "&", "(", ")", ";;"):
            if commands[-1]:
                commands.append([])
            continue
        if token == "<redirect>":
            skip_next = True
            continue
        if skip_next:
            skip_next = False
            continue
        try:
            word = expand(token, env)
        except ConfigError:
            word = token
        commands[-1].append(word)
    return [c for c in commands if c]


@dataclass(frozen=True)
class _Generate:
    """A ``prisma generate`` found in a RUN: where it runs and which schema it is told to read."""

    shown: str
    cwd: str
    schema_arg: str | None
    via: str | None  # "package.json script 'generate'" when run through a script


def _after_flags(words: list[str]) -> list[str]:
    i = 0
    while i < len(words) and words[i].startswith("-"):
        i += 1
    return words[i:]


def _schema_option(args: Sequence[str]) -> str | None:
    value: str | None = None
    for i, word in enumerate(args):
        if word.startswith("--schema="):
            value = word.split("=", 1)[1]
        elif word == "--schema" and i + 1 < len(args):
            value = args[i + 1]
    return value


class _Analyzer:
    """Finds ``prisma generate`` in RUN instructions, following ``cd`` and package scripts."""

    def __init__(self, model: _Model, stage: int, upto: int, mounts: Sequence[_Copy] = ()) -> None:
        self.model = model
        self.stage = stage
        self.upto = upto
        self.mounts = mounts

    def script(self, cwd: str, name: str) -> tuple[str, str] | None:
        found = self.model.lookup_in_run(
            self.stage, posixpath.join(cwd, "package.json"), self.upto, self.mounts
        )
        data = self.model.read_json(found) if found is not None else None
        scripts = data.get("scripts") if data else None
        if isinstance(scripts, dict) and isinstance(scripts.get(name), str):
            origin = found.context_path if found and found.context_path else "package.json"
            return str(scripts[name]), origin
        return None

    def shell(
        self, text: str, cwd: str, env: Mapping[str, str], depth: int = 0, via: str | None = None
    ) -> list[_Generate]:
        out: list[_Generate] = []
        for words in _simple_commands(text, env):
            if words[0] == "cd":
                target = next((w for w in words[1:] if w != "--"), None)
                if target is not None and target != "-":
                    cwd = posixpath.normpath(posixpath.join(cwd, target))
                continue
            out.extend(self.command(words, cwd, env, depth, via))
        return out

    def command(
        self,
        words: list[str],
        cwd: str,
        env: Mapping[str, str],
        depth: int,
        via: str | None,
    ) -> list[_Generate]:
        if depth > _MAX_SCRIPT_DEPTH:
            return []
        shown: list[str] = []
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        while words:
            head = posixpath.basename(words[0])
            if head == "env":
                words = words[1:]
                while words and (words[0].startswith("-") or "=" in words[0]):
                    words = words[1:]
                continue
            if head in _SHELLS:
                for i, word in enumerate(words[1:], 1):
                    if word.startswith("-") and "c" in word and i + 1 < len(words):
                        return self.shell(words[i + 1], cwd, env, depth + 1, via)
                return []
            if head in ("npx", "bunx", "pnpx"):
                shown.append(head)
                words = _after_flags(words[1:])
                continue
            if head in _RUNNERS and len(words) > 1:
                rest = words[1:]
                while rest and rest[0].startswith("-"):
                    opt = rest[0]
                    name, eq, value = opt.partition("=")
                    if name in ("--cwd", "--prefix", "--dir", "-C"):
                        if not eq and len(rest) > 1:
                            value, rest = rest[1], rest[1:]
                        cwd = posixpath.normpath(posixpath.join(cwd, value))
                    rest = rest[1:]
                if not rest:
                    return []
                sub = rest[0]
                if sub in ("exec", "x", "dlx"):
                    shown += [head, sub]
                    words = _after_flags([w for w in rest[1:] if w != "--"])
                    continue
                if sub in ("run", "run-script"):
                    if len(rest) < 2:
                        return []
                    name, extra = rest[1], rest[2:]
                elif head == "npm":
                    return []
                else:
                    name, extra = sub, rest[1:]
                found = self.script(cwd, name)
                if found is not None:
                    body, origin = found
                    label = f"{head} {'run ' if sub in ('run', 'run-script') else ''}{name}"
                    return self.shell(
                        body, cwd, env, depth + 1, via or f"{label}: script in {origin}"
                    )
                if posixpath.basename(name).split("@")[0] == "prisma":
                    shown.append(head)
                    words = [name, *extra]
                    continue
                return []
            break
        if not words:
            return []
        tool = posixpath.basename(words[0])
        if tool.split("@")[0] != "prisma":
            return []
        args = words[1:]
        positional = [w for w in args if not w.startswith("-")]
        if not positional or positional[0] != "generate":
            return []
        return [_Generate(" ".join([*shown, "prisma", "generate"]), cwd, _schema_option(args), via)]


# --------------------------------------------------------------------------------------------
# The gate


@dataclass
class _Collector:
    evidence: list[Evidence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_evidence(self, item: Evidence) -> None:
        if item not in self.evidence:
            self.evidence.append(item)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _ignore_file(
    inp: GateInput, root: Path, df_path: Path, context_dir: Path, out: _Collector
) -> Path | None:
    specific = df_path.parent / f"{df_path.name}.dockerignore"
    root_file = context_dir / ".dockerignore"
    used = specific if specific.is_file() else root_file if root_file.is_file() else None
    service_file = df_path.parent / ".dockerignore"
    if service_file.is_file() and (used is None or service_file.resolve() != used.resolve()):
        read = _rel(used, root) if used is not None else "no .dockerignore"
        out.warnings.append(
            f"{_rel(service_file, root)} is not read by a build with context "
            f"'{inp.context}' (Docker reads {read}); move its patterns there or into "
            f"{_rel(specific, root)}"
        )
    return used


def _copy_evidence(chain: Iterable[tuple[_Copy, str, str]]) -> list[Evidence]:
    return [
        Evidence(copy.stage, copy.line, f"{copy.header()} ({src} -> {path})")
        for copy, src, path in chain
    ]


def check(inp: GateInput) -> GateReport:
    """Run the gate for ``inp``; Dockerfile and schema problems become a ``fail`` verdict."""
    out = _Collector()
    root = inp.root
    schema_file = root / inp.schema
    digest = schema_sha256(schema_file) if schema_file.is_file() else None
    try:
        _check(inp, out)
    except DockerfileError as exc:
        out.problems.append(exc.line())
    except ConfigError as exc:
        out.problems.append(exc.line())
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(f"{inp.dockerfile}: cannot read a file the gate needs ({exc})")
    verdict: Verdict
    problems, warnings = out.problems, out.warnings
    if inp.policy == "none":
        verdict = "skip"
        warnings = [*problems, *warnings]
        problems = []
    else:
        verdict = "fail" if problems else "pass"
    return GateReport(
        service=inp.service,
        variant=inp.variant,
        policy=inp.policy,
        verdict=verdict,
        evidence=tuple(out.evidence),
        problems=tuple(problems),
        warnings=tuple(dict.fromkeys(warnings)),
        schema=inp.schema,
        schema_sha256=digest,
    )


def _check(inp: GateInput, out: _Collector) -> None:
    if inp.policy not in POLICIES:
        raise ConfigError(f"unknown schema policy {inp.policy!r}: use one of {', '.join(POLICIES)}")
    root = inp.root.resolve()
    schema_file = root / inp.schema
    out.problems.extend(schema_problems(schema_file, inp.schema))
    context_dir = (root / inp.context).resolve()
    df_path = root / inp.dockerfile
    try:
        schema_rel = schema_file.resolve().relative_to(context_dir).as_posix()
    except ValueError:
        out.problems.append(
            f"{inp.schema}: outside the build context '{inp.context}'; build from a context "
            "that holds it"
        )
        return
    ignore_path = _ignore_file(inp, root, df_path, context_dir, out)
    ignore = IgnoreRules.read(
        ignore_path, _rel(ignore_path, root) if ignore_path is not None else None
    )
    if ignore.excluded(schema_rel):
        number, pattern = ignore.culprit(schema_rel) or (0, "?")
        out.problems.append(
            f"{ignore.source}:{number}: pattern '{pattern}' excludes {schema_rel} from the build "
            f"context; add '!{schema_rel}' after it or narrow the pattern"
        )
    if not df_path.is_file():
        out.problems.append(
            f"{inp.dockerfile}: Dockerfile not found under {root}; "
            "fix the service's dockerfile path"
        )
        return
    df = parse(df_path.read_text(encoding="utf-8"), inp.dockerfile)
    required = required_stages(df, inp.build_args, inp.target)
    final = required[-1]
    model = _Model(df, inp.build_args, context_dir, ignore)
    wanted = {s.index for s in required}
    for stage_index, message in model.warnings:
        if stage_index in wanted:
            out.warnings.append(message)
    if out.problems:
        return
    if inp.policy == "generate":
        _check_generate(
            inp, df=df, model=model, required=required, final=final, schema_rel=schema_rel, out=out
        )
    else:
        _check_copy(
            inp, df=df, model=model, required=required, final=final, schema_rel=schema_rel, out=out
        )


def _check_copy(
    inp: GateInput,
    *,
    df: Dockerfile,
    model: _Model,
    required: list[Stage],
    final: Stage,
    schema_rel: str,
    out: _Collector,
) -> None:
    direct = False
    for stage in required:
        for path in model.locations(stage.index, schema_rel):
            hit = model.lookup(stage.index, path)
            if hit is None:
                continue
            last = hit.chain[-1][0]
            if last.stage != stage.label:
                continue  # inherited: shown in the stage that copied it
            direct = direct or any(c.from_stage is None for c, _, _ in hit.chain)
            for item in _copy_evidence(hit.chain):
                out.add_evidence(item)
    if direct:
        return
    names = ", ".join(s.label for s in required)
    elsewhere = [
        s
        for s in df.stages
        if s.index not in {r.index for r in required} and model.locations(s.index, schema_rel)
    ]
    if elsewhere:
        stage = elsewhere[0]
        out.problems.append(
            f"{df.path}:{stage.line}: {schema_rel} is copied only into stage '{stage.label}', "
            f"which the final stage '{final.label}' does not depend on; COPY it in one of: {names}"
        )
        return
    folder = posixpath.dirname(schema_rel) or "."
    out.problems.append(
        f"{df.path}:{final.line}: no COPY in the stages the final image depends on ({names}) "
        f"brings {schema_rel}; add COPY {folder} ./{folder}/"
    )


def _check_generate(
    inp: GateInput,
    *,
    df: Dockerfile,
    model: _Model,
    required: list[Stage],
    final: Stage,
    schema_rel: str,
    out: _Collector,
) -> None:
    wanted = {s.index for s in required}
    good: list[list[Evidence]] = []
    bad: list[str] = []
    stray: list[tuple[Stage, int]] = []
    for stage in df.stages:
        for position, event in enumerate(model.events[stage.index]):
            if not isinstance(event, _Run):
                continue
            for gen in _run_generates(model, stage.index, position, event):
                if stage.index not in wanted:
                    stray.append((stage, event.line))
                    continue
                verdict = _judge(
                    model,
                    stage=stage,
                    position=position,
                    run=event,
                    gen=gen,
                    schema_rel=schema_rel,
                    df_path=df.path,
                )
                if isinstance(verdict, str):
                    bad.append(verdict)
                else:
                    good.append(verdict)
    if good:
        for items in good:
            for item in items:
                out.add_evidence(item)
        for item in _dependency_evidence(df, inp.build_args, final, good):
            out.add_evidence(item)
        return
    if bad:
        out.problems.extend(bad)
        return
    names = ", ".join(s.label for s in required)
    if stray:
        stage, line = stray[0]
        out.problems.append(
            f"{df.path}:{line}: prisma generate runs in stage '{stage.label}', but the final "
            f"stage '{final.label}' does not depend on it; build the final stage FROM "
            f"{stage.label} or COPY --from={stage.label} the generated client"
        )
        return
    where = ""
    for stage in required:
        spots = model.locations(stage.index, schema_rel)
        if spots:
            where = f" (the schema is at {spots[0]} in stage '{stage.label}')"
            break
    out.problems.append(
        f"{df.path}:{final.line}: no RUN in the stages the final image depends on ({names}) runs "
        f"prisma generate{where}; add RUN npx prisma generate --schema=<that path>"
    )


def _dependency_evidence(
    df: Dockerfile, build_args: Mapping[str, str], final: Stage, good: list[list[Evidence]]
) -> list[Evidence]:
    """How the final stage depends on the stage of the first good generate."""
    goal = good[0][-1].stage
    if goal == final.label:
        return []
    refs = stage_refs(df, build_args)
    previous: dict[int, tuple[int, int]] = {}
    todo = [final.index]
    while todo:
        idx = todo.pop(0)
        for dep, line in refs[idx]:
            if dep.index not in previous and dep.index != final.index:
                previous[dep.index] = (idx, line)
                todo.append(dep.index)
    target = next((s for s in df.stages if s.label == goal), None)
    items: list[Evidence] = []
    idx = target.index if target is not None else final.index
    while idx in previous:
        user, line = previous[idx]
        how = "FROM" if df.stages[user].line == line else "COPY --from/RUN --mount"
        items.append(
            Evidence(
                df.stages[user].label,
                line,
                f"stage {df.stages[user].label} depends on {df.stages[idx].label} ({how})",
            )
        )
        idx = user
    return items[::-1]


def _run_generates(model: _Model, stage: int, position: int, run: _Run) -> list[_Generate]:
    analyzer = _Analyzer(model, stage, position, run.mounts)
    ins = run.instruction
    cwd = run.scope.workdir
    env = run.scope.vars()
    if ins.json_form:
        return analyzer.command(list(ins.args), cwd, env, 0, None)
    found: list[_Generate] = []
    text = ins.args[0] if ins.args else ""
    found.extend(analyzer.shell(text, cwd, env))
    for heredoc in _script_heredocs(text, ins.heredocs):
        found.extend(analyzer.shell(heredoc.body, cwd, env))
    return found


def _marker(name: str) -> str:
    return r"\d*<<-?[\"']?" + re.escape(name) + r"[\"']?"


def _script_heredocs(text: str, heredocs: Sequence[Heredoc]) -> list[Heredoc]:
    """Heredocs run as shell scripts: ``RUN <<EOF`` alone, or fed to ``sh``/``bash``."""
    rest = text
    for heredoc in heredocs:
        rest = re.sub(_marker(heredoc.name), "", rest)
    if not rest.strip():
        return list(heredocs)
    scripts: list[Heredoc] = []
    for heredoc in heredocs:
        for segment in re.split(r"&&|\|\||;|\||\n", text):
            if re.search(_marker(heredoc.name), segment):
                words = re.sub(_marker(heredoc.name), "", segment).split()
                if words and posixpath.basename(words[0]) in _SHELLS:
                    scripts.append(heredoc)
    return scripts


def _judge(
    model: _Model,
    *,
    stage: Stage,
    position: int,
    run: _Run,
    gen: _Generate,
    schema_rel: str,
    df_path: str,
) -> list[Evidence] | str:
    """Evidence when ``gen`` reads the schema, else the problem line."""
    extra: list[Evidence] = []
    if gen.schema_arg is not None:
        target = posixpath.normpath(posixpath.join(gen.cwd, gen.schema_arg))
    else:
        target = ""
        pkg = model.lookup_in_run(
            stage.index, posixpath.join(gen.cwd, "package.json"), position, run.mounts
        )
        data = model.read_json(pkg) if pkg is not None else None
        prisma = data.get("prisma") if data else None
        if isinstance(prisma, dict) and isinstance(prisma.get("schema"), str):
            target = posixpath.normpath(posixpath.join(gen.cwd, str(prisma["schema"])))
        else:
            defaults = [
                posixpath.join(gen.cwd, "prisma", "schema.prisma"),
                posixpath.join(gen.cwd, "schema.prisma"),
            ]
            target = next(
                (
                    p
                    for p in defaults
                    if model.lookup_in_run(stage.index, p, position, run.mounts) is not None
                ),
                defaults[0],
            )
    found = model.lookup_in_run(stage.index, target, position, run.mounts)
    via = f" via {gen.via}" if gen.via else ""
    if found is None:
        folder = posixpath.dirname(schema_rel) or "."
        brings = "COPY or bind mount of this RUN" if run.mounts else "COPY"
        return (
            f"{df_path}:{run.line}: {gen.shown}{via} reads {target} but no {brings} puts "
            f"{schema_rel} there; copy it with COPY {folder} {posixpath.dirname(target)}/"
        )
    if found.context_path != schema_rel:
        image = found.chain[0][0].external if found.chain else None
        origin = found.context_path or (f"the image {image}" if image else "an inline heredoc")
        return (
            f"{df_path}:{run.line}: {gen.shown}{via} reads {target}, which comes from {origin}, "
            f"not {schema_rel}; point --schema at the copy of {schema_rel}"
        )
    extra.extend(_copy_evidence(found.chain))
    extra.append(
        Evidence(
            stage.label,
            run.line,
            f"RUN {gen.shown}{via} reads {target} (from {schema_rel})",
        )
    )
    return extra
