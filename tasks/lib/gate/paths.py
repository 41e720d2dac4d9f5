"""What sits at a path of an image at some point of its build, and how it got there.

Each stage is a list of events, oldest first: ``COPY``/``ADD`` (:class:`Copy`) and the file
operations of ``RUN`` commands (:class:`Op`: ``rm``, ``mv``, ``cp``, ``ln -s``, writes,
``mkdir``, a generated client, or something the gate cannot follow). A lookup walks the events
of a stage backwards from a point, then the stage it is ``FROM``; a ``COPY --from`` or a
``cp``/``mv`` sends it on to another path (in another stage, or earlier in the same one), a
``COPY`` from the build context ends it in :class:`~tasks.lib.gate.context.BuildContext`.
Symlinks are kept as symlinks (as BuildKit copies them) and followed where the image would
follow them: when a file is read, and for the source path of a ``COPY``.

Lookups stay linear in the size of the Dockerfile: events are indexed by the folder they
write under, and the events that touch a path are collected once per path, incrementally.
"""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from tasks.lib.gate.context import BuildContext, has_glob, match_component
from tasks.lib.gate.dockerignore import IgnoreRules
from tasks.lib.gate.stages import StageGraph

Origin = Literal[
    "context",  # a file, folder or symlink of the build context
    "heredoc",  # an inline file of the Dockerfile
    "image",  # a file of an image named by --from (unknown)
    "generated",  # written by a prisma generate
    "made",  # a folder made by mkdir
    "link",  # a symlink (``remaining``: the rest of the path looked up through it)
    "missing",  # a symlink's target that nothing provides
    "removed",  # removed (or moved away) by a RUN
    "written",  # overwritten by a RUN (redirection, tee, sed -i, prisma format...)
    "unfollowable",  # changed by a RUN in a way the gate cannot follow
]
EntryKind = Literal["file", "dir", "link", "unknown"]
_MAX_LINKS = 40
_MAX_DEPTH = 200


def absolute(path: str) -> str:
    """``path`` normalized, with a single leading slash."""
    out = posixpath.normpath("/" + path)
    return "/" + out.lstrip("/")


def join(cwd: str, path: str) -> str:
    """``path`` resolved against ``cwd`` (absolute, normalized)."""
    return absolute(posixpath.join(cwd, path))


def under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it."""
    return folder in (path, "/") or path.startswith(folder.rstrip("/") + "/")


def rest_of(path: str, folder: str) -> str:
    """``path`` relative to ``folder`` (``""`` when equal); ``path`` must be under it."""
    if path == folder:
        return ""
    return path[len(folder.rstrip("/")) + 1 :]


def _ancestors(path: str) -> Iterator[str]:
    while True:
        yield path
        if path == "/":
            return
        path = posixpath.dirname(path)


def glob_covers(pattern: str, path: str) -> str | None:
    """The path ``pattern`` (absolute, shell wildcards per component) names that is ``path``
    or a folder above it, or ``None``."""
    pparts = [p for p in pattern.split("/") if p]
    parts = [p for p in path.split("/") if p]
    if len(pparts) > len(parts):
        return None
    for pat, part in zip(pparts, parts, strict=False):
        if pat != part and not (has_glob(pat) and match_component(part, pat)):
            return None
    return "/" + "/".join(parts[: len(pparts)])


def static_prefix(pattern: str) -> str:
    """The folder of ``pattern`` before its first wildcard component."""
    parts = [p for p in pattern.split("/") if p]
    first = next((i for i, p in enumerate(parts) if has_glob(p)), len(parts))
    return "/" + "/".join(parts[:first])


@dataclass(frozen=True)
class Hop:
    """One step that carried a file: a stage, a Dockerfile line and what it did."""

    stage: str
    line: int
    text: str


@dataclass(frozen=True)
class Copy:
    """A ``COPY``/``ADD`` (or a ``RUN --mount=type=bind``) and the one source it copies."""

    stage: int
    line: int
    keyword: str
    source: Literal["context", "stage", "image", "heredoc"]
    src: str  # context path as matched / absolute path in the stage or image / heredoc name
    followed: str | None  # context: the source with its symlinks followed (None: missing)
    src_kind: EntryKind  # of the followed source; "unknown" for stages and images
    dest: str
    shown_src: str
    shown_dest: str
    into_dir: bool
    from_stage: int | None = None
    image: str | None = None
    from_label: str | None = None
    excludes: IgnoreRules | None = None
    heredoc: str | None = None

    def header(self) -> str:
        """``COPY --from=x SRC -> DEST`` as evidence shows it."""
        ref = f" --from={self.from_label}" if self.from_label is not None else ""
        return f"{self.keyword}{ref} {self.shown_src} -> {self.shown_dest}"

    def anchor(self) -> str:
        """The folder under which this copy writes."""
        return self.dest


OpAction = Literal["remove", "prune", "move", "copy", "link", "write", "opaque", "mkdir", "produce"]


@dataclass(frozen=True)
class Op:
    """A file operation of a RUN command, on absolute image paths."""

    stage: int
    line: int
    text: str  # the command, as shown in messages
    action: OpAction
    paths: tuple[str, ...]  # remove: patterns; move/copy: sources; prune: start folders
    dest: str | None = None  # move/copy: destination; link: the target's text; prune: name
    into_dir: bool | None = None  # move/copy: into the destination folder (None: decide)
    follow: bool = True  # copy: a source symlink is copied as its target

    def anchors(self) -> tuple[str, ...]:
        """Folders under which this operation changes something."""
        if self.action in ("move", "copy") and self.dest is not None:
            found = [self.dest]
            if self.action == "move":
                found += [static_prefix(p) for p in self.paths]
            return tuple(dict.fromkeys(found))
        return tuple(dict.fromkeys(static_prefix(p) for p in self.paths))


Event = Copy | Op


@dataclass(frozen=True)
class Entry:
    """What a lookup found at an image path."""

    origin: Origin
    path: str  # where it sits (for links: where the symlink sits)
    context_path: str | None = None
    kind: EntryKind = "unknown"
    target: str | None = None  # link: the symlink's text
    remaining: str = ""  # link: what was looked up below the symlink
    content: str | None = None  # heredoc
    image: str | None = None
    op: Op | None = None  # removed/written/unfollowable/generated/made: the RUN operation
    hops: tuple[Hop, ...] = ()  # oldest first
    stages: tuple[int, ...] = ()  # stages whose filesystem carried it, oldest first
    links: tuple[str, ...] = ()  # symlinks followed on the way ("/a/b -> ../c")

    @property
    def present(self) -> bool:
        """Something is there (a file, folder or symlink)."""
        return self.origin in ("context", "heredoc", "image", "generated", "made", "link")


@dataclass(frozen=True)
class _Redirect:
    stage: int
    upto: int | None
    path: str
    hop: Hop | None
    src_prefix: str
    dest_prefix: str
    follow: bool  # a symlink at exactly this source path is followed (COPY's source)


@dataclass
class _Touching:
    scanned: int = 0
    positions: list[int] = field(default_factory=list)


class PathMap:
    """Events per stage and lookups of what sits at an image path (see the module docstring)."""

    def __init__(self, graph: StageGraph, context: BuildContext) -> None:
        self.graph = graph
        self.context = context
        self.events: list[list[Event]] = [[] for _ in graph.df.stages]
        self._index: list[dict[str, list[int]]] = [{} for _ in graph.df.stages]
        self._touching: dict[tuple[int, str], _Touching] = {}
        self._memo: dict[tuple[int, str, int], Entry | None] = {}
        self._forward_memo: dict[tuple[int, object], frozenset[str]] = {}

    # building

    def add(self, event: Event) -> int:
        """Append ``event`` to its stage; returns its position."""
        events = self.events[event.stage]
        position = len(events)
        events.append(event)
        anchors = (event.anchor(),) if isinstance(event, Copy) else event.anchors()
        index = self._index[event.stage]
        for anchor in anchors:
            index.setdefault(anchor, []).append(position)
        return position

    def end(self, stage: int) -> int:
        """The position after the last event of ``stage`` so far."""
        return len(self.events[stage])

    def label(self, stage: int) -> str:
        """The name (or index) of a stage."""
        return self.graph.label(stage)

    # the events that touch a path

    def _positions(self, stage: int, path: str, upto: int) -> list[int]:
        """Positions below ``upto`` of the events of ``stage`` that may change ``path``."""
        key = (stage, path)
        touching = self._touching.get(key)
        if touching is None:
            touching = self._touching[key] = _Touching()
        if upto > touching.scanned:
            index = self._index[stage]
            found: set[int] = set()
            for folder in _ancestors(path):
                positions = index.get(folder)
                if positions:
                    lo = bisect.bisect_left(positions, touching.scanned)
                    hi = bisect.bisect_left(positions, upto)
                    found.update(positions[lo:hi])
            events = self.events[stage]
            for position in sorted(found):
                if self._touches(events[position], path):
                    touching.positions.append(position)
            touching.scanned = upto
        hi = bisect.bisect_left(touching.positions, upto)
        return touching.positions[:hi]

    def _touches(self, event: Event, path: str) -> bool:
        if isinstance(event, Copy):
            return under(path, event.dest)
        if event.action in ("move", "copy"):
            return True  # decided by _effect (into a folder or not)
        if event.action == "prune":
            return any(under(path, p) and path != p for p in event.paths)
        if event.action in ("remove", "opaque", "produce", "link"):
            return any(glob_covers(p, path) is not None for p in event.paths)
        return path in event.paths  # write, mkdir

    # lookups

    def lookup(
        self,
        stage: int,
        path: str,
        upto: int | None = None,
        mounts: Sequence[Copy] = (),
        run_start: int | None = None,
    ) -> Entry | None:
        """What sits at ``path`` in ``stage`` before event ``upto`` (the end when ``None``),
        symlinks in the folders above followed, a symlink at ``path`` itself returned as is.
        ``mounts``: bind mounts of the RUN that starts at ``run_start`` (they hide what the
        image holds below their targets, and are hidden by what that RUN itself writes)."""
        return self._resolve(stage, path, upto, mounts, run_start, follow_last=False)

    def read(
        self,
        stage: int,
        path: str,
        upto: int | None = None,
        mounts: Sequence[Copy] = (),
        run_start: int | None = None,
    ) -> Entry | None:
        """Like :meth:`lookup`, following a symlink at ``path`` too (what reading it reads).
        A symlink whose target nothing provides gives a ``missing`` entry."""
        return self._resolve(stage, path, upto, mounts, run_start, follow_last=True)

    def _resolve(
        self,
        stage: int,
        path: str,
        upto: int | None,
        mounts: Sequence[Copy],
        run_start: int | None,
        *,
        follow_last: bool,
    ) -> Entry | None:
        links: list[str] = []
        hops: list[Hop] = []
        current = path
        for _ in range(_MAX_LINKS):
            entry = self._lookup(stage, current, upto, mounts, run_start, 0)
            if entry is None:
                if links:
                    return Entry("missing", current, links=tuple(links), hops=tuple(hops))
                return None
            if entry.origin != "link" or (not entry.remaining and not follow_last):
                if not links and not hops:
                    return entry
                return replace(entry, links=(*links, *entry.links), hops=(*hops, *entry.hops))
            target = entry.target or ""
            links.append(f"{entry.path} -> {target}")
            hops.extend(entry.hops)
            resolved = join(posixpath.dirname(entry.path), target)
            current = join(resolved, entry.remaining) if entry.remaining else resolved
        return Entry("missing", current, links=tuple(links), hops=tuple(hops))

    def _lookup(
        self,
        stage: int,
        path: str,
        upto: int | None,
        mounts: Sequence[Copy],
        run_start: int | None,
        depth: int,
    ) -> Entry | None:
        if depth > _MAX_DEPTH:
            return None
        end = self.end(stage) if upto is None else upto
        if not mounts:
            positions = self._positions(stage, path, end)
            # what changed the path last decides: the answer is the same for every later point
            memo_key = (stage, path, positions[-1] + 1 if positions else 0)
            if memo_key in self._memo:
                return self._memo[memo_key]
            found = self._lookup_in(stage, path, memo_key[2], depth)
            self._memo[memo_key] = found
            return found
        start = end if run_start is None else run_start
        for position in reversed(self._positions(stage, path, end)):
            if position < start:
                break
            hit = self._apply(self.events[stage][position], position, path, depth)
            if hit is not None:
                return _through(hit, stage)
        mount = _deepest(mounts, path)
        if mount is not None:
            hit = self._apply(mount, start, path, depth)
            return _through(hit, stage) if hit is not None else None
        return self._lookup(stage, path, start, (), None, depth + 1)

    def _lookup_in(self, stage: int, path: str, end: int, depth: int) -> Entry | None:
        """The lookup proper, reusing what an earlier lookup of the same path found: the
        answer before event ``p`` is memoized for every touching event passed on the way, so
        a later lookup stops where the previous one started (linear over a Dockerfile)."""
        made: Entry | None = None
        events = self.events[stage]
        passed: list[tuple[int, str, int]] = []
        found: Entry | None = None
        for position in reversed(self._positions(stage, path, end)):
            key = (stage, path, position + 1)
            if made is None and key in self._memo and passed:
                found = self._memo[key]
                break
            passed.append(key)
            hit = self._apply(events[position], position, path, depth)
            if hit is None:
                continue
            if hit.origin == "made":
                made = made or hit
                continue  # mkdir -p keeps what is already there
            found = _through(hit, stage)
            break
        else:
            parent = self.graph.parents[stage]
            if parent is not None:
                inherited = self._lookup(parent.index, path, None, (), None, depth + 1)
                found = _through(inherited, stage) if inherited is not None else None
        if found is None and made is not None:
            return _through(made, stage)
        if made is None:
            for key in passed[1:]:
                self._memo[key] = found
        return found

    def _apply(self, event: Event, position: int, path: str, depth: int) -> Entry | None:
        if isinstance(event, Copy):
            return self._apply_copy(event, path, depth)
        return self._apply_op(event, position, path, depth)

    def _follow(self, redirect: _Redirect, depth: int) -> Entry | None:
        """Where a redirect leads, with a symlink there translated back to the caller."""
        if redirect.follow:
            inner = self._resolve(
                redirect.stage, redirect.path, redirect.upto, (), None, follow_last=True
            )
            if inner is not None and inner.origin == "missing":
                inner = None
        else:
            inner = self._lookup(redirect.stage, redirect.path, redirect.upto, (), None, depth + 1)
            if inner is not None and inner.origin == "link":
                moved = inner.path
                if under(moved, redirect.src_prefix):
                    rest = rest_of(moved, redirect.src_prefix)
                    moved = join(redirect.dest_prefix, rest) if rest else redirect.dest_prefix
                inner = replace(inner, path=moved)
        if inner is None:
            return None
        if redirect.hop is not None:
            inner = replace(inner, hops=(*inner.hops, redirect.hop))
        return inner

    # COPY / ADD / bind mounts

    def _apply_copy(self, copy: Copy, path: str, depth: int) -> Entry | None:
        if copy.source == "heredoc":
            target = posixpath.join(copy.dest, copy.src) if copy.into_dir else copy.dest
            if path != target:
                return None
            hop = Hop(
                self.label(copy.stage), copy.line, f"{copy.header()} (<<{copy.src} -> {path})"
            )
            return Entry("heredoc", path, kind="file", content=copy.heredoc, hops=(hop,))
        kinds: tuple[EntryKind, ...] = (
            (copy.src_kind,) if copy.src_kind != "unknown" else ("file", "dir")
        )
        for kind in kinds:
            if kind == "dir":
                if not under(path, copy.dest):
                    continue
                rest, top = rest_of(path, copy.dest), copy.dest
            else:
                top = (
                    posixpath.join(copy.dest, posixpath.basename(copy.src))
                    if copy.into_dir
                    else copy.dest
                )
                if path != top:
                    continue
                rest = ""
            if copy.excludes and rest and copy.excludes.excluded(rest):
                continue
            if copy.source == "context":
                found = self._from_context(copy, rest, top, path)
            elif copy.source == "image":
                src = posixpath.join(copy.src, rest) if rest else copy.src
                hop = Hop(self.label(copy.stage), copy.line, f"{copy.header()} ({src} -> {path})")
                found = Entry("image", path, image=copy.image, hops=(hop,))
            else:
                src = posixpath.join(copy.src, rest) if rest else copy.src
                hop = Hop(self.label(copy.stage), copy.line, f"{copy.header()} ({src} -> {path})")
                assert copy.from_stage is not None
                base = copy.src
                if rest:
                    base = self._real_path(copy.from_stage, copy.src)
                    src = posixpath.join(base, rest)
                redirect = _Redirect(copy.from_stage, None, src, hop, base, top, not rest)
                found = self._follow(redirect, depth)
            if found is not None:
                return found
        return None

    def _real_path(self, stage: int, path: str, upto: int | None = None) -> str:
        """``path`` with the symlinks on it followed, in ``stage`` before ``upto``."""
        found = self._resolve(stage, path, upto, (), None, follow_last=True)
        return found.path if found is not None else path

    def _from_context(self, copy: Copy, rest: str, top: str, path: str) -> Entry | None:
        base = copy.followed
        if base is None:
            return None
        src_shown = posixpath.join(copy.src, rest) if rest else copy.src
        hop = Hop(self.label(copy.stage), copy.line, f"{copy.header()} ({src_shown} -> {path})")
        links: tuple[str, ...] = ()
        if base != copy.src:
            links = (f"{copy.src} -> {base} (followed by {copy.keyword})",)
        if not rest:
            top_kind = self.context.kind(base)
            name = posixpath.basename(copy.src)
            if top_kind is None or (
                top_kind != "dir" and copy.excludes and copy.excludes.excluded(name)
            ):
                return None
            return Entry(
                "context", path, context_path=base, kind=top_kind, hops=(hop,), links=links
            )
        current = base
        comps = rest.split("/")
        kind: EntryKind = "dir"
        for i, comp in enumerate(comps):
            current = f"{current}/{comp}" if current else comp
            found = self.context.kind(current)
            if found is None:
                return None
            kind = found
            if kind == "link":
                where = posixpath.join(top, "/".join(comps[: i + 1]))
                return Entry(
                    "link",
                    where,
                    context_path=current,
                    kind="link",
                    target=self.context.link_target(current),
                    remaining="/".join(comps[i + 1 :]),
                    hops=(hop,),
                    links=links,
                )
        return Entry("context", path, context_path=current, kind=kind, hops=(hop,), links=links)

    # RUN operations

    def _apply_op(self, op: Op, position: int, path: str, depth: int) -> Entry | None:
        hop = Hop(self.label(op.stage), op.line, f"RUN {op.text}")
        if op.action in ("move", "copy"):
            redirect = self._transfer(op, position, path, hop)
            if redirect is not None:
                return self._follow(redirect, depth)
            if op.action == "move" and any(glob_covers(p, path) for p in op.paths):
                return Entry("removed", path, op=op)
            return None
        if op.action == "prune":
            for start in op.paths:
                if under(path, start) and path != start:
                    parts = rest_of(path, start).split("/")
                    if op.dest is None or any(match_component(p, op.dest) for p in parts):
                        return Entry("removed", path, op=op)
            return None
        covered = any(glob_covers(p, path) is not None for p in op.paths)
        if op.action == "remove":
            return Entry("removed", path, op=op) if covered else None
        if op.action == "opaque":
            return Entry("unfollowable", path, op=op) if covered else None
        if op.action == "produce":
            return Entry("generated", path, kind="dir", op=op, hops=(hop,)) if covered else None
        if op.action == "link":
            link = op.paths[0]
            if not under(path, link):
                return None
            return Entry(
                "link", link, kind="link", target=op.dest, remaining=rest_of(path, link), op=op
            )
        if path not in op.paths:
            return None
        if op.action == "mkdir":
            return Entry("made", path, kind="dir", op=op)
        return Entry("written", path, op=op)

    def _transfer(self, op: Op, position: int, path: str, hop: Hop) -> _Redirect | None:
        """Where ``mv``/``cp`` ``op`` took what is now at ``path`` from (``None``: not it)."""
        dest = op.dest or "/"
        into = op.into_dir
        if into is None:
            before = self.lookup(op.stage, dest, position)
            into = before is not None and before.kind == "dir" and before.present
        for source in op.paths:
            if into:
                if not under(path, dest) or path == dest:
                    continue
                rest = rest_of(path, dest)
                first, _, below = rest.partition("/")
                name = posixpath.basename(source)
                if first != name and not (has_glob(name) and match_component(first, name)):
                    continue
                src_top = posixpath.join(posixpath.dirname(source), first)
                top = posixpath.join(dest, first)
            else:
                if has_glob(source) or not under(path, dest):
                    continue
                below, src_top, top = rest_of(path, dest), source, dest
            src = posixpath.join(src_top, below) if below else src_top
            text = f"{hop.text} ({src} -> {path})"
            return _Redirect(
                op.stage,
                position,
                src,
                Hop(hop.stage, hop.line, text),
                src_top,
                top,
                not below and op.follow,
            )
        return None

    # forward: where something ends up

    def locations(self, stage: int, key: tuple[str, object]) -> list[str]:
        """Image paths in ``stage`` (at its end) that may hold ``key``: ``("context", rel)``
        for a context path, ``("op", op)`` for what a RUN operation produced. Candidates only:
        check each with :meth:`lookup`/:meth:`read`."""
        return sorted(self._forward(stage, key, 0))

    def _forward(self, stage: int, key: tuple[str, object], depth: int) -> frozenset[str]:
        memo_key = (stage, key)
        if memo_key in self._forward_memo:
            return self._forward_memo[memo_key]
        if depth > _MAX_DEPTH:
            return frozenset()
        found: set[str] = set()
        parent = self.graph.parents[stage]
        if parent is not None:
            found.update(self._forward(parent.index, key, depth + 1))
        for position, event in enumerate(self.events[stage]):
            if isinstance(event, Copy):
                sources: Sequence[str] = ()
                base: str | None = None
                if event.source == "context" and key[0] == "context":
                    base, sources = event.followed, (str(key[1]),)
                elif event.source == "stage" and event.from_stage is not None:
                    base = event.src
                    sources = tuple(self._forward(event.from_stage, key, depth + 1))
                if base is None:
                    continue
                for source in sources:
                    if source == base:
                        if event.src_kind != "file":
                            found.add(event.dest)
                        if event.src_kind != "dir":
                            name = posixpath.basename(event.src)
                            into = event.into_dir
                            found.add(posixpath.join(event.dest, name) if into else event.dest)
                    elif base in ("", "/"):
                        found.add(join(event.dest, source.lstrip("/")))
                    elif source.startswith(base.rstrip("/") + "/"):
                        found.add(join(event.dest, source[len(base.rstrip("/")) + 1 :]))
            elif event.action in ("move", "copy"):
                for candidate in list(found):
                    found.update(self._forward_op(event, position, candidate))
            elif event.action == "produce" and key == ("op", event):
                found.update(event.paths)
        result = frozenset(found)
        self._forward_memo[memo_key] = result
        return result

    def _forward_op(self, op: Op, position: int, path: str) -> list[str]:
        dest = op.dest or "/"
        into = op.into_dir
        if into is None:
            before = self.lookup(op.stage, dest, position)
            into = before is not None and before.kind == "dir" and before.present
        out: list[str] = []
        for source in op.paths:
            covered = glob_covers(source, path)
            if covered is None:
                continue
            below = rest_of(path, covered)
            top = posixpath.join(dest, posixpath.basename(covered)) if into else dest
            out.append(join(top, below) if below else top)
        return out


def _through(entry: Entry, stage: int) -> Entry:
    if entry.stages and entry.stages[-1] == stage:
        return entry
    return replace(entry, stages=(*entry.stages, stage))


def _deepest(mounts: Sequence[Copy], path: str) -> Copy | None:
    best: Copy | None = None
    for mount in mounts:  # the deepest target wins; among equal ones, the last
        if under(path, mount.dest) and (best is None or len(mount.dest) >= len(best.dest)):
            best = mount
    return best
