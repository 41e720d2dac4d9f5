"""staging.volumes and volumes.size against a real engine, on volumes private to these tests
(``meeshy-t3-<id>-*`` and their ``meeshy-staging-t3-<id>-*`` twins, removed on teardown).

Volumes are read back without the code under test: as tarballs (``get_archive``: type, mode,
owner, mtime, link target, content hash) and as busybox listings (nanosecond times)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tasks import staging as staging_tasks
from tasks import volumes as volumes_tasks
from tasks.lib.errors import ConfigError, Interrupted
from tasks.lib.progress import NullProgress, Status
from tasks.lib.volumes import copy
from tasks.lib.volumes.plan import lock_name, marker_name, plan_copy
from tests.cli import Call
from tests.volumes_engine import BYTES, FILES, IMAGE, POPULATE, Vols

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.engine


@pytest.fixture
def vols(sdk: docker.DockerClient) -> Iterator[Vols]:
    v = Vols(sdk)
    try:
        yield v
    finally:
        v.cleanup()


def _copy(
    sdk: docker.DockerClient, volumes: list[str], progress: Any = None, **kw: Any
) -> list[copy.CopyResult]:
    existing = copy.volumes(sdk)
    plan = plan_copy(volumes, helper_image=IMAGE, existing=existing, **kw)
    with copy.CopySession(sdk, plan, existing) as session:
        session.prepare()
        run = session.run(progress or NullProgress())
    return list(run.results)


@pytest.mark.parametrize("checksum", [False, True], ids=["metadata", "md5"])
def test_copy_is_exact_and_verified(vols: Vols, sdk: docker.DockerClient, checksum: bool) -> None:
    src = vols.create("uploads")
    before = vols.snapshot(src)
    listing = vols.listing(src)

    [result] = _copy(sdk, [src], checksum=checksum)

    assert result.status == Status.COPIED
    assert (result.source, result.target) == (src, vols.twin("uploads"))
    assert (result.files, result.dirs, result.bytes) == (FILES, 3, BYTES)
    assert result.verified == ("md5" if checksum else "metadata")
    assert result.before == "absent"
    assert vols.snapshot(result.target) == before  # type, mode, owner, mtime, link, content
    assert vols.listing(result.target) == listing  # and nanosecond times
    assert vols.snapshot(src) == before
    assert sdk.volumes.get(result.target).attrs["Labels"] == {"me.meeshy.staging-copy-of": src}
    assert vols.helpers_left() == []
    assert vols.volumes() == {src, result.target}  # no marker volume left


def test_two_volumes_copy_at_once(vols: Vols, sdk: docker.DockerClient) -> None:
    a, b = vols.create("gw"), vols.create("web")
    seen: list[str] = []

    class Watch(NullProgress):
        def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
            # both helpers are told to go before either finishes
            seen.append(key)
            assert all(vols.listing(t) is not None for t in seen)

    results = _copy(sdk, [a, b], Watch())
    assert [r.status for r in results] == [Status.COPIED, Status.COPIED]
    assert seen == [vols.twin("gw"), vols.twin("web")]
    for r in results:
        assert vols.listing(r.target) == vols.listing(r.source)


def test_a_big_tree_is_split_between_workers_and_a_flat_folder_is_not(
    vols: Vols, sdk: docker.DockerClient
) -> None:
    """Thousands of files: in subfolders the helper splits them between its workers; in one
    folder (two cp -a creating entries in one directory slow each other) one cp -a."""
    make = (
        "mkdir -p /v/tree /v/flat && i=0 && while [ $i -lt 2500 ]; do "
        "mkdir -p /v/tree/d$((i % 9)) && echo $i > /v/tree/d$((i % 9))/f$i && "
        "echo $i > /v/flat/f$i; i=$((i + 1)); done"
    )
    both = vols.create("both", make)
    tree = vols.create("tree", make + " && rm -r /v/flat")
    flat = vols.create("flat", make + " && rm -r /v/tree")
    existing = copy.volumes(sdk)
    plan = plan_copy([tree, flat, both], helper_image=IMAGE, existing=existing)
    with copy.CopySession(sdk, plan, existing) as session:
        session.prepare()
        works = [job.work for job in session.jobs]
        cpus = int(session.jobs[0].caps["cpus"])
        run = session.run(NullProgress())
    assert works[0] is not None and works[1] is not None and works[2] is not None
    if cpus > 1:
        assert works[0].dirs == (b"./tree",)
        assert works[0].workers == min(cpus, 4)
        assert works[2].workers > 1
    assert works[1].whole
    for src, result in zip((tree, flat, both), run.results, strict=True):
        assert result.status == Status.COPIED
        assert vols.listing(result.target) == vols.listing(src)


def test_force_makes_an_exact_copy(vols: Vols, sdk: docker.DockerClient) -> None:
    src = vols.create("uploads")
    target = vols.twin("uploads")
    sdk.volumes.create(target)
    vols.run(target, "echo stale > /v/stale && mkdir -p /v/docs && echo old > /v/docs/readme.txt")
    stale = vols.snapshot(target)

    with pytest.raises(ConfigError, match=f"{target}: target is not empty"):
        _copy(sdk, [src])
    assert vols.snapshot(target) == stale  # refused before anything ran
    assert vols.helpers_left() == []

    [result] = _copy(sdk, [src], force=True, checksum=True)
    assert result.before == "populated"
    assert vols.listing(target) == vols.listing(src)


def test_force_refuses_a_target_a_running_container_uses(
    vols: Vols, sdk: docker.DockerClient
) -> None:
    from docker.types import Mount

    src = vols.create("uploads")
    target = vols.twin("uploads")
    sdk.volumes.create(target)
    vols.run(target, "echo live > /v/live")
    live = vols.snapshot(target)
    sdk.containers.run(
        IMAGE,
        ["sleep", "60"],
        mounts=[Mount("/data", target, type="volume")],
        network_mode="none",
        detach=True,
        name=vols.name("user"),
    )
    with pytest.raises(ConfigError, match=f"{target}: in use by running container"):
        _copy(sdk, [src], force=True)
    assert vols.snapshot(target) == live  # nothing touched
    assert vols.helpers_left() == []


def test_a_target_bound_to_the_source_folder_is_refused_and_the_source_untouched(
    vols: Vols, sdk: docker.DockerClient, call: Call, tmp_path: Path
) -> None:
    """Volumes bound to host folders (driver_opts o=bind, device=...): a target that is the
    source's folder, a folder inside it, or one holding it would be written (with --force:
    emptied) through /to. Refused, even with --force; the source's folder stays as it was."""
    prod = tmp_path / "prod"
    (prod / "uploads-staging").mkdir(parents=True)
    (prod / "photo.jpg").write_bytes(b"precious")

    def bound(name: str, folder: Path) -> str:
        opts = {"type": "none", "o": "bind", "device": str(folder)}
        sdk.volumes.create(name, driver="local", driver_opts=opts)
        return name

    src = bound(vols.name("bound"), prod)
    inner = bound(vols.name("inner"), prod / "uploads-staging")
    pairs = [
        (src, bound(vols.twin("same"), prod)),  # the same folder
        (src, bound(vols.twin("inside"), prod / "uploads-staging")),  # inside the source
        (inner, bound(vols.twin("outer"), prod)),  # holding the source
    ]
    for source, target in pairs:
        for force in (False, True):
            code, _, err = call(
                staging_tasks.volumes,
                volume=[f"{source}:{target}"],
                helper_image=IMAGE,
                force=force,
            )
            assert code == 2, err
            [line] = err.strip().splitlines()
            assert line.startswith(f"ERROR: refused, nothing copied: {target}: is the same host ")
            assert f"folder as {source}" in line
    assert sorted(str(p.relative_to(prod)) for p in prod.rglob("*")) == [
        "photo.jpg",
        "uploads-staging",
    ]
    assert (prod / "photo.jpg").read_bytes() == b"precious"
    assert not [v for v in vols.volumes() if v.endswith(".copy-incomplete")]
    assert vols.wait_helpers_gone() == []


def test_a_target_bound_into_another_pairs_source_is_refused_before_anything(
    vols: Vols, sdk: docker.DockerClient, call: Call, tmp_path: Path
) -> None:
    """Each helper sees its own pair only: staging web's target bound into prod gateway's
    folder (another pair of the same run) would be written through. The run is refused
    before any helper starts or any volume is created, and both sources stay as they were."""
    gateway, web = tmp_path / "gateway", tmp_path / "web"
    (gateway / "web-staging").mkdir(parents=True)
    (gateway / "photo.jpg").write_bytes(b"precious")
    web.mkdir()
    (web / "avatar.png").write_bytes(b"web's")

    def bound(name: str, folder: Path) -> str:
        opts = {"type": "none", "o": "bind", "device": str(folder) + "/"}  # normalised
        sdk.volumes.create(name, driver="local", driver_opts=opts)
        return name

    src_gw, src_web = bound(vols.name("gw"), gateway), bound(vols.name("web"), web)
    dst_web = bound(vols.twin("web"), gateway / "web-staging")  # inside gateway's folder
    dst_gw = vols.twin("gw")  # not there yet: it would be created
    before = vols.volumes()
    code, _, err = call(
        staging_tasks.volumes,
        volume=[f"{src_gw}:{dst_gw}", f"{src_web}:{dst_web}"],
        helper_image=IMAGE,
        force=True,
    )
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line == (
        f"ERROR: refused, nothing copied: {dst_web}: is bound to {gateway}/web-staging, the "
        f"host folder of {src_gw} ({gateway}), one inside it or holding it: a copy would "
        "write that source; give the target a folder of its own (`docker volume inspect` "
        "both)"
    )
    assert vols.volumes() == before  # no target, no marker created
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "gateway",
        "gateway/photo.jpg",
        "gateway/web-staging",
        "web",
        "web/avatar.png",
    ]
    assert vols.helpers_left() == []


def test_refusals_change_nothing(vols: Vols, sdk: docker.DockerClient, call: Call) -> None:
    src = vols.create("uploads")
    staging = vols.twin("uploads")
    sdk.volumes.create(staging)
    missing = vols.name("missing")
    names_before = copy.volume_names(sdk)

    # one missing source among good ones: nothing starts, not even the good pair
    code, _, err = call(staging_tasks.volumes, volume=[src, missing], helper_image=IMAGE)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("ERROR: refused, nothing copied: ")
    assert f"{missing}: no such volume" in line
    code, _, err = call(staging_tasks.volumes, volume=[staging])
    assert (code, f"{staging}: is a staging volume" in err) == (2, True)
    code, _, err = call(staging_tasks.volumes, volume=[f"{src}:{src}"])
    assert (code, "source and target are the same volume" in err) == (2, True)
    assert copy.volume_names(sdk) == names_before
    assert set(vols.snapshot(staging)) == {"."}  # still empty
    assert vols.helpers_left() == []


def test_missing_helper_image_is_refused_first(vols: Vols, sdk: docker.DockerClient) -> None:
    src = vols.create("uploads")
    existing = copy.volumes(sdk)
    plan = plan_copy([src], helper_image="meeshy-t3-no-such-image", existing=existing)
    with (
        pytest.raises(ConfigError, match="helper image 'meeshy-t3-no-such-image'"),
        copy.CopySession(sdk, plan, existing) as session,
    ):
        session.prepare()
    assert vols.twin("uploads") not in copy.volume_names(sdk)


def test_source_is_mounted_read_only(vols: Vols, sdk: docker.DockerClient) -> None:
    src = vols.create("uploads")
    before = vols.snapshot(src)
    existing = copy.volumes(sdk)
    plan = plan_copy([src], helper_image=IMAGE, existing=existing)
    with copy.CopySession(sdk, plan, existing) as session:
        session.prepare()  # the helper runs, waiting for "go"
        helper = sdk.containers.get(lock_name(vols.twin("uploads")))
        mounts = {m["Destination"]: m["RW"] for m in helper.attrs["Mounts"]}
        assert mounts == {"/from": False, "/to": True}
        code, out = helper.exec_run(["sh", "-c", "echo x > /from/evil"])
        assert code != 0
        assert b"Read-only file system" in out
        session.run(NullProgress())
    assert vols.snapshot(src) == before
    assert vols.helpers_left() == []


# --- interrupted and failed copies -------------------------------------------------------------


class _CtrlC(NullProgress):
    """Ctrl-C as soon as the helper says it is copying."""

    def update(self, key: str, *, stage: str | None = None, **_: Any) -> None:
        if stage == "copy":
            raise KeyboardInterrupt


BIG = "for i in 1 2 3 4 5 6; do head -c 50000000 /dev/zero > /v/big$i; done"


def test_interrupted_copy_is_not_done_and_a_rerun_completes_it(
    vols: Vols, sdk: docker.DockerClient, call: Call
) -> None:
    src = vols.create("models")
    vols.run(src, BIG)
    target = vols.twin("models")

    with pytest.raises(Interrupted) as err:
        _copy(sdk, [src], _CtrlC())
    assert err.value.exit_code == 130
    assert f"NOT done, marked incomplete (a rerun redoes them): {target}" in err.value.message
    assert "copied and verified: none" in err.value.message
    assert vols.helpers_left() == []  # killed and removed at once
    assert marker_name(target) in copy.volume_names(sdk)

    # the rerun needs no --force, redoes the copy and reports it done
    code, out, _ = call(staging_tasks.volumes, volume=[src], helper_image=IMAGE, json=True)
    assert code == 0
    [report] = json.loads(out)
    assert report["target_before"] == "incomplete"
    assert report["files"] == FILES + 6
    assert vols.listing(target) == vols.listing(src)
    assert marker_name(target) not in copy.volume_names(sdk)


def test_legacy_in_volume_marker_means_incomplete(vols: Vols, sdk: docker.DockerClient) -> None:
    src = vols.create("uploads")
    [first] = _copy(sdk, [src])
    # what a killed run of the previous version left: its marker file in the target
    vols.run(first.target, "touch /v/.meeshy-staging-copy-incomplete && echo junk > /v/junk")
    [second] = _copy(sdk, [src])
    assert second.before == "incomplete"
    assert vols.listing(first.target) == vols.listing(src)


def test_a_copy_that_does_not_verify_is_never_reported_done(
    vols: Vols, sdk: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that loses a file (stands for a bad disk, or a source written meanwhile): the
    helper's program gets one more line after its copy workers, before the manifest."""
    from tasks.lib.volumes import script

    src = vols.create("uploads")
    target = vols.twin("uploads")
    good = script.render()
    lossy = good.replace("wait_for work\n", "wait_for work\nrm -f /to/docs/readme.txt\n")
    assert lossy != good
    monkeypatch.setattr(script, "render", lambda: lossy)
    existing = copy.volumes(sdk)
    plan = plan_copy([src], helper_image=IMAGE, existing=existing, force=True)
    with copy.CopySession(sdk, plan, existing) as session:
        session.prepare()
        run = session.run(NullProgress())
    monkeypatch.setattr(script, "render", lambda: good)
    [result] = run.results
    assert result.status == Status.FAILED
    assert result.error.startswith(f"does not match {src}: ")
    assert "missing ./docs/readme.txt" in result.error
    failed = copy.failure(run)
    assert failed is not None
    assert f"{target}: does not match" in failed.line()
    assert marker_name(target) in copy.volume_names(sdk)  # still incomplete
    assert vols.helpers_left() == []
    # a plain rerun (no --force) with a good helper redoes it and verifies
    [again] = _copy(sdk, [src])
    assert again.before == "incomplete"
    assert vols.listing(target) == vols.listing(src)


@pytest.mark.parametrize(
    ("links", "verified"), [(True, "md5"), (False, "content")], ids=["md5", "byte-for-byte"]
)
def test_checksum_finds_content_that_metadata_cannot(
    vols: Vols,
    sdk: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    links: bool,
    verified: str,
) -> None:
    """One byte changed after the copy, size and times put back: only --checksum sees it,
    by md5 of both sides (a source with symlinks) or diff -rq (without)."""
    from tasks.lib.volumes import script

    populate = POPULATE if links else POPULATE.replace("ln -s", ": ").replace("chown -h", ":")
    src = vols.create("uploads", populate)
    good = script.render()
    blob = "/to/./docs/nested/deep/blob.bin"
    # a byte that differs from the random one there (X, or Y when it was X: 1 run in 256
    # flipped nothing and failed)
    flip = (
        f'c=X; [ "$(dd if={blob} bs=1 skip=10 count=1 2>/dev/null)" = X ] && c=Y; '
        f"printf $c | dd of={blob} bs=1 seek=10 conv=notrunc 2>/dev/null && "
        f"touch -r /from/./docs/nested/deep/blob.bin {blob}\n"
    )
    monkeypatch.setattr(
        script, "render", lambda: good.replace("wait_for work\n", "wait_for work\n" + flip)
    )
    [meta_only] = _copy(sdk, [src])  # metadata alone: looks equal
    assert meta_only.status == Status.COPIED
    plan = plan_copy([src], helper_image=IMAGE, existing=copy.volume_names(sdk), force=True,
                     checksum=True)  # fmt: skip
    with copy.CopySession(sdk, plan, copy.volumes(sdk)) as session:
        session.prepare()
        [result] = session.run(NullProgress()).results
    assert result.status == Status.FAILED
    expected = "./docs/nested/deep/blob.bin content differs (md5)" if links else "content differs"
    assert expected in result.error
    monkeypatch.setattr(script, "render", lambda: good)
    [again] = _copy(sdk, [src], checksum=True)
    assert (again.status, again.verified, again.before) == (Status.COPIED, verified, "incomplete")


# --- the CLI, and volumes.size ---------------------------------------------------------------


def test_cli_copy_json_and_dry_run(vols: Vols, sdk: docker.DockerClient, call: Call) -> None:
    src = vols.create("uploads")
    target = vols.twin("uploads")

    code, out, _ = call(staging_tasks.volumes, volume=[src], dry_run=True, helper_image=IMAGE)
    assert code == 0
    assert f"docker volume create --label me.meeshy.staging-copy-of={src} {target}" in out
    assert target not in copy.volume_names(sdk)  # the dry run changed nothing

    code, out, _ = call(
        staging_tasks.volumes, volume=[src], checksum=True, json=True, helper_image=IMAGE
    )
    assert code == 0
    [report] = json.loads(out)
    assert report["target"] == target
    assert (report["files"], report["bytes"], report["verified"]) == (FILES, BYTES, "md5")
    assert report["status"] == "copied"
    assert report["seconds"] > 0
    assert report["kinds"] == {"symlink": 2, "setuid/setgid": 1}

    code, out, err = call(staging_tasks.volumes, volume=[src], helper_image=IMAGE)
    assert code == 2  # populated now
    assert "pass --force" in err

    code, out, err = call(staging_tasks.volumes, volume=[src], force=True, helper_image=IMAGE)
    assert code == 0
    assert f"[{target}] copied in" in out
    assert "staging volumes" in out


def test_size_shows_the_volume_and_its_container(
    vols: Vols, sdk: docker.DockerClient, call: Call
) -> None:
    from docker.types import Mount

    src = vols.create("uploads")
    user = vols.name("user")
    sdk.containers.create(
        IMAGE,
        ["true"],
        name=user,
        network_mode="none",
        mounts=[Mount("/data", src, type="volume", read_only=True)],
    )
    code, out, _ = call(volumes_tasks.size, json=True)
    assert code == 0
    data = {r["name"]: r for r in json.loads(out)}
    assert data[src]["containers"] == [user]
    assert data[src]["driver"] == "local"
    assert data[src]["size"] >= BYTES
    assert all("meeshy" in name for name in data)

    code, out, _ = call(volumes_tasks.size)
    assert any(src in line and user in line for line in out.splitlines())


def test_size_all(vols: Vols, sdk: docker.DockerClient, call: Call) -> None:
    other = f"t3-{vols.run_id}-plain"
    sdk.volumes.create(other)
    _, out, _ = call(volumes_tasks.size, json=True, all_=True)
    assert other in {r["name"] for r in json.loads(out)}
    _, out, _ = call(volumes_tasks.size, json=True)
    assert other not in {r["name"] for r in json.loads(out)}
