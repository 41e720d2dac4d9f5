"""staging.volumes without an engine: the plan, its refusals, the helper container's exact
argv, the dry run, and the task wiring."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from invoke import Program

from tasks import staging as staging_tasks
from tasks import volumes as volumes_tasks
from tasks.lib.errors import ConfigError
from tasks.lib.volumes import plan as p
from tasks.lib.volumes import script

GW, WEB, MODELS = "meeshy-gateway-uploads", "meeshy-web-uploads", "meeshy-models-data"
S_GW, S_WEB, S_MODELS = (
    "meeshy-staging-gateway-uploads",
    "meeshy-staging-web-uploads",
    "meeshy-staging-models-data",
)
ALL = {GW, WEB, MODELS}


def _pairs(plan: p.CopyPlan) -> list[tuple[str, str]]:
    return [(x.source, x.target) for x in plan.pairs]


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
    plan = p.plan_copy(
        volumes,
        include_models=include_models,
        existing=ALL | {"meeshy-redis-data", "meeshy-database-data"},
    )
    assert _pairs(plan) == expected
    assert plan.helper_image == "alpine"
    assert not plan.force
    assert not plan.checksum


def test_plan_without_engine_skips_the_existence_check() -> None:
    assert _pairs(p.plan_copy(["meeshy-nowhere"], existing=None)) == [
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
        pytest.param(
            [f"{GW}:{S_WEB}.copy-incomplete"],
            ALL,
            f"{S_WEB}.copy-incomplete: is the name of a copy marker",
            id="marker-as-target",
        ),
    ],
)
def test_plan_refusals(volumes: list[str], existing: set[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        p.plan_copy(volumes, existing=existing)
    line = err.value.line()
    assert line.startswith("refused, nothing copied: ")
    assert message in line
    assert "\n" not in line


def test_plan_reports_every_refused_pair_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        p.plan_copy([GW, S_WEB, f"{MODELS}:{MODELS}"], existing={WEB, MODELS, S_WEB})
    line = err.value.line()
    assert f"{GW}: no such volume" in line
    assert f"{S_WEB}: is a staging volume" in line
    assert f"{MODELS}: source and target are the same volume" in line


@pytest.mark.parametrize("arg", ["", ":x", f"{GW}:"])
def test_bad_volume_argument(arg: str) -> None:
    with pytest.raises(ConfigError, match="--volume"):
        p.plan_copy([arg])


@pytest.mark.parametrize(
    ("arg", "bad"),
    [
        ("bad name", "bad name"),
        ("../etc", "../etc"),
        ("-x", "-x"),
        (f"{GW}:meeshy-staging-a/b", "meeshy-staging-a/b"),
        ("naïve", "naïve"),
    ],
)
def test_invalid_volume_name_names_the_value(arg: str, bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        p.plan_copy([arg])
    line = err.value.line()
    assert repr(bad) in line
    assert "is not a valid volume name" in line
    assert "docker.ensure" not in line


def test_empty_helper_image() -> None:
    with pytest.raises(ConfigError, match="--helper-image"):
        p.plan_copy([], helper_image=" ")


# --- the helper container -------------------------------------------------------------------------


def _plan(**kw: Any) -> p.CopyPlan:
    return p.plan_copy([GW], existing={GW}, **kw)


def test_helper_argv_mounts_source_read_only_and_is_named_after_the_target() -> None:
    plan = _plan(helper_image="busybox:1.36", checksum=True)
    argv = plan.helper(plan.pairs[0]).argv(["docker", "--context", "prod"])
    assert argv == [
        "docker",
        "--context",
        "prod",
        "run",
        "--rm",
        "-i",
        "--name",
        f"meeshy-volume-copy-{S_GW}",
        "--network",
        "none",
        "--label",
        "me.meeshy.helper=volume-copy",
        "--label",
        f"me.meeshy.volume-copy.target={S_GW}",
        "--label",
        f"me.meeshy.volume-copy.source={GW}",
        "--mount",
        f"type=volume,source={GW},target=/from,readonly",
        "--mount",
        f"type=volume,source={S_GW},target=/to",
        "busybox:1.36",
        "sh",
        "-c",
        script.render(),
        "sh",
        "1",
    ]
    assert shlex.split(shlex.join(argv)) == argv


def test_one_name_per_target_is_the_lock() -> None:
    plan = p.plan_copy([GW, f"{WEB}:meeshy-staging-x"], existing=ALL)
    names = [plan.helper(pair).name for pair in plan.pairs]
    assert names == [f"meeshy-volume-copy-{S_GW}", "meeshy-volume-copy-meeshy-staging-x"]
    assert p.marker_name(S_GW) == f"{S_GW}.copy-incomplete"


def test_the_script_never_writes_the_source_and_has_no_marker_in_the_target() -> None:
    text = script.render()
    assert "__" not in text  # every placeholder filled
    for line in text.splitlines():
        if "/from" in line:
            assert not any(w in line for w in ("rm ", "touch /from", "> /from", ">/from"))
    # the marker is a volume, never a file in /to; the legacy in-volume marker is only read
    assert [line for line in text.splitlines() if "copy-incomplete" in line] == [
        "[ -e /to/.meeshy-staging-copy-incomplete ] && "
        "[ ! -e /from/.meeshy-staging-copy-incomplete ] && state=legacy-incomplete"
    ]
    assert "cp -a /from/. /to/" in text


def test_dry_run_commands_known_volumes() -> None:
    plan = p.plan_copy([], existing=ALL | {S_GW})
    cmds = plan.commands(existing=ALL | {S_GW})
    summary = [c[1:3] if c[1] == "volume" else [c[1], c[c.index("--name") + 1]] for c in cmds]
    assert summary == [
        ["volume", "create"],  # the marker of gateway's (existing) twin
        ["run", f"meeshy-volume-copy-{S_GW}"],
        ["volume", "rm"],
        ["volume", "create"],  # web's twin does not exist yet
        ["volume", "create"],
        ["run", f"meeshy-volume-copy-{S_WEB}"],
        ["volume", "rm"],
    ]
    assert cmds[0] == [
        "docker",
        "volume",
        "create",
        "--label",
        f"me.meeshy.copy-incomplete-of={S_GW}",
        f"{S_GW}.copy-incomplete",
    ]
    assert cmds[3] == [
        "docker",
        "volume",
        "create",
        "--label",
        f"me.meeshy.staging-copy-of={WEB}",
        S_WEB,
    ]
    assert cmds[2] == ["docker", "volume", "rm", f"{S_GW}.copy-incomplete"]


def test_dry_run_commands_unknown_engine_show_the_create() -> None:
    plan = p.plan_copy([GW])
    cmds = plan.commands(["docker", "--context", "x"])
    assert all(c[:3] == ["docker", "--context", "x"] for c in cmds)
    assert [c[3:5] for c in cmds] == [
        ["volume", "create"],
        ["volume", "create"],
        ["run", "--rm"],
        ["volume", "rm"],
    ]


# --- task wiring (no engine) -------------------------------------------------------------------


def _run(argv: list[str], ns: Any = None) -> int:
    try:
        Program(namespace=ns or staging_tasks.ns).run(["inv", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def no_engine(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # TCP, not a missing unix socket: the docker SDK leaks the socket of a failed unix connect
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")


def test_task_flags_and_help() -> None:
    # Invoke pops a task's help entries as it builds its arguments: read them once.
    copy_args = staging_tasks.volumes.get_arguments()
    size_args = volumes_tasks.size.get_arguments()
    for args in (copy_args, size_args):
        assert all(a.help for a in args), [a.name for a in args if not a.help]
    assert {a.name for a in copy_args} == {
        "volume",
        "include_models",
        "force",
        "checksum",
        "helper_image",
        "context",
        "dry_run",
        "json",
    }
    assert {n for a in size_args for n in a.names} == {"all", "context", "json"}
    assert set(volumes_tasks.ns.task_names) == {"size"}
    assert "volumes" in staging_tasks.ns.task_names


def test_dry_run_without_engine_prints_the_commands(
    no_engine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["volumes", "--dry-run", "--include-models"]) == 0
    captured = capsys.readouterr()
    assert "sources not checked" in captured.err
    lines = [shlex.split(line) for line in _command_lines(captured.out)]
    assert [line[1:3] for line in lines if line[1] == "volume"] == [
        ["volume", "create"],
        ["volume", "create"],
        ["volume", "rm"],
    ] * 3
    runs = [line for line in lines if line[1] == "run"]
    assert len(runs) == 3  # one helper per volume
    assert f"type=volume,source={MODELS},target=/from,readonly" in runs[2]


def _command_lines(out: str) -> list[str]:
    """Rejoin the multi-line ``sh -c`` scripts shlex.join printed."""
    lines: list[str] = []
    for line in out.splitlines():
        if line.startswith("docker "):
            lines.append(line)
        elif lines:
            lines[-1] += "\n" + line
    return lines


def test_dry_run_json(no_engine: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["volumes", "--dry-run", "--json", "--volume", WEB]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True
    assert data["pairs"] == [{"source": WEB, "target": S_WEB}]
    assert data["commands"][0] == [
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


@pytest.mark.parametrize(
    ("ns", "argv"),
    [
        (staging_tasks.ns, ["volumes"]),
        (volumes_tasks.ns, ["size"]),
        (volumes_tasks.ns, ["size", "--json"]),
    ],
    ids=["volumes", "size", "size-json"],
)
def test_engine_down_fails_fast(
    ns: Any, argv: list[str], no_engine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv, ns) == 3
    assert "Cannot reach the Docker engine" in capsys.readouterr().err
