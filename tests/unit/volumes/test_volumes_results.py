"""What a copy reports: results as JSON, the table, the one failure line, the interrupted line,
and the warnings said before copying."""

from __future__ import annotations

import signal

import pytest

from tasks.lib.errors import Interrupted
from tasks.lib.output import Output
from tasks.lib.progress import Status
from tasks.lib.volumes import copy, view
from tasks.lib.volumes import manifest as mf
from tasks.lib.volumes.plan import plan_copy

GW, S_GW = "meeshy-gateway-uploads", "meeshy-staging-gateway-uploads"
WEB, S_WEB = "meeshy-web-uploads", "meeshy-staging-web-uploads"

DONE = copy.CopyResult(
    GW, S_GW, Status.COPIED, "absent", 12, 3, 50_000_000, 2.0, "content", {"fifo": 1}, ("n",)
)
FAILED = copy.CopyResult(WEB, S_WEB, Status.FAILED, "populated", error="does not match")


def test_result_json_and_rows() -> None:
    assert DONE.mb_per_s == 25.0
    assert DONE.to_json() == {
        "source": GW,
        "target": S_GW,
        "status": "copied",
        "files": 12,
        "dirs": 3,
        "bytes": 50_000_000,
        "seconds": 2.0,
        "mb_per_s": 25.0,
        "verified": "content",
        "target_before": "absent",
        "kinds": {"fifo": 1},
        "notes": ["n"],
        "warnings": [],
        "error": "",
    }
    run = copy.CopyRun((DONE, FAILED))
    assert view.copy_rows(run) == [
        [GW, S_GW, "12", "50.0 MB", "2.0", "25.0", "content", "copied"],
        [WEB, S_WEB, "0", "0 bytes", "0.0", "0.0", "-", "failed"],
    ]
    assert run.to_json() == [DONE.to_json(), FAILED.to_json()]


def test_one_failure_line_names_what_was_done() -> None:
    assert copy.failure(copy.CopyRun((DONE,))) is None
    err = copy.failure(copy.CopyRun((DONE, FAILED)))
    assert err is not None
    assert err.exit_code == 1
    line = err.line()
    assert line.startswith(f"not copied: {S_WEB}: does not match: copied and verified: {S_GW}; ")
    assert "\n" not in line


def test_results_table_plain(capsys: pytest.CaptureFixture[str]) -> None:
    view.results(Output(plain=True), copy.CopyRun((DONE,), cleaned=("old-helper",)))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "removed helper container old-helper, left by a copy that was killed"
    assert out[-2:] == [f"{S_GW}: copied as they are: fifo: 1", f"{S_GW}: n"]


def test_interrupted_line_says_what_was_done_and_what_not() -> None:
    plan = plan_copy([GW, WEB, "meeshy-models-data"])
    session = copy.CopySession.__new__(copy.CopySession)
    session.jobs = [copy._Job(p, plan.helper(p)) for p in plan.pairs]
    gw, web, _ = session.jobs
    gw.went = web.went = True
    gw.result = DONE
    line = session._interrupted_line(int(signal.SIGTERM))
    assert line == (
        f"interrupted by SIGTERM; copied and verified: {S_GW}; NOT done, marked incomplete "
        f"(a rerun redoes them): {S_WEB}; not started: meeshy-staging-models-data"
    )
    assert Interrupted(int(signal.SIGTERM), line).exit_code == 143


def test_warnings_only_for_what_the_helper_cannot_keep() -> None:
    t = "2001-02-03 04:05:06.5 +0000"
    entries = {
        b".": mf.Entry("dir", 0o755, 0, 0, 0, 2, 1, 0, (0, 0), mf._mtime_ns(t)),
        b"./l": mf.Entry("symlink", 0o777, 0, 0, 1, 1, 2, 0, (0, 0), mf._mtime_ns(t), b"x"),
    }
    m = mf.Manifest(entries)
    work = mf.partition(m, 1, rebuild_sparse=True)
    busybox = mf.Precision(ns_files=True, ns_links=False)
    assert copy._notes(m, work, busybox) == [
        "!1 symlink(s) keep their own time to the second only (this helper's touch -h sets "
        "whole seconds)"
    ]
    assert copy._notes(m, work, mf.Precision()) == []  # GNU cp -a keeps them
    seconds_only = copy._notes(m, work, mf.Precision(ns_files=False, ns_links=False))
    assert seconds_only[0].startswith("!the sub-second part of 1 modification times is cut")
