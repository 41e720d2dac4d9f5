"""staging.volumes under hostile conditions, through the real CLI on a real engine (issue 10):
a source file named like the old marker, two runs at once, sparse files and nanosecond times,
names shaped like manifest lines, SIGKILL then a rerun, SIGINT/SIGTERM to the task process
alone, every odd kind of file, output closed early, an invalid volume name.

Each test makes its own volumes (``meeshy-t3-<id>-*``) and removes them, their marker volumes
and any helper container at the end, also on failure."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import pytest

from tests.cli import PROJECT, run_inv
from tests.volumes_engine import BYTES, FILES, IMAGE, POPULATE, Vols

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.engine

MARKER_FILE = ".meeshy-staging-copy-incomplete"  # the in-volume marker of the old code


@pytest.fixture
def vols(sdk: docker.DockerClient) -> Iterator[Vols]:
    v = Vols(sdk)
    try:
        yield v
    finally:
        v.cleanup()


def copy_json(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    r = run_inv("staging.volumes", "--helper-image", IMAGE, "--json", *args)
    data = json.loads(r.out) if r.code == 0 else []
    return r.code, data, r.err


def start(*args: str) -> subprocess.Popen[str]:
    """The real CLI as a child of this test (not in a shell: signals reach it alone)."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "staging.volumes", "--helper-image", IMAGE, *args],
        cwd=PROJECT,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(stream: IO[str] | None, pattern: str, timeout: float = 120) -> list[str]:
    """Read ``stream`` until a line matches ``pattern``; the lines read."""
    assert stream is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"never saw {pattern!r}; output was: {''.join(seen)[-2000:]}")


COPYING = r"\[copy\]|^copying "  # this version's progress line, or the previous version's

ZEROS = "for i in 1 2 3 4 5 6 7 8; do head -c 50000000 /dev/zero > /v/zero$i; done"


def test_a_source_file_named_like_the_marker_is_copied_and_verified(vols: Vols) -> None:
    src = vols.create("uploads", POPULATE + f"\necho precious > /v/{MARKER_FILE}\n")
    vols.run(src, f"echo deep > /v/docs/{MARKER_FILE}")
    code, [report], err = copy_json("--volume", src)
    assert code == 0, err
    assert report["files"] == FILES + 2
    assert report["bytes"] == BYTES + len("precious\n") + len("deep\n")
    assert vols.listing(vols.twin("uploads")) == vols.listing(src)


def test_two_runs_at_once_one_is_refused(vols: Vols) -> None:
    src = vols.create("uploads")
    vols.run(src, ZEROS)
    a = start("--volume", src, "--force")
    b = start("--volume", src, "--force")
    results = sorted((p.wait(timeout=300), p.stderr.read() if p.stderr else "", p) for p in (a, b))
    for p in (a, b):
        for s in (p.stdout, p.stderr):
            if s is not None:
                s.close()
    codes = [r[0] for r in results]
    assert codes == [0, 2], results
    refused = results[1][1].strip().splitlines()
    assert len(refused) == 1
    assert f"{vols.twin('uploads')}: another copy is running" in refused[0]
    assert vols.listing(vols.twin("uploads")) == vols.listing(src)


SPARSE = r"""
set -eu
cd /v
truncate -s 536870912 sparse
dd if=/dev/urandom of=sparse bs=1048576 seek=100 count=3 conv=notrunc 2>/dev/null
mkdir -p d
dd if=/dev/urandom of=d/tail-sparse bs=1048576 seek=40 count=1 2>/dev/null
truncate -s 104857600 d/tail-sparse
echo a > precise
"""


def test_sparse_files_keep_their_holes_and_times_their_nanoseconds(vols: Vols) -> None:
    src = vols.create("data", SPARSE)
    code, [report], err = copy_json("--volume", src, "--checksum")
    assert code == 0, err
    target = vols.twin("data")
    kb = vols.run(target, "du -k /v/sparse /v/d/tail-sparse", read_only=True).split()
    assert int(kb[0]) < 8 * 1024  # 512 MiB apparent, 3 MiB of data
    assert int(kb[2]) < 8 * 1024
    assert "2 sparse file(s) rebuilt with their holes (1 MiB chunks)" in report["notes"]
    listing = vols.listing(target)
    assert listing == vols.listing(src)
    when = listing[b"./precise"].split(b" ")[7]  # HH:MM:SS.fraction
    assert re.fullmatch(rb"\d\d:\d\d:\d\d\.\d{9}", when)
    assert not when.endswith(b".000000000")


NAMES = r"""
set -eu
cd /v
printf one > "$(printf 'a\n81a4 0 0 6 1 5 8 512 0 0 2001-02-03 04:05:06.1 +0000')"
forged="$(printf 'b\n81a4 0 0 6 1634484606 .')"
mkdir "$forged" && printf two > "$forged/forged"
forged_sum="$(printf 'c\nd41d8cd98f00b204e9800998ecf8427e  .')"
mkdir "$forged_sum" && printf three > "$forged_sum/forged-sum"
mkdir "$(printf 'dir\nwith newline')"
printf four > "$(printf 'dir\nwith newline')/$(printf '\n.')"
ln -s "$(printf 'target\nwith newline')" "$(printf 'link\n.')"
"""


def test_names_with_newlines_shaped_like_manifest_lines(vols: Vols) -> None:
    src = vols.create("odd-names", NAMES)
    code, [report], err = copy_json("--volume", src, "--checksum")
    assert code == 0, err
    assert report["files"] == 5
    assert report["dirs"] == 3
    assert report["bytes"] == len("onetwothreefour")
    assert report["kinds"]["name with a newline"] == 8  # a path holding one counts
    assert vols.listing(vols.twin("odd-names")) == vols.listing(src)


ODD = r"""
set -eu
cd /v
mkdir -p sub sgid
echo data > file
ln file hard-same-dir
ln file sub/hard-other-dir
mkfifo fifo
chmod 640 fifo
syslogd -O /dev/null && sleep 0.3 && cp -a /dev/log sock
mknod null c 1 3
mknod loop b 7 0
echo x > suid && chown 7:8 suid && chmod 6755 suid
chown 5:6 sgid && chmod 3775 sgid
truncate -s 67108864 sparse
dd if=/dev/urandom of=sparse bs=1048576 seek=10 count=1 conv=notrunc 2>/dev/null
echo long > "$(printf '%0255d' 0)"
printf raw > "$(printf 'bytes-\377\376')"
printf nl > "$(printf 'new\nline')"
"""


def test_odd_files_are_copied_faithfully_and_verified(vols: Vols) -> None:
    src = vols.create("odd", ODD)
    code, [report], err = copy_json("--volume", src, "--checksum")
    assert code == 0, err
    target = vols.twin("odd")
    assert vols.listing(target) == vols.listing(src)
    links = vols.run(
        target,
        "cd /v && [ file -ef hard-same-dir ] && [ file -ef sub/hard-other-dir ] && echo linked",
        read_only=True,
    )
    assert links.strip() == b"linked"
    assert report["kinds"] == {
        "hard-linked name": 3,
        "fifo": 1,
        "socket": 1,
        "char device": 1,
        "block device": 1,
        "setuid/setgid": 2,
        "sparse file": 1,
        "name not UTF-8": 1,
        "name with a newline": 1,
    }
    # hard links need one cp -a of the whole volume: the sparse file is written in full, and
    # that is said once, before copying
    said = [line for line in err.splitlines() if "sparse" in line]
    assert said == [
        f"WARNING: {target}: 1 sparse file(s) are written out in full: the volume has hard "
        "links, which only one cp -a of the whole volume keeps"
    ]


def test_sigkill_leaves_nothing_and_the_rerun_redoes_it(
    vols: Vols, sdk: docker.DockerClient
) -> None:
    src = vols.create("models")
    vols.run(src, ZEROS)
    target = vols.twin("models")
    proc = start("--volume", src)
    try:
        wait_for_line(proc.stdout, COPYING)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                s.close()
    # the engine closed the dead task's stdin: the helper stopped and removed itself
    assert vols.wait_helpers_gone() == []
    users = sdk.containers.list(all=True, filters={"volume": target})
    assert users == []  # `docker volume rm` of the target would work
    code, [report], err = copy_json("--volume", src)
    assert code == 0, err
    assert report["target_before"] == "incomplete"
    assert vols.listing(target) == vols.listing(src)


def test_a_helper_left_by_a_killed_run_is_found_and_removed(
    vols: Vols, sdk: docker.DockerClient
) -> None:
    from docker.types import Mount

    src = vols.create("uploads")
    target = vols.twin("uploads")
    sdk.volumes.create(target)
    left = sdk.containers.create(
        IMAGE,
        ["true"],
        name=vols.name("left-behind"),
        labels={"me.meeshy.helper": "volume-copy", "me.meeshy.volume-copy.target": target},
        mounts=[Mount("/to", target, type="volume")],
        network_mode="none",
    )
    left.start()
    left.wait()  # Exited, as a SIGKILLed run of the previous version left its copy container
    r = run_inv("staging.volumes", "--helper-image", IMAGE, "--volume", src)
    assert r.code == 0, r
    assert f"removed helper container {vols.name('left-behind')}" in r.out
    assert vols.helpers_left() == []
    assert vols.listing(target) == vols.listing(src)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_task_alone_stops_the_helpers_at_once(
    vols: Vols, sig: signal.Signals
) -> None:
    small = vols.create("small")
    big = vols.create("big")
    vols.run(big, ZEROS + "\n" + ZEROS.replace("zero$i", "more$i"))
    proc = start("--volume", small, "--volume", big)
    try:
        # small is done (this version: its progress line; the previous one: big has begun)
        wait_for_line(proc.stdout, rf"\[{vols.twin('small')}\] copied in|^==> {big} -> ")
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                s.close()
    assert code == 128 + sig, err
    assert vols.wait_helpers_gone(timeout=5) == []
    [line] = [ln for ln in err.splitlines() if ln.startswith("ERROR:")]
    assert f"interrupted by {sig.name}" in line
    assert f"copied and verified: {vols.twin('small')}" in line
    assert f"NOT done, marked incomplete (a rerun redoes them): {vols.twin('big')}" in line
    code, reports, err = copy_json("--volume", small, "--volume", big, "--force")
    assert code == 0, err
    assert [r["target_before"] for r in reports] == ["populated", "incomplete"]
    assert vols.listing(vols.twin("big")) == vols.listing(big)


def test_dry_run_with_its_output_closed_early_says_nothing() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "staging.volumes", "--dry-run", "--include-models"],
        cwd=PROJECT,
        # no engine: the dry run still prints every command (sources not checked)
        env={**os.environ, "NO_COLOR": "1", "DOCKER_HOST": "tcp://127.0.0.1:9"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: every write of the dry run meets a closed pipe
    err = proc.stderr.read()
    proc.stderr.close()
    # 141 also when rich meets the closed pipe first (our Console.on_broken_pipe)
    assert proc.wait(timeout=60) == 141
    assert err.splitlines() == [
        "WARNING: Cannot reach the Docker engine at tcp://127.0.0.1:9: [Errno 111] Connection "
        "refused; sources not checked"
    ]


def test_an_invalid_volume_name_is_named() -> None:
    r = run_inv("staging.volumes", "--volume", "bad name!")
    assert r.code == 2
    [line] = r.err.strip().splitlines()
    assert line.startswith("ERROR: --volume 'bad name!' is not a valid volume name")
    assert "docker.ensure" not in line
