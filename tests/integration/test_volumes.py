"""staging.volumes and volumes.size against a real engine, on volumes private to these tests
(``meeshy-t3-<id>-*`` and their ``meeshy-staging-t3-<id>-*`` twins, removed on teardown).

Volumes are read back as tarballs (``container.get_archive``), so the comparison does not use
the code under test: every entry's type, mode, owner, mtime, link target and content hash."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from invoke import Context, Exit, Program

from tasks import staging as staging_tasks
from tasks.lib import volumes as v
from tasks.lib.errors import CommandFailed, ConfigError
from tasks.lib.output import Output

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.engine

IMAGE = "alpine"

POPULATE = r"""
set -eu
cd /v
mkdir -p docs/nested/deep
printf 'hello\n' > docs/readme.txt
chmod 640 docs/readme.txt
chown 1234:5678 docs/readme.txt
printf '#!/bin/sh\n' > run.sh
chmod 4755 run.sh
: > empty
head -c 100000 /dev/urandom > docs/nested/deep/blob.bin
chmod 600 docs/nested/deep/blob.bin
printf 'x\n' > 'with space'
ln -s docs/readme.txt link
chown -h 1234:5678 link
ln -s /nowhere dangling
chmod 700 docs/nested
chown 42:43 docs
touch -d '2001-02-03 04:05:06' docs/readme.txt empty run.sh docs/nested/deep/blob.bin \
  docs/nested/deep docs/nested docs 'with space'
touch -h -d '2002-03-04 05:06:07' link
touch -d '2003-01-01 00:00:00' /v
"""
FILES = 7  # readme, run.sh, empty, blob, 'with space', link, dangling
BYTES = 6 + 10 + 0 + 100000 + 2

Snapshot = dict[str, tuple[Any, ...]]


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    import docker

    c = docker.from_env()
    yield c
    c.close()


@dataclasses.dataclass
class Vols:
    client: docker.DockerClient
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:6])

    def name(self, what: str) -> str:
        return f"meeshy-t3-{self.run_id}-{what}"

    def twin(self, what: str) -> str:
        return f"meeshy-staging-t3-{self.run_id}-{what}"

    def create(self, what: str, script: str = POPULATE) -> str:
        name = self.name(what)
        self.client.volumes.create(name)
        self.run(name, script)
        return name

    def run(self, volume: str, script: str) -> None:
        from docker.types import Mount

        self.client.containers.run(
            IMAGE,
            ["sh", "-c", script],
            mounts=[Mount("/v", volume, type="volume")],
            network_mode="none",
            remove=True,
        )

    def snapshot(self, volume: str) -> Snapshot:
        """Every entry of ``volume`` read as a tarball from a never-started container."""
        from docker.types import Mount

        container = self.client.containers.create(
            IMAGE,
            ["true"],
            mounts=[Mount("/v", volume, type="volume", read_only=True)],
            network_mode="none",
        )
        try:
            stream, _ = container.get_archive("/v")
            data = b"".join(stream)
        finally:
            container.remove(force=True)
        snap: Snapshot = {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                content = b""
                if m.isfile():
                    f = tar.extractfile(m)
                    assert f is not None
                    content = f.read()
                name = "." if m.name == "v" else m.name.removeprefix("v/")
                snap[name] = (
                    m.type,
                    m.mode,
                    m.uid,
                    m.gid,
                    int(m.mtime),
                    m.linkname,
                    m.size if m.isfile() else 0,
                    hashlib.sha256(content).hexdigest(),
                )
        return snap

    def cleanup(self) -> None:
        for c in self.client.containers.list(all=True):
            mounts = c.attrs.get("Mounts") or []
            if any(self.run_id in str(m.get("Name", "")) for m in mounts) or self.run_id in (
                c.name or ""
            ):
                c.remove(force=True)
        for vol in self.client.volumes.list():
            if f"t3-{self.run_id}-" in str(vol.name):
                vol.remove(force=True)


@pytest.fixture
def vols(client: docker.DockerClient) -> Iterator[Vols]:
    helper = Vols(client)
    yield helper
    helper.cleanup()


def _copy(
    client: docker.DockerClient,
    volumes: list[str],
    *,
    reporter: v.CopyReporter | None = None,
    **kw: Any,
) -> list[v.CopyResult]:
    existing = v.volume_names(client)
    plan = v.plan_copy(volumes, helper_image=IMAGE, existing=existing, **kw)
    return v.execute_copy(
        client, plan, existing=existing, out=Output(plain=True), reporter=reporter
    )


def _helpers_left(client: docker.DockerClient) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": "me.meeshy.helper=volume-copy"}))


def _cli(argv: list[str]) -> int:
    try:
        Program(namespace=staging_tasks.ns).run(["inv", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# --- a faithful copy -----------------------------------------------------------------------------


@pytest.mark.parametrize("checksum", [False, True], ids=["metadata", "sha256"])
def test_copy_is_exact_and_the_source_untouched(
    vols: Vols, client: docker.DockerClient, checksum: bool
) -> None:
    src = vols.create("uploads")
    before = vols.snapshot(src)
    assert before["run.sh"][1] & 0o7777 == 0o4755
    assert before["docs/readme.txt"][2:5] == (1234, 5678, 981173106)
    assert before["link"][2:6] == (1234, 5678, 1015218367, "docs/readme.txt")

    [result] = _copy(client, [src], checksum=checksum)

    assert (result.source, result.target) == (src, vols.twin("uploads"))
    assert (result.files, result.dirs, result.bytes) == (FILES, 3, BYTES)
    assert result.verified == ("sha256" if checksum else "metadata")
    assert result.before == "absent"
    copy = vols.snapshot(result.target)
    assert copy == before  # file for file: type, mode, owner, mtime, link, content
    assert v.MARKER not in copy
    assert vols.snapshot(src) == before
    assert client.volumes.get(result.target).attrs["Labels"] == {v.COPY_OF_LABEL: src}
    assert _helpers_left(client) == []


def test_force_makes_an_exact_copy(vols: Vols, client: docker.DockerClient) -> None:
    src = vols.create("uploads")
    target = vols.twin("uploads")
    client.volumes.create(target)
    vols.run(target, "echo stale > /v/stale && mkdir -p /v/docs && echo old > /v/docs/readme.txt")
    stale = vols.snapshot(target)

    with pytest.raises(ConfigError, match=f"{target}: target is not empty"):
        _copy(client, [src])
    assert vols.snapshot(target) == stale  # refused before anything ran

    [result] = _copy(client, [src], force=True, checksum=True)
    assert result.before == "populated"
    assert vols.snapshot(target) == vols.snapshot(src)


def test_force_refuses_a_target_a_running_container_uses(
    vols: Vols, client: docker.DockerClient
) -> None:
    from docker.types import Mount

    src = vols.create("uploads")
    target = vols.twin("uploads")
    client.volumes.create(target)
    vols.run(target, "echo live > /v/live")
    live = vols.snapshot(target)
    user = client.containers.run(
        IMAGE,
        ["sleep", "60"],
        mounts=[Mount("/data", target, type="volume")],
        network_mode="none",
        detach=True,
        name=f"meeshy-t3-{vols.run_id}-user",
    )
    try:
        with pytest.raises(ConfigError, match=f"{target}: in use by running container"):
            _copy(client, [src], force=True)
        assert vols.snapshot(target) == live  # nothing touched
    finally:
        user.remove(force=True)


# --- refusals, through the task ------------------------------------------------------------------


def _refused(capsys: pytest.CaptureFixture[str], **flags: Any) -> str:
    with pytest.raises(Exit) as exit_:
        staging_tasks.volumes(Context(), **flags)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_refusals_change_nothing(
    vols: Vols, client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    src = vols.create("uploads")
    staging = vols.twin("uploads")
    client.volumes.create(staging)
    missing = vols.name("missing")
    names_before = v.volume_names(client)

    # one missing source among good ones: nothing starts, not even the good pair
    line = _refused(capsys, volume=[vols.name("uploads"), missing], helper_image=IMAGE)
    assert line.startswith("ERROR: refused, nothing copied: ")
    assert f"{missing}: no such volume" in line
    assert f"{staging}: is a staging volume" in _refused(capsys, volume=[staging])
    assert "source and target are the same volume" in _refused(capsys, volume=[f"{src}:{src}"])
    assert v.volume_names(client) == names_before
    assert set(vols.snapshot(staging)) == {"."}  # still empty
    assert _helpers_left(client) == []


def test_missing_helper_image_is_refused_first(vols: Vols, client: docker.DockerClient) -> None:
    src = vols.create("uploads")
    with pytest.raises(ConfigError, match="helper image 'meeshy-t3-no-such-image'"):
        existing = v.volume_names(client)
        plan = v.plan_copy([src], helper_image="meeshy-t3-no-such-image", existing=existing)
        v.execute_copy(client, plan, existing=existing, out=Output(plain=True))
    assert vols.twin("uploads") not in v.volume_names(client)


def test_source_is_mounted_read_only(vols: Vols, client: docker.DockerClient) -> None:
    src = vols.create("uploads")
    before = vols.snapshot(src)
    plan = v.plan_copy([src], helper_image=IMAGE, existing={src})
    evil = dataclasses.replace(plan.copy_spec(plan.pairs[0]), script="echo x > /from/evil")
    with pytest.raises(CommandFailed) as err:
        v.run_helper(client, evil)
    assert "Read-only file system" in err.value.output
    assert vols.snapshot(src) == before
    assert _helpers_left(client) == []


# --- interrupted copies -----------------------------------------------------------------------


class _InterruptingReporter(v.NullReporter):
    """Ctrl-C as soon as the copy is seen running."""

    def __init__(self) -> None:
        self.calls = 0

    def advanced(self, pair: v.VolumePair, done: int) -> None:
        self.calls += 1
        raise KeyboardInterrupt


def test_interrupted_copy_is_not_done_and_a_rerun_completes_it(
    vols: Vols, client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    big = POPULATE + "\nfor i in 1 2 3 4 5 6; do head -c 50000000 /dev/zero > /v/big$i; done\n"
    src = vols.create("models", big)
    target = vols.twin("models")
    reporter = _InterruptingReporter()

    with pytest.raises(KeyboardInterrupt):
        _copy(client, [src], reporter=reporter)
    assert reporter.calls == 1
    assert _helpers_left(client) == []  # the copy container was removed mid-copy
    plan = v.plan_copy([src], helper_image=IMAGE)
    assert v.target_states(client, plan, v.volume_names(client)) == {target: "incomplete"}
    assert v.MARKER in vols.snapshot(target)

    # the rerun needs no --force, redoes the copy and reports it done
    capsys.readouterr()
    staging_tasks.volumes(Context(), volume=[src], helper_image=IMAGE, json=True)
    [report] = json.loads(capsys.readouterr().out)
    assert report["target_before"] == "incomplete"
    assert report["files"] == FILES + 6
    after = vols.snapshot(target)
    assert v.MARKER not in after
    assert after == vols.snapshot(src)


def test_leftover_marker_alone_means_incomplete(vols: Vols, client: docker.DockerClient) -> None:
    src = vols.create("uploads")
    [first] = _copy(client, [src])
    vols.run(first.target, f"touch /v/{v.MARKER} && rm /v/docs/readme.txt && echo junk > /v/junk")
    [second] = _copy(client, [src])
    assert second.before == "incomplete"
    assert vols.snapshot(first.target) == vols.snapshot(src)


# --- the CLI, and volumes.size ---------------------------------------------------------------


def test_cli_copy_json_and_dry_run(
    vols: Vols, client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    src = vols.create("uploads")
    target = vols.twin("uploads")

    assert _cli(["volumes", "--volume", src, "--dry-run", "--helper-image", IMAGE]) == 0
    printed = capsys.readouterr().out
    assert f"docker volume create --label me.meeshy.staging-copy-of={src} {target}" in printed
    assert target not in v.volume_names(client)  # the dry run changed nothing

    assert _cli(["volumes", "--volume", src, "--checksum", "--json", "--helper-image", IMAGE]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["target"] == target
    assert (report["files"], report["bytes"], report["verified"]) == (FILES, BYTES, "sha256")
    assert report["seconds"] > 0
    assert report["mb_per_s"] >= 0

    assert _cli(["volumes", "--volume", src, "--helper-image", IMAGE]) == 2  # populated now
    assert "pass --force" in capsys.readouterr().err


def test_size_shows_the_volume_and_its_container(
    vols: Vols, client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from docker.types import Mount

    src = vols.create("uploads")
    user = vols.name("user")
    client.containers.create(
        IMAGE,
        ["true"],
        name=user,
        network_mode="none",
        mounts=[Mount("/data", src, type="volume", read_only=True)],
    )

    rows = {r.name: r for r in v.volume_usage(client)}
    assert rows[src].containers == (user,)
    size = rows[src].size
    assert size is not None
    assert size >= BYTES
    assert all("meeshy" in name for name in rows)

    assert _cli(["size", "--json"]) == 0
    data = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert data[src]["containers"] == [user]
    assert data[src]["driver"] == "local"

    assert _cli(["size"]) == 0
    table = capsys.readouterr().out
    assert any(src in line and user in line for line in table.splitlines())


def test_size_all(vols: Vols, client: docker.DockerClient) -> None:
    other = f"t3-{vols.run_id}-plain"
    client.volumes.create(other)
    assert other in {r.name for r in v.volume_usage(client, all_volumes=True)}
    assert other not in {r.name for r in v.volume_usage(client)}


class _TamperingReporter(v.NullReporter):
    """Changes the target right after the copy, before verification: stands for any copy
    that does not match (a source written during the copy, a bad disk)."""

    def __init__(self, vols: Vols) -> None:
        self.vols = vols

    def finished(self, pair: v.VolumePair) -> None:
        self.vols.run(pair.target, "rm /v/docs/readme.txt && echo junk > /v/junk")


def test_a_copy_that_does_not_verify_is_never_reported_done(
    vols: Vols, client: docker.DockerClient
) -> None:
    src = vols.create("uploads")
    target = vols.twin("uploads")
    with pytest.raises(CommandFailed, match=f"{target} does not match {src}"):
        _copy(client, [src], reporter=_TamperingReporter(vols))
    plan = v.plan_copy([src], helper_image=IMAGE)
    assert v.target_states(client, plan, v.volume_names(client)) == {target: "incomplete"}
    assert v.MARKER in vols.snapshot(target)
    # a plain rerun (no --force) redoes it and verifies
    [result] = _copy(client, [src])
    assert result.before == "incomplete"
    assert vols.snapshot(target) == vols.snapshot(src)
