"""Manifests as the helper writes them (NUL-separated names, name-free stat lines, symlink
targets by length, md5 lines read with the known names), comparison, and the split of a copy
between workers."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tasks.lib.errors import CommandFailed
from tasks.lib.volumes import manifest as mf

T0 = "2001-02-03 04:05:06.123456789 +0000"
T0_NS = 981173106_123456789


@dataclass
class E:
    """One entry as ``stat -c '%f %u %g %s %h %i %b %B %t %T %y'`` would print it."""

    name: bytes
    mode: int = 0o100644
    uid: int = 0
    gid: int = 0
    size: int = 0
    nlink: int = 1
    ino: int = 0
    blocks: int = 0
    dev: tuple[int, int] = (0, 0)
    mtime: str = T0
    link: bytes = b""

    def line(self) -> bytes:
        size = len(self.link) if self.link else self.size
        return (
            f"{self.mode:x} {self.uid} {self.gid} {size} {self.nlink} {self.ino} "
            f"{self.blocks} 512 {self.dev[0]:x} {self.dev[1]:x} {self.mtime}\n"
        ).encode()


def listing(entries: list[E]) -> tuple[bytes, bytes, bytes]:
    for i, e in enumerate(entries):
        e.ino = e.ino or 1000 + i
    names = b"".join(e.name + b"\0" for e in entries)
    meta = b"".join(e.line() for e in entries)
    links = b"".join(e.link + b"\n" for e in entries if e.link)
    return names, meta, links


NEWLINE_NAME = b"./evil\n81a4 0 0 6 1 5 8 512 0 0 " + T0.encode()  # looks like a stat line
SOURCE = [
    E(b".", 0o40755, mtime="2003-01-01 00:00:00.5 +0000"),
    E(b"./a", 0o40700, 42, 43, 4096),
    E(b"./a/f", 0o104755, 1234, 5678, 6, blocks=8),
    E(b"./link", 0o120777, 7, 8, link=b"a/f"),
    E(b"./nl-link", 0o120777, link=b"x\ny"),  # a target with a newline
    E(NEWLINE_NAME, 0o100644, size=2, blocks=8),
    E(b"./\xff\xfe-not-utf8", 0o100600, size=1, blocks=8),
    E(b"./fifo", 0o10640),
    E(b"./sock", 0o140755),
    E(b"./null", 0o20644, dev=(1, 3)),
    E(b"./loop", 0o60660, dev=(7, 0)),
    E(b"./" + b"n" * 255, 0o100644, size=3, blocks=8),
]


def parsed(entries: list[E] = SOURCE) -> mf.Manifest:
    return mf.parse(*listing([replace(e) for e in entries]))


def test_parse_every_kind_and_odd_names() -> None:
    m = parsed()
    assert m.files == 10
    assert m.dirs == 1
    assert m.bytes == 6 + 2 + 1 + 3
    f = m.entries[b"./a/f"]
    assert (f.kind, f.mode, f.uid, f.gid) == ("file", 0o4755, 1234, 5678)
    assert (f.size, f.allocated) == (6, 4096)
    assert f.mtime_ns == T0_NS
    assert m.entries[b"."].mtime_ns == 1041379200_500000000
    assert m.entries[b"./link"].link == b"a/f"
    assert m.entries[b"./nl-link"].link == b"x\ny"
    assert m.entries[NEWLINE_NAME].kind == "file"  # one entry, not two
    assert m.entries[b"./null"].rdev == (1, 3)
    assert m.entries[b"./loop"].kind == "block device"
    assert {m.entries[n].kind for n in (b"./fifo", b"./sock")} == {"fifo", "socket"}
    kinds = m.kinds()
    assert kinds["name with a newline"] == 1
    assert kinds["name not UTF-8"] == 1
    assert kinds["setuid/setgid"] == 1
    assert kinds["symlink"] == 2


def test_time_zones_and_short_fractions() -> None:
    assert mf._mtime_ns("2001-02-03 05:05:06.1 +0100") == 981173106_100000000
    assert mf._mtime_ns("2001-02-03 04:05:06 -0030") == 981174906_000000000


def test_show_makes_names_printable() -> None:
    assert mf.show(b"./plain name") == "./plain name"
    assert mf.show(b"./a\nb") == "./a\\nb"
    assert mf.show(b"./\xff") == "./\\xff"
    assert mf.show("./é".encode()) == "./é"


@pytest.mark.parametrize(
    ("names", "meta", "links", "detail"),
    [
        pytest.param(b"./a\0./b\0", SOURCE[1].line(), b"", "2 names but 1 stat lines", id="count"),
        pytest.param(b"./a\0", b"garbage\n", b"", "stat line 'garbage'", id="garbage"),
        pytest.param(
            b"./l\0", E(b"./l", 0o120777, link=b"abc").line(), b"ab", "symlink ./l", id="link"
        ),
    ],
)
def test_unreadable_listing_is_one_clear_error(
    names: bytes, meta: bytes, links: bytes, detail: str
) -> None:
    with pytest.raises(CommandFailed) as err:
        mf.parse(names, meta, links, what="target")
    assert err.value.message.startswith("cannot read the helper's listing of the target")
    assert detail in err.value.message


def test_sums_busybox_and_gnu_lines() -> None:
    names = [b"./a", b"./x\ny", b"./b\\c"]
    sumnames = b"".join(n + b"\0" for n in names)
    busybox = b"".join(b"%s  %s\n" % (bytes([97 + i]) * 32, n) for i, n in enumerate(names))
    assert mf.parse_sums(sumnames, busybox) == {
        b"./a": "a" * 32,
        b"./x\ny": "b" * 32,
        b"./b\\c": "c" * 32,
    }
    gnu = b"a" * 32 + b"  ./a\n\\" + b"b" * 32 + b"  ./x\\ny\n\\" + b"c" * 32 + b"  ./b\\\\c\n"
    assert mf.parse_sums(sumnames, gnu) == mf.parse_sums(sumnames, busybox)
    with pytest.raises(CommandFailed, match=r"checksum line of \./a"):
        mf.parse_sums(b"./a\0", b"a" * 32 + b"  ./b\n")
    with pytest.raises(CommandFailed, match="checksums left over"):
        mf.parse_sums(b"./a\0", busybox)


# --- comparison ----------------------------------------------------------------------------


def test_equal_manifests_compare_clean_and_directory_sizes_do_not_count() -> None:
    src = parsed()
    bigger_dir = [replace(e, size=12288) if e.name == b"./a" else replace(e) for e in SOURCE]
    # other inode numbers on the target: only who shares an inode counts
    dst = mf.parse(*listing([replace(e, ino=5000 + i) for i, e in enumerate(bigger_dir)]))
    assert mf.compare(src, dst) == []


def _edited(name: bytes, **change: Any) -> mf.Manifest:
    return parsed([replace(e, **change) if e.name == name else replace(e) for e in SOURCE])


@pytest.mark.parametrize(
    ("name", "change", "problem"),
    [
        (b"./a/f", {"mode": 0o100755}, "./a/f differs (mode)"),
        (b"./a/f", {"uid": 0, "gid": 0}, "./a/f differs (uid, gid)"),
        (b"./a/f", {"size": 7}, "./a/f differs (size)"),
        (b"./a/f", {"mtime": "2001-02-03 04:05:06.000000000 +0000"}, "./a/f differs (mtime)"),
        (b"./a", {"mtime": "2001-02-03 04:05:07.123456789 +0000"}, "./a differs (mtime)"),
        (b"./link", {"link": b"a/g"}, "./link differs (link)"),
        (b"./null", {"dev": (1, 5)}, "./null differs (rdev)"),
        (b"./fifo", {"mode": 0o100640}, "./fifo differs (kind)"),
        (NEWLINE_NAME, {"size": 3}, mf.show(NEWLINE_NAME) + " differs (size)"),
    ],
)
def test_differences(name: bytes, change: dict[str, Any], problem: str) -> None:
    assert problem in mf.compare(parsed(), _edited(name, **change))


def test_missing_and_extra() -> None:
    src = parsed()
    fewer = parsed([e for e in SOURCE if e.name != b"./sock"])
    assert mf.compare(src, fewer) == ["missing ./sock"]
    assert mf.compare(fewer, src) == ["extra ./sock"]


def test_hard_links_must_stay_links() -> None:
    entries = [E(b"."), E(b"./a", nlink=2, ino=7, size=1), E(b"./b", nlink=2, ino=7, size=1)]
    linked = mf.parse(*listing(entries))
    split = mf.parse(*listing([E(b"."), E(b"./a", size=1, ino=8), E(b"./b", size=1, ino=9)]))
    assert mf.compare(linked, split) == ["./a differs (hard links)", "./b differs (hard links)"]
    assert mf.compare(linked, linked) == []


def test_precision_of_times() -> None:
    cut = _edited(b"./a/f", mtime="2001-02-03 04:05:06.000000000 +0000")
    seconds = mf.Precision(ns_files=False, ns_links=False)
    assert mf.compare(parsed(), cut, precision=seconds) == []
    link_cut = _edited(b"./link", mtime="2001-02-03 04:05:06.000000000 +0000")
    assert mf.compare(parsed(), link_cut, precision=mf.Precision(ns_links=False)) == []
    assert mf.compare(parsed(), link_cut) == ["./link differs (mtime)"]


def test_checksums() -> None:
    sums = {b"./a/f": "a" * 32}
    src = mf.Manifest(parsed().entries, sums)
    assert mf.compare(src, mf.Manifest(parsed().entries, {b"./a/f": "b" * 32})) == [
        "./a/f content differs (md5)"
    ]
    assert mf.compare(src, parsed()) == ["checksums missing on one side"]


def test_compare_limits_the_list() -> None:
    src = parsed([E(b".")] + [E(b"./f%d" % i) for i in range(9)])
    problems = mf.compare(src, parsed([E(b".")]), limit=3)
    assert problems == ["missing ./f0", "missing ./f1", "missing ./f2", "... 6 more"]


# --- the split between workers --------------------------------------------------------------

MB = 1_000_000


def tree(*files: tuple[bytes, int], extra: list[E] | None = None) -> mf.Manifest:
    """Directories implied by the file paths, files of the given sizes (fully allocated)."""
    entries = {b".": E(b".", 0o40755)}
    for path, size in files:
        parts = path.split(b"/")
        for i in range(2, len(parts)):
            d = b"/".join(parts[:i])
            entries.setdefault(d, E(d, 0o40755))
        entries[path] = E(path, size=size, blocks=(size + 511) // 512)
    for e in extra or []:
        entries[e.name] = e
    return mf.parse(*listing(list(entries.values())))


def _under(names: list[bytes], units: Iterable[bytes]) -> Iterator[bytes]:
    """Every name of the sorted ``names`` that is a unit or below one."""
    for unit in units:
        if unit == mf.ROOT:
            yield from names
            continue
        i = bisect.bisect_left(names, unit)
        if i < len(names) and names[i] == unit:
            yield unit
            i += 1
        prefix = unit + b"/"
        i = max(i, bisect.bisect_left(names, prefix))
        while i < len(names) and names[i].startswith(prefix):
            yield names[i]
            i += 1


def _covered(work: mf.Work, m: mf.Manifest) -> list[bytes]:
    """Every entry some worker's cp -a (or sparse rebuild) creates, or a split directory."""
    names = sorted(m.entries)
    out = [n for units in work.units for n in _under(names, units)]
    out += [s for sparse in work.sparse for s in sparse]
    return sorted(out + list(work.dirs) + ([mf.ROOT] if work.units != ((mf.ROOT,),) else []))


def test_small_volume_is_one_cp_of_the_whole() -> None:
    m = tree((b"./a/x", MB), (b"./b", MB))
    assert mf.partition(m, 2, rebuild_sparse=True) == mf.Work(units=((b".",),), sparse=((),))


def test_big_volume_is_split_and_balanced() -> None:
    files = [(b"./u%d/d%d/f%d" % (i % 3, i % 7, i), (i % 5 + 1) * MB) for i in range(60)]
    m = tree(*files)
    work = mf.partition(m, 2, rebuild_sparse=True)
    assert work.workers == 2
    assert _covered(work, m) == sorted(m.entries)  # every entry exactly once
    loads = [sum(m.entries[n].size for n in _under(sorted(m.entries), u)) for u in work.units]
    assert max(loads) < 0.6 * sum(loads)
    assert all(m.entries[d].kind == "dir" for d in work.dirs)


def test_one_big_directory_is_split_below_it() -> None:
    m = tree(*[(b"./uploads/d%d/f%d" % (i % 8, i), 2 * MB) for i in range(40)])
    work = mf.partition(m, 2, rebuild_sparse=True)
    assert work.dirs == (b"./uploads",)
    assert work.workers == 2
    assert _covered(work, m) == sorted(m.entries)


def test_a_flat_folder_is_one_cp_of_the_whole() -> None:
    """Two cp -a creating entries in one directory slow each other down (measured: 0.79 s
    against 0.51 s for 3,060 files): the files of one folder stay with one worker."""
    m = tree(*[(b"./uploads/f%d" % i, 2 * MB) for i in range(40)])
    assert mf.partition(m, 2, rebuild_sparse=True).whole
    mixed = tree(
        *[(b"./uploads/f%d" % i, 2 * MB) for i in range(40)],
        *[(b"./uploads/sub%d/g%d" % (i % 2, i), 2 * MB) for i in range(40)],
    )
    work = mf.partition(mixed, 2, rebuild_sparse=True)
    files = {u for units in work.units for u in units if u.startswith(b"./uploads/f")}
    assert len(files) == 40
    assert [sum(u in files for u in units) for units in work.units] in ([40, 0], [0, 40])


def test_hard_links_keep_one_whole_cp_and_sparse_files_are_then_written_in_full() -> None:
    sparse = E(b"./d/big", size=1 << 30, blocks=8)
    m = tree(
        *[(b"./d/f%d" % i, 4 * MB) for i in range(20)],
        extra=[sparse, E(b"./h1", nlink=2, ino=77), E(b"./h2", nlink=2, ino=77)],
    )
    work = mf.partition(m, 4, rebuild_sparse=True)
    assert work.units == ((b".",),)
    assert work.sparse_in_full == (b"./d/big",)


def test_sparse_files_are_rebuilt_never_under_a_cp_unit() -> None:
    sparse = E(b"./d/e/big", size=1 << 30, blocks=8)
    m = tree((b"./d/e/small", 10), (b"./d/other", 10), (b"./top", 10), extra=[sparse])
    assert mf.is_sparse(m.entries[b"./d/e/big"])
    work = mf.partition(m, 2, rebuild_sparse=True)
    assert [s for ss in work.sparse for s in ss] == [b"./d/e/big"]
    assert work.dirs == (b"./d", b"./d/e")
    names = sorted(m.entries)
    assert b"./d/e/big" not in [n for u in work.units for n in _under(names, u)]
    assert _covered(work, m) == names
    # a helper whose cp -a keeps holes copies it like any file
    plain = mf.partition(m, 2, rebuild_sparse=False)
    assert plain.sparse == ((), ())
    assert b"./d/e/big" in [n for u in plain.units for n in _under(names, u)]


def test_work_files_for_the_helper() -> None:
    m = tree(*[(b"./uploads/d%d/f%d" % (i % 4, i), 2 * MB) for i in range(40)])
    work = mf.partition(m, 2, rebuild_sparse=True)
    assert not work.whole
    files = work.files()
    assert set(files) == {
        "dirs",
        *(f"{k}.{i}" for k in ("units", "sparse") for i in range(2)),
        *(f"{k}.{i}.0" for k in ("dir", "grp") for i in range(2)),
    }
    assert files["dirs"] == b"./uploads\0"
    assert files["dir.0.0"] == files["dir.1.0"] == b"./uploads"  # one cp -a per batch
    assert files["grp.0.0"] + files["grp.1.0"] != b""
    units = (files["units.0"] + files["units.1"]).split(b"\0")
    assert sorted(u for u in units if u) == [b"./uploads/d%d" % i for i in range(4)]
    assert mf.partition(tree((b"./a", 1)), 2, rebuild_sparse=True).whole
