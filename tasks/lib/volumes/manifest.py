"""Read what the helper container lists of a volume, and compare two volumes.

The helper writes every listing so that any file name reads back exactly (see
:mod:`tasks.lib.volumes.script`): names NUL-separated, one name-free ``stat`` line per name in
the same order, symlink targets by their known length, checksums parsed with the known names.
Names stay bytes here (a volume may hold names that are not UTF-8); :func:`show` makes them
printable.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.lib.errors import CommandFailed

ROOT = b"."

_S_IFMT = 0o170000
KINDS = {
    0o140000: "socket",
    0o120000: "symlink",
    0o100000: "file",
    0o060000: "block device",
    0o040000: "dir",
    0o020000: "char device",
    0o010000: "fifo",
}
_DEVICES = ("block device", "char device")


def show(name: bytes) -> str:
    """A name as one printable line: newlines and bytes that are not UTF-8 escaped."""
    text = name.decode("utf-8", "backslashreplace")
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


@dataclass(frozen=True)
class Entry:
    kind: str
    mode: int  # permission bits with setuid/setgid/sticky
    uid: int
    gid: int
    size: int  # a symlink: the length of its target
    nlink: int
    inode: int
    allocated: int  # bytes the file system holds for it
    rdev: tuple[int, int]  # device major, minor
    mtime_ns: int
    link: bytes | None = None  # a symlink's target

    @property
    def sparse_holes(self) -> int:
        """Bytes of the apparent size not allocated (a regular file's holes), else 0."""
        return max(self.size - self.allocated, 0) if self.kind == "file" else 0


@dataclass(frozen=True)
class Manifest:
    """Every entry of a volume by path (``.``, ``./a``, ``./a/b``), and checksums when asked."""

    entries: Mapping[bytes, Entry]
    sums: Mapping[bytes, str] | None = None

    @property
    def files(self) -> int:
        """Entries that are not directories (files, symlinks, fifos, sockets, devices)."""
        return sum(1 for e in self.entries.values() if e.kind != "dir")

    @property
    def dirs(self) -> int:
        """Directories below the root."""
        return sum(1 for k, e in self.entries.items() if e.kind == "dir" and k != ROOT)

    @property
    def bytes(self) -> int:
        """Sum of regular file sizes."""
        return sum(e.size for e in self.entries.values() if e.kind == "file")

    def kinds(self) -> dict[str, int]:
        """How many of each odd kind of entry, for the report: hard links, fifos, sockets,
        devices, setuid/setgid, sparse files, names that are not UTF-8 or hold a newline."""
        counts: dict[str, int] = {}

        def add(what: str) -> None:
            counts[what] = counts.get(what, 0) + 1

        for name, e in self.entries.items():
            if e.kind not in ("file", "dir"):
                add(e.kind)
            if e.kind != "dir" and e.nlink > 1:
                add("hard-linked name")
            if e.mode & 0o6000:
                add("setuid/setgid")
            if is_sparse(e):
                add("sparse file")
            if b"\n" in name:
                add("name with a newline")
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                add("name not UTF-8")
        return counts


def is_sparse(e: Entry, chunk: int = 1 << 20) -> bool:
    """A regular file with at least one chunk of holes (what a rebuild can keep)."""
    return e.kind == "file" and e.size >= 2 * chunk and e.sparse_holes >= chunk


def _bad(what: str, detail: str) -> CommandFailed:
    return CommandFailed(
        f"cannot read the helper's listing of the {what}: {detail}",
        hint="the helper image must have POSIX sh, find, stat -c, readlink, md5sum (busybox "
        "or GNU); rerun, and stop the volume's writers if it changed meanwhile",
    )


@functools.lru_cache(maxsize=1024)
def _midnight(date: str, zone: str) -> int:
    """Seconds since 1970 of ``date``'s midnight in the UTC offset ``zone`` (``+0100``)."""
    y, mo, d = (int(x) for x in date.split("-"))
    sign = -1 if zone.startswith("-") else 1
    return calendar.timegm((y, mo, d, 0, 0, 0, 0, 0, 0)) - sign * (
        int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
    )


def _mtime_ns(text: str) -> int:
    """``2026-11-24 07:19:10.672711019 +0000`` (``stat -c %y``) as nanoseconds since 1970."""
    date, clock, zone = text.split(" ")
    hms, _, frac = clock.partition(".")
    h, mi, s = hms.split(":")
    seconds = _midnight(date, zone) + int(h) * 3600 + int(mi) * 60 + int(s)
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])


def parse(names: bytes, meta: bytes, links: bytes, *, what: str = "volume") -> Manifest:
    """A manifest from the helper's ``names``, ``meta`` and ``links`` outputs."""
    paths = names.split(b"\0")
    if paths and paths[-1] == b"":
        paths.pop()
    lines = meta.decode("ascii", "replace").splitlines()
    if len(lines) != len(paths):
        raise _bad(what, f"{len(paths)} names but {len(lines)} stat lines")
    entries: dict[bytes, Entry] = {}
    pos = 0
    for path, line in zip(paths, lines, strict=True):
        try:
            raw_mode, uid, gid, size, nlink, ino, blocks, bsize, major, minor, when = line.split(
                " ", 10
            )
            mode = int(raw_mode, 16)
            kind = KINDS.get(mode & _S_IFMT, "other")
            entry = Entry(
                kind,
                mode & 0o7777,
                int(uid),
                int(gid),
                int(size),
                int(nlink),
                int(ino),
                int(blocks) * int(bsize),
                (int(major, 16), int(minor, 16)) if kind in _DEVICES else (0, 0),
                _mtime_ns(when),
            )
        except ValueError as exc:
            raise _bad(what, f"stat line {line[:80]!r}") from exc
        if kind == "symlink":
            end = pos + entry.size
            if links[end : end + 1] != b"\n":
                raise _bad(what, f"the target of symlink {show(path)}")
            entry = Entry(**{**entry.__dict__, "link": links[pos:end]})
            pos = end + 1
        entries[path] = entry
    return Manifest(entries)


def parse_sums(sumnames: bytes, sums: bytes, *, what: str = "volume") -> dict[bytes, str]:
    """``md5sum`` output for the NUL-separated ``sumnames``, in that order. Busybox prints
    ``HASH  NAME`` as is; GNU escapes a name holding a newline or backslash and then starts the
    line with ``\\``: either way the name's extent is known, so no name can fake a line."""
    paths = sumnames.split(b"\0")
    if paths and paths[-1] == b"":
        paths.pop()
    out: dict[bytes, str] = {}
    pos = 0
    for path in paths:
        if sums[pos : pos + 1] == b"\\":  # GNU, escaped name: no raw newline in the line
            end = sums.index(b"\n", pos)
            digest = sums[pos + 1 : pos + 33]
        else:
            end = pos + 32 + 2 + len(path)
            digest = sums[pos : pos + 32]
            if sums[pos + 32 : end + 1] != b"  " + path + b"\n":
                raise _bad(what, f"the checksum line of {show(path)}")
        try:
            out[path] = digest.decode("ascii")
            int(out[path], 16)
        except ValueError as exc:
            raise _bad(what, f"the checksum of {show(path)}") from exc
        pos = end + 1
    if pos != len(sums):
        raise _bad(what, "checksums left over")
    return out


@dataclass(frozen=True)
class Precision:
    """What the helper's tools keep, from its ``ready`` line: sub-second times through
    ``cp -a`` or ``touch -r``, and a symlink's own time beyond the second only through
    ``cp -a`` (``touch -h -r`` follows the reference link)."""

    ns_files: bool = True
    ns_links: bool = True

    def same_time(self, kind: str, a: int, b: int) -> bool:
        exact = self.ns_links if kind == "symlink" else self.ns_files
        return a == b if exact else a // 1_000_000_000 == b // 1_000_000_000


def _groups(m: Manifest) -> dict[bytes, frozenset[bytes]]:
    """Each hard-linked name -> every name of the volume sharing its inode."""
    by_inode: dict[int, list[bytes]] = {}
    for name, e in m.entries.items():
        if e.kind != "dir":
            by_inode.setdefault(e.inode, []).append(name)
    return {n: frozenset(ns) for ns in by_inode.values() if len(ns) > 1 for n in ns}


def compare(
    source: Manifest,
    target: Manifest,
    *,
    precision: Precision = Precision(),
    limit: int = 5,
) -> list[str]:
    """What differs between two volumes, at most ``limit`` items (empty: equal). Directory
    sizes and link counts are the file system's business and not compared."""
    problems: list[str] = []
    for name, src in source.entries.items():
        dst = target.entries.get(name)
        if dst is None:
            problems.append(f"missing {show(name)}")
            continue
        diff = [
            f
            for f in ("kind", "mode", "uid", "gid", "rdev", "link")
            if getattr(src, f) != getattr(dst, f)
        ]
        if src.kind != "dir" and src.size != dst.size:
            diff.append("size")
        if not precision.same_time(src.kind, src.mtime_ns, dst.mtime_ns):
            diff.append("mtime")
        if diff:
            problems.append(f"{show(name)} differs ({', '.join(diff)})")
    problems += [f"extra {show(n)}" for n in target.entries if n not in source.entries]
    src_groups, dst_groups = _groups(source), _groups(target)
    for name in sorted(set(src_groups) | set(dst_groups)):
        if name in target.entries and src_groups.get(name) != dst_groups.get(name):
            problems.append(f"{show(name)} differs (hard links)")
    if source.sums is not None and target.sums is not None:
        for path, digest in source.sums.items():
            if target.sums.get(path) != digest:
                problems.append(f"{show(path)} content differs (md5)")
    elif source.sums is not None or target.sums is not None:
        problems.append("checksums missing on one side")
    return problems[:limit] + (
        [f"... {len(problems) - limit} more"] if len(problems) > limit else []
    )


# -- splitting the copy between workers ---------------------------------------------------------

PER_ENTRY = 64 * 1024  # what one entry costs (cp, touch) in bytes of copying, roughly
SMALL = 32 * 1024 * 1024  # below this (weighted), one cp -a of the whole volume
UNITS_PER_WORKER = 4


@dataclass(frozen=True)
class Work:
    """How the helper copies: ``units[i]`` the subtrees worker ``i`` copies with ``cp -a``
    (``[[b"."]]``: the whole volume in one ``cp -a``), ``sparse[i]`` the sparse files it
    rebuilds, ``dirs`` the directories the split goes through (parents first),
    ``sparse_in_full`` sparse files a whole-volume copy writes out in full."""

    units: tuple[tuple[bytes, ...], ...]
    sparse: tuple[tuple[bytes, ...], ...]
    dirs: tuple[bytes, ...] = ()
    sparse_in_full: tuple[bytes, ...] = field(default=())

    @property
    def workers(self) -> int:
        return len(self.units)

    @property
    def whole(self) -> bool:
        """One ``cp -a`` of the whole volume: the helper needs no lists."""
        return self.units == ((ROOT,),)

    def files(self) -> dict[str, bytes]:
        """The work lists as the helper reads them (NUL-separated), by file name; worker
        ``i``'s units also grouped by parent (``dir.i.j``: the parent, ``grp.i.j``: its units)."""
        out = {"dirs": b"".join(d + b"\0" for d in self.dirs)}
        for i, (units, sparse) in enumerate(zip(self.units, self.sparse, strict=True)):
            out[f"units.{i}"] = b"".join(u + b"\0" for u in units)
            out[f"sparse.{i}"] = b"".join(s + b"\0" for s in sparse)
            groups: dict[bytes, list[bytes]] = {}
            for u in units:
                groups.setdefault(_parent(u), []).append(u)
            for j, (parent, members) in enumerate(sorted(groups.items())):
                out[f"dir.{i}.{j}"] = parent
                out[f"grp.{i}.{j}"] = b"".join(m + b"\0" for m in members)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "units": [len(u) for u in self.units],
            "sparse": [len(s) for s in self.sparse],
            "dirs": len(self.dirs),
        }


def _parent(path: bytes) -> bytes:
    return path.rsplit(b"/", 1)[0] if b"/" in path else ROOT


def _whole(sparse: Iterable[bytes] = ()) -> Work:
    return Work(units=((ROOT,),), sparse=((),), sparse_in_full=tuple(sorted(sparse)))


def partition(m: Manifest, workers: int, *, rebuild_sparse: bool) -> Work:
    """Split the copy between ``workers`` (each a ``cp -a`` of its subtrees, then its sparse
    files rebuilt with their holes, then its times restored), balanced by bytes and entries.

    Hard links are kept only within one ``cp -a``: a volume that has any is copied whole by
    one worker, and its sparse files are written in full (``sparse_in_full``). A sparse file
    to rebuild is never under a ``cp -a`` unit: its ancestors become split directories.
    """
    sparse = sorted(n for n, e in m.entries.items() if is_sparse(e)) if rebuild_sparse else []
    if any(e.kind != "dir" and e.nlink > 1 for e in m.entries.values()):
        return _whole(sparse)
    children: dict[bytes, list[bytes]] = {}
    for name in m.entries:
        if name != ROOT:
            children.setdefault(_parent(name), []).append(name)
    weight: dict[bytes, int] = {}
    for name in sorted(m.entries, key=lambda n: -n.count(b"/")):  # deepest first
        e = m.entries[name]
        own = PER_ENTRY + (e.size if e.kind == "file" else 0)
        weight[name] = own + sum(weight[c] for c in children.get(name, ()))
    total = weight.get(ROOT, 0)
    workers = max(1, workers)
    if not sparse and (workers == 1 or total < SMALL):
        return _whole()
    split = {ROOT}
    for s in sparse:
        p = _parent(s)
        while p not in split:
            split.add(p)
            p = _parent(p)
    sparse_set = set(sparse)

    # A job: a directory unit (its whole subtree), or the files directly in one split
    # directory (one group: two cp -a creating entries in one directory slow each other down),
    # or a sparse file. Split the heaviest directory while the jobs are too few or too uneven.
    def jobs_of(d: bytes) -> tuple[list[bytes], list[bytes]]:
        kids = [c for c in children.get(d, ()) if c not in split and c not in sparse_set]
        return [c for c in kids if m.entries[c].kind == "dir"], [
            c for c in kids if m.entries[c].kind != "dir"
        ]

    dir_units: list[bytes] = []
    groups: dict[bytes, list[bytes]] = {}
    for d in sorted(split):
        subdirs, files = jobs_of(d)
        dir_units += subdirs
        if files:
            groups[d] = files
    while len(dir_units) + len(groups) < UNITS_PER_WORKER * workers:
        heavy = max(dir_units, key=lambda u: weight[u], default=None)
        if heavy is None or weight[heavy] * 2 * workers <= total:
            break
        split.add(heavy)
        dir_units.remove(heavy)
        subdirs, files = jobs_of(heavy)
        dir_units += subdirs
        if files:
            groups[heavy] = files
    jobs: list[tuple[int, bytes, list[bytes], bool]] = [
        (weight[u], u, [u], False) for u in dir_units
    ]
    jobs += [(sum(weight[f] for f in fs), d, fs, False) for d, fs in groups.items()]
    jobs += [(weight[s], s, [s], True) for s in sparse]
    bins: list[list[bytes]] = [[] for _ in range(workers)]
    sparse_bins: list[list[bytes]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for w, _, members, is_sparse_file in sorted(jobs, key=lambda j: (-j[0], j[1])):
        i = loads.index(min(loads))
        loads[i] += w
        (sparse_bins if is_sparse_file else bins)[i].extend(members)
    used = [i for i in range(workers) if bins[i] or sparse_bins[i]] or [0]
    if len(used) == 1 and not sparse:
        return _whole()  # one worker after all (a flat folder): one cp -a of the whole
    return Work(
        units=tuple(tuple(sorted(bins[i])) for i in used),
        sparse=tuple(tuple(sorted(sparse_bins[i])) for i in used),
        dirs=tuple(sorted(split - {ROOT}, key=lambda d: (d.count(b"/"), d))),
    )
