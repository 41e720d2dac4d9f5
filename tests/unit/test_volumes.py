"""staging.volumes and volumes.size without an engine: the plan, its refusals, the exact argv
of every helper container, manifests, the size report, and the task wiring (dry run)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from invoke import Program, Task

from tasks import staging as staging_tasks
from tasks import volumes as volumes_tasks
from tasks.lib import volumes as v
from tasks.lib.errors import CommandFailed, ConfigError
from tasks.lib.output import Output

GW, WEB, MODELS = "meeshy-gateway-uploads", "meeshy-web-uploads", "meeshy-models-data"
S_GW, S_WEB, S_MODELS = (
    "meeshy-staging-gateway-uploads",
    "meeshy-staging-web-uploads",
    "meeshy-staging-models-data",
)
ALL = {GW, WEB, MODELS}


def _pairs(plan: v.CopyPlan) -> list[tuple[str, str]]:
    return [(p.source, p.target) for p in plan.pairs]


# --- the plan --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volumes", "include_models", "expected"),
    [
        pytest.param([], False, [(GW, S_GW), (WEB, S_WEB)], id="default-uploads"),
        pytest.param([], True, [(GW, S_GW), (WEB, S_WEB), (MODELS, S_MODELS)], id="models"),
        pytest.param([WEB], False, [(WEB, S_WEB)], id="volume-replaces-default"),
        pytest.param([WEB], True, [(WEB, S_WEB), (MODELS, S_MODELS)], id="volume-and-models"),
        pytest.param([GW, GW], False, [(GW, S_GW)], id="duplicates-once"),
        pytest.param(
            ["meeshy-redis-data", "meeshy-database-data"],
            False,
            [
                ("meeshy-redis-data", "meeshy-staging-redis-data"),
                ("meeshy-database-data", "meeshy-staging-database-data"),
            ],
            id="other-prod-volumes-in-order",
        ),
        pytest.param(
            [f"{GW}:meeshy-staging-other"],
            False,
            [(GW, "meeshy-staging-other")],
            id="explicit-target",
        ),
    ],
)
def test_plan_pairs(volumes: list[str], include_models: bool, expected: list[Any]) -> None:
    plan = v.plan_copy(
        volumes,
        include_models=include_models,
        existing=ALL | {"meeshy-redis-data", "meeshy-database-data"},
    )
    assert _pairs(plan) == expected
    assert plan.helper_image == "alpine"
    assert not plan.force
    assert not plan.checksum


def test_plan_without_engine_skips_the_existence_check() -> None:
    assert _pairs(v.plan_copy(["meeshy-nowhere"], existing=None)) == [
        ("meeshy-nowhere", "meeshy-staging-nowhere")
    ]


@pytest.mark.parametrize(
    ("volumes", "existing", "message"),
    [
        pytest.param([GW], set(), f"{GW}: no such volume", id="missing-source"),
        pytest.param([S_GW], {S_GW}, f"{S_GW}: is a staging volume", id="staging-source"),
        pytest.param(
            [f"{GW}:{S_GW}", S_WEB],
            ALL | {S_WEB},
            f"{S_WEB}: is a staging volume",
            id="staging-source-among-others",
        ),
        pytest.param(
            [f"{GW}:{GW}"], ALL, f"{GW}: source and target are the same volume", id="same"
        ),
        pytest.param(
            [f"{GW}:{WEB}"], ALL, f"target {WEB} is not a staging volume name", id="prod-target"
        ),
        pytest.param(
            [GW, f"{WEB}:{S_GW}"],
            ALL,
            f"{S_GW}: target of both {GW} and {WEB}",
            id="one-target-twice",
        ),
    ],
)
def test_plan_refusals(volumes: list[str], existing: set[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        v.plan_copy(volumes, existing=existing)
    line = err.value.line()
    assert line.startswith("refused, nothing copied: ")
    assert message in line
    assert "\n" not in line


def test_plan_reports_every_refused_pair_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        v.plan_copy([GW, S_WEB, f"{MODELS}:{MODELS}"], existing={WEB, MODELS, S_WEB})
    line = err.value.line()
    assert f"{GW}: no such volume" in line
    assert f"{S_WEB}: is a staging volume" in line
    assert f"{MODELS}: source and target are the same volume" in line


@pytest.mark.parametrize("arg", ["", ":x", f"{GW}:"])
def test_bad_volume_argument(arg: str) -> None:
    with pytest.raises(ConfigError, match="--volume"):
        v.plan_copy([arg])


def test_empty_helper_image() -> None:
    with pytest.raises(ConfigError, match="--helper-image"):
        v.plan_copy([], helper_image=" ")


# --- argv rendering ----------------------------------------------------------------------------


def _plan(**kw: Any) -> v.CopyPlan:
    return v.plan_copy([GW], existing={GW}, **kw)


def test_copy_argv_mounts_source_read_only_and_target_read_write() -> None:
    plan = _plan(helper_image="busybox:1.36")
    argv = plan.copy_spec(plan.pairs[0]).argv(["docker", "--context", "prod"])
    assert argv == [
        "docker",
        "--context",
        "prod",
        "run",
        "--rm",
        "--network",
        "none",
        "--label",
        "me.meeshy.helper=volume-copy",
        "--label",
        f"me.meeshy.volume-copy.target={S_GW}",
        "--mount",
        f"type=volume,source={GW},target=/from,readonly",
        "--mount",
        f"type=volume,source={S_GW},target=/to",
        "busybox:1.36",
        "sh",
        "-c",
        v.copy_script(),
    ]


def test_copy_script_writes_the_marker_before_copying() -> None:
    script = v.copy_script().splitlines()
    marker = f"touch /to/{v.MARKER}"
    assert script[0] == "set -eu"
    assert script.index(marker) < script.index("cp -a /from/. /to/")
    # the wipe keeps the marker, and only touches the target
    wipe = next(line for line in script if "rm -rf" in line)
    assert wipe.startswith("find /to -mindepth 1 -maxdepth 1 ! -name ")
    assert v.MARKER in wipe
    assert not any(
        "/from" in line and ("rm " in line or "touch" in line)
        for line in script
        if not line.startswith("find . -type l")
    )


def test_finalize_removes_marker_only_after_copy() -> None:
    plan = _plan()
    pair = plan.pairs[0]
    assert v.finalize_script().splitlines()[1] == f"rm -f /to/{v.MARKER}"
    assert [m.read_only for m in plan.finalize_spec(pair).mounts] == [True, False]


@pytest.mark.parametrize("checksum", [False, True])
def test_inspect_is_read_only_and_skips_the_marker(checksum: bool) -> None:
    plan = _plan(checksum=checksum)
    for side, volume in (("source", GW), ("target", S_GW)):
        spec = plan.inspect_spec(plan.pairs[0], side)  # type: ignore[arg-type]
        assert spec.mounts == (v.MountSpec(volume, "/volume", True),)
        assert f"! -path ./{v.MARKER}" in spec.script
        assert ("sha256sum" in spec.script) is checksum
        assert ("sort -z" in spec.script) is checksum


def test_probe_mounts_every_target_read_only() -> None:
    plan = v.plan_copy([], existing=ALL)
    spec = plan.probe_spec([S_GW, S_WEB])
    assert [m.flag() for m in spec.mounts] == [
        f"type=volume,source={S_GW},target=/probe/0,readonly",
        f"type=volume,source={S_WEB},target=/probe/1,readonly",
    ]
    assert "for i in 0 1; do" in spec.script


def _first(script: str) -> str:
    """The first line of a helper script after its preamble."""
    return next(x for x in script.splitlines() if x != "set -eu" and not x.startswith("exec >"))


def test_result_scripts_write_to_a_file_not_the_log() -> None:
    plan = _plan(checksum=True)
    for spec in (plan.probe_spec([S_GW]), plan.inspect_spec(plan.pairs[0], "target")):
        assert spec.output == v.RESULT_FILE
        assert spec.script.splitlines()[1] == f"exec >{v.RESULT_FILE}"
    assert plan.copy_spec(plan.pairs[0]).output == ""


def test_dry_run_commands_known_volumes() -> None:
    plan = v.plan_copy([], existing=ALL | {S_GW})
    cmds = plan.commands(existing=ALL | {S_GW})
    summary = [(c[1], c[2]) if c[1] == "volume" else ("run", _first(c[-1])) for c in cmds]
    assert summary == [
        ("run", "for i in 0; do"),  # probe the existing target only
        ("run", "cd /volume"),
        ("run", f"touch /to/{v.MARKER}"),
        ("run", "cd /volume"),
        ("run", f"rm -f /to/{v.MARKER}"),
        ("run", "cd /volume"),
        ("volume", "create"),  # web's twin does not exist yet
        ("run", f"touch /to/{v.MARKER}"),
        ("run", "cd /volume"),
        ("run", f"rm -f /to/{v.MARKER}"),
    ]
    assert cmds[6] == [
        "docker",
        "volume",
        "create",
        "--label",
        f"me.meeshy.staging-copy-of={WEB}",
        S_WEB,
    ]


def test_dry_run_commands_unknown_engine_show_probe_and_create() -> None:
    plan = v.plan_copy([GW])
    cmds = plan.commands(["docker", "--context", "x"])
    assert all(c[:3] == ["docker", "--context", "x"] for c in cmds)
    assert _first(cmds[0][-1]) == "for i in 0; do"
    assert cmds[2][3:5] == ["volume", "create"]
    assert len(cmds) == 6


def test_argv_round_trips_through_a_shell() -> None:
    plan = _plan()
    argv = plan.copy_spec(plan.pairs[0]).argv()
    assert shlex.split(shlex.join(argv)) == argv


# --- manifests ---------------------------------------------------------------------------------

SOURCE_LISTING = """\
41ed 0 0 4096 1041379200 .
41ed 42 43 4096 981173106 ./a
41c0 0 0 4096 981173106 ./a/b
81a0 1234 5678 6 981173106 ./a/b/f1
a1ff 7 8 6 1012709106 './link' -> 'a/b/f1'
81a4 0 0 0 981173106 ./empty
89ed 0 0 2 1795475166 ./sp ace
"""
SUMS = f"""\
{v.SUMS_HEADER}
{"a" * 64}  ./a/b/f1
{"b" * 64}  ./empty
{"c" * 64}  ./sp ace
"""


def test_parse_manifest() -> None:
    m = v.parse_manifest(SOURCE_LISTING + SUMS)
    assert m.files == 4  # f1, link, empty, "sp ace"
    assert m.dirs == 2  # the root is not counted
    assert m.bytes == 6 + 0 + 2
    assert m.entries["./sp ace"] == v.Entry("file", 0o4755, 0, 0, 2, 1795475166)
    assert m.entries["'./link' -> 'a/b/f1'"].kind == "symlink"
    assert m.entries["./a/b"].mode == 0o700
    assert m.sums is not None
    assert m.sums["./sp ace"] == "c" * 64


def test_equal_manifests_compare_clean() -> None:
    a = v.parse_manifest(SOURCE_LISTING + SUMS)
    b = v.parse_manifest(SOURCE_LISTING.replace("41c0 0 0 4096", "41c0 0 0 12288") + SUMS)
    assert v.compare_manifests(a, b) == []  # directory sizes may differ


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        pytest.param(
            lambda s: s.replace("81a0 1234", "81a4 1234"), "./a/b/f1 differs (mode)", id="mode"
        ),
        pytest.param(
            lambda s: s.replace("1234 5678", "0 0"), "./a/b/f1 differs (uid, gid)", id="owner"
        ),
        pytest.param(
            lambda s: s.replace("6 981173106 ./a/b/f1", "6 1 ./a/b/f1"),
            "./a/b/f1 differs (mtime)",
            id="mtime",
        ),
        pytest.param(
            lambda s: s.replace("'a/b/f1'", "'elsewhere'"),
            "missing './link' -> 'a/b/f1'",
            id="symlink-target",
        ),
        pytest.param(
            lambda s: s.replace("81a4 0 0 0 981173106 ./empty\n", ""),
            "missing ./empty",
            id="missing",
        ),
        pytest.param(
            lambda s: s.replace(v.SUMS_HEADER, f"81a4 0 0 1 1 ./new\n{v.SUMS_HEADER}"),
            "extra ./new",
            id="extra",
        ),
        pytest.param(
            lambda s: s.replace("a" * 64, "d" * 64),
            "./a/b/f1 content differs (sha256)",
            id="content",
        ),
    ],
)
def test_manifest_differences(edit: Any, problem: str) -> None:
    src = v.parse_manifest(SOURCE_LISTING + SUMS)
    dst = v.parse_manifest(edit(SOURCE_LISTING + SUMS))
    assert problem in v.compare_manifests(src, dst)


def test_compare_limits_the_list() -> None:
    src = v.parse_manifest("".join(f"81a4 0 0 1 1 ./f{i}\n" for i in range(9)))
    problems = v.compare_manifests(src, v.parse_manifest(""), limit=3)
    assert problems == ["missing ./f0", "missing ./f1", "missing ./f2", "... 6 more"]


def test_checksums_on_one_side_only() -> None:
    src = v.parse_manifest(SOURCE_LISTING + SUMS)
    assert v.compare_manifests(src, v.parse_manifest(SOURCE_LISTING)) == [
        "checksums missing on one side"
    ]


def test_malformed_manifest_line() -> None:
    with pytest.raises(CommandFailed, match="cannot read the volume's file list at 'garbage'"):
        v.parse_manifest("garbage\n")


# --- results and progress ----------------------------------------------------------------------


def test_copy_result_rows_and_json() -> None:
    r = v.CopyResult(GW, S_GW, 12, 3, 50_000_000, 2.0, "sha256", "absent")
    assert r.mb_per_s == 25.0
    assert v.copy_rows([r]) == [[GW, S_GW, "12", "50.0 MB", "2.0", "25.0", "sha256"]]
    assert r.as_dict() == {
        "source": GW,
        "target": S_GW,
        "files": 12,
        "dirs": 3,
        "bytes": 50_000_000,
        "seconds": 2.0,
        "mb_per_s": 25.0,
        "verified": "sha256",
        "target_before": "absent",
    }
    assert v.CopyResult(GW, S_GW, 0, 0, 0, 0.0, "metadata", "empty").mb_per_s == 0.0


def test_plain_reporter_throttles(capsys: pytest.CaptureFixture[str]) -> None:
    pair = v.VolumePair(GW, S_GW)
    rep = v.PlainReporter(Output(plain=True), every=3600)
    rep.started(pair, 2_000_000)
    rep.advanced(pair, 1_000_000)  # too soon: silent
    rep.every = 0
    rep.advanced(pair, 1_000_000)
    rep.finished(pair)
    assert capsys.readouterr().out.splitlines() == [
        f"copying {GW} -> {S_GW} (2.0 MB)",
        f"  {S_GW}: 50% (1.0 MB of 2.0 MB)",
    ]


def test_reporter_for_json_and_plain() -> None:
    with v.reporter_for(Output(plain=True, json_mode=True)) as rep:
        assert isinstance(rep, v.NullReporter)
    with v.reporter_for(Output(plain=True)) as rep:
        assert isinstance(rep, v.PlainReporter)


# --- volumes.size ------------------------------------------------------------------------------

DF_VOLUMES: list[dict[str, Any]] = [
    {"Name": "meeshy-web-uploads", "Driver": "local", "UsageData": {"Size": 2048, "RefCount": 1}},
    {"Name": "meeshy-models-data", "Driver": "nfs", "UsageData": {"Size": -1, "RefCount": 0}},
    {"Name": "other", "Driver": "local", "UsageData": {"Size": 1, "RefCount": 0}},
    {"Name": "meeshy-database-data", "Driver": "local", "UsageData": None},
]
CONTAINERS: list[dict[str, Any]] = [
    {
        "Names": ["/meeshy-frontend"],
        "Mounts": [
            {"Type": "volume", "Name": "meeshy-web-uploads"},
            {"Type": "bind", "Source": "/x"},
        ],
    },
    {
        "Names": ["/meeshy-static-files"],
        "Mounts": [{"Type": "volume", "Name": "meeshy-web-uploads"}],
    },
    {"Names": ["/stranger"], "Mounts": [{"Type": "volume", "Name": "other"}]},
]


def test_usage_report_meeshy_only() -> None:
    rows = v.usage_report(DF_VOLUMES, CONTAINERS)
    assert [r.as_dict() for r in rows] == [
        {"name": "meeshy-database-data", "driver": "local", "size": None, "containers": []},
        {"name": "meeshy-models-data", "driver": "nfs", "size": None, "containers": []},
        {
            "name": "meeshy-web-uploads",
            "driver": "local",
            "size": 2048,
            "containers": ["meeshy-frontend", "meeshy-static-files"],
        },
    ]
    assert v.size_rows(rows) == [
        ["meeshy-database-data", "local", "-", "-"],
        ["meeshy-models-data", "nfs", "-", "-"],
        ["meeshy-web-uploads", "local", "2.0 kB", "meeshy-frontend\nmeeshy-static-files"],
    ]


def test_usage_report_all() -> None:
    rows = v.usage_report(DF_VOLUMES, CONTAINERS, all_volumes=True)
    assert [(r.name, r.containers) for r in rows if r.name == "other"] == [("other", ("stranger",))]
    assert len(rows) == 4


# --- task wiring (no engine) -------------------------------------------------------------------


def _run(argv: list[str]) -> int:
    ns = staging_tasks.ns
    try:
        Program(namespace=ns).run(["inv", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def no_engine(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # TCP, not a missing unix socket: the docker SDK leaks the socket of a failed unix connect
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")


def test_task_names_and_help() -> None:
    ns = staging_tasks.ns
    assert set(ns.task_names) == {"volumes", "size"}
    copy_flags = {a.name for a in staging_tasks.volumes.get_arguments()}
    assert copy_flags == {
        "volume",
        "include_models",
        "force",
        "checksum",
        "helper_image",
        "context",
        "dry_run",
        "json",
    }
    size_flags = {n for a in volumes_tasks.size.get_arguments() for n in a.names}
    assert {"all", "context", "json"} <= size_flags


@pytest.mark.parametrize(
    ("t", "helps"),
    [
        (staging_tasks.volumes, staging_tasks.COPY_HELP),
        (volumes_tasks.size, volumes_tasks.SIZE_HELP),
    ],
    ids=["volumes", "size"],
)
def test_every_flag_has_help(t: Task[Any], helps: dict[str, str]) -> None:
    # Invoke pops help entries as it builds a task's arguments: rebuild from the dict.
    fresh: Task[Any] = Task(t.body, name=t.name, help=helps, iterable=t.iterable)
    args = fresh.get_arguments()
    assert args
    assert all(a.help for a in args), [a.name for a in args if not a.help]


def test_dry_run_without_engine_prints_the_commands(
    no_engine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["volumes", "--dry-run", "--include-models"]) == 0
    captured = capsys.readouterr()
    assert "sources not checked" in captured.err
    lines = [shlex.split(line) for line in _command_lines(captured.out)]
    assert [line[:3] for line in lines if line[1] == "volume"] == [
        ["docker", "volume", "create"]
    ] * 3
    runs = [line for line in lines if line[1] == "run"]
    assert len(runs) == 1 + 3 * 4
    copies = [r for r in runs if "type=volume,source=meeshy-models-data,target=/from,readonly" in r]
    assert len(copies) == 2  # copy and finalize


def _command_lines(out: str) -> list[str]:
    """Rejoin the multi-line ``sh -c`` scripts shlex.join printed."""
    lines: list[str] = []
    for line in out.splitlines():
        if line.startswith("docker "):
            lines.append(line)
        else:
            lines[-1] += "\n" + line
    return lines


def test_dry_run_json(no_engine: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["volumes", "--dry-run", "--json", "--volume", WEB]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True
    assert data["pairs"] == [{"source": WEB, "target": S_WEB}]
    assert data["commands"][2] == [
        "docker",
        "volume",
        "create",
        "--label",
        f"me.meeshy.staging-copy-of={WEB}",
        S_WEB,
    ]


def test_refusal_needs_no_engine(no_engine: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["volumes", "--volume", S_GW]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"ERROR: refused, nothing copied: {S_GW}: is a staging volume")


@pytest.mark.parametrize("argv", [["volumes"], ["size"], ["size", "--json"]])
def test_engine_down_fails_fast(
    argv: list[str], no_engine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv) == 3
    assert "Cannot reach the Docker engine" in capsys.readouterr().err


def test_manifest_line_that_cannot_be_read_is_one_clear_error() -> None:
    with pytest.raises(CommandFailed, match="a file name with a newline in it is not supported"):
        v.parse_manifest("81a4 0 0 3 1700000000 ./ok\nbreak\n")
