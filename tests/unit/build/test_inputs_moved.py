"""moved(): the key made again after a build names the first input that is not what it was
when the key was made, content or stamp (an in-place save of the same bytes still counts:
BuildKit may have read the file in between)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tasks.lib.build.flow import freshness, sources_of
from tasks.lib.build.inputs import InputKey, InputVanished, compute, moved
from tasks.lib.build.plan import BuildOptions, ImageBuild, Target, plan_builds
from tasks.lib.config import resolve


def _gateway(root: Path) -> ImageBuild:
    s = resolve({}, env={}, project_dir=root, root=str(root))
    return plan_builds(s, [Target("gateway")], BuildOptions()).images[0]


def _key(image: ImageBuild) -> InputKey:
    return compute(image, sources_of(image), local_ids={}, schema_sha256=None)


def _tick() -> None:
    time.sleep(0.02)  # past the file system's coarse timestamp clock


def test_nothing_changed_is_none(example_copy: Path) -> None:
    img = _gateway(example_copy)
    assert moved(_key(img), _key(img)) is None


def test_same_bytes_saved_again_is_named(example_copy: Path) -> None:
    img = _gateway(example_copy)
    before = _key(img)
    src = example_copy / "services/gateway/src/server.ts"
    _tick()
    src.write_bytes(src.read_bytes())
    after = _key(img)
    assert after.sha256 == before.sha256  # the content is the same ...
    assert moved(before, after) == str(src)  # ... but BuildKit may have read another


def test_a_file_replaced_by_rename_is_named_not_its_folder(example_copy: Path) -> None:
    img = _gateway(example_copy)
    before = _key(img)
    src = example_copy / "services/gateway/src/server.ts"
    tmp = src.with_name("server.ts.tmp")
    tmp.write_text("// B\n")
    os.replace(tmp, src)  # an editor's atomic save: new inode, the folder moves too
    assert moved(before, _key(img)) == str(src)


def test_a_mode_change_is_named(example_copy: Path) -> None:
    img = _gateway(example_copy)
    before = _key(img)
    pkg = example_copy / "services/gateway/package.json"
    pkg.chmod(0o600)
    assert moved(before, _key(img)) == str(pkg)


def test_the_dockerfile_and_the_ignore_file_are_inputs(example_copy: Path) -> None:
    img = _gateway(example_copy)
    before = _key(img)
    _tick()
    ignore = example_copy / ".dockerignore"
    ignore.write_bytes(ignore.read_bytes())
    assert moved(before, _key(img)) == str(ignore)
    before = _key(img)
    beside = example_copy / "services/gateway/Dockerfile.dockerignore"
    beside.write_text("**/*.md\n")  # did not exist: now it decides what is sent
    assert moved(before, _key(img)) == str(beside)


def test_an_ignored_file_saved_in_place_is_not_an_input(example_copy: Path) -> None:
    notes = example_copy / "services/gateway/src/NOTES.md"
    notes.write_text("one\n")
    img = _gateway(example_copy)
    before = _key(img)
    _tick()
    notes.write_text("two\n")
    assert moved(before, _key(img)) is None


def test_freshness_can_make_the_key_again(example_copy: Path) -> None:
    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    plan = plan_builds(s, [Target("gateway")], BuildOptions())
    fresh = freshness(plan, None)
    assert fresh.inputs_moved(plan.images[0]) is None
    src = example_copy / "services/gateway/src/server.ts"
    src.write_text(src.read_text() + "// changed\n")
    # named as a user names it: relative to the build context
    assert fresh.inputs_moved(plan.images[0]) == "services/gateway/src/server.ts"
    src.unlink()
    assert fresh.inputs_moved(plan.images[0]) == "services/gateway/src/server.ts"


def test_a_file_gone_between_listing_and_reading_is_one_clear_error(example_copy: Path) -> None:
    img = _gateway(example_copy)
    listed = ["services/gateway/src", "services/gateway/src/server.ts.t"]  # listed, then gone
    with pytest.raises(InputVanished) as exc:
        compute(img, sources_of(img), local_ids={}, schema_sha256=None, files=listed)
    assert exc.value.exit_code == 1
    assert exc.value.line() == (
        "services/gateway/src/server.ts.t disappeared while the input key of the build was "
        "made (a save, a checkout or a build tool writing there): rerun once the files are "
        "settled"
    )


def test_a_file_created_and_removed_in_a_copied_folder_is_seen(example_copy: Path) -> None:
    img = _gateway(example_copy)
    before = _key(img)
    probe = example_copy / "services/gateway/src/4913"  # vim's probe file, gone again
    _tick()
    probe.write_text("x")
    probe.unlink()
    assert moved(before, _key(img)) == str(example_copy / "services/gateway/src")


def test_the_folders_a_source_names_are_watched() -> None:
    from tasks.lib.build.inputs import Sources, _source_folders
    from tasks.lib.gate import ContextSource

    def src(path: str) -> ContextSource:
        return ContextSource("s", 1, "COPY", path)

    sources = Sources(
        paths=(src("services/gateway/src"), src("./apps/*/package.json"), src("a/b?/c"), "")
    )
    assert _source_folders(sources) == ["services/gateway/src", "apps", "a", "."]


def test_a_failure_after_the_build_fails_that_image_only(example_copy: Path) -> None:
    from tasks.lib.build.runner import BuildResult, run_builds
    from tasks.lib.errors import EngineUnavailable
    from tasks.lib.progress import NullProgress, Status

    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    images = plan_builds(s, [Target("gateway"), Target("web")], BuildOptions()).images

    def land(r: BuildResult) -> None:  # the engine went away while gateway was being tagged
        if r.image.name == "gateway":
            raise EngineUnavailable("the engine went away")

    results = run_builds(images, lambda _img: iter(["#1 DONE"]), NullProgress(), land=land)
    assert [(r.status, r.error) for r in results] == [
        (Status.FAILED, "built, but not tagged: the engine went away"),
        (Status.BUILT, None),
    ]


def test_a_dockerfile_or_schema_changed_after_the_plan_began_is_seen(example_copy: Path) -> None:
    """The gate reads the Dockerfile (and the plan hashes the schema) before the key does: a
    save in between would give an image the gate never saw under a key that matches the
    checkout. The key keeps the plan's stamps of those files, so the check after the build
    sees it."""
    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    for rel in ("services/gateway/Dockerfile", "packages/shared/prisma/schema.prisma"):
        plan = plan_builds(s, [Target("gateway")], BuildOptions())
        _tick()
        f = example_copy / rel
        f.write_text(f.read_text() + "\n# saved after the gate\n")
        fresh = freshness(plan, None)  # made from the new bytes ...
        assert fresh.inputs_moved(plan.images[0]) == rel  # ... but stamped as the plan saw it


def test_a_file_the_gate_read_and_saved_before_the_key_read_it_is_seen(
    example_copy: Path,
) -> None:
    """web's gate reads package.json build scripts (does the build run prisma generate?):
    saved between that read and the key's, the image would hold a script the gate never
    judged under a key that matches the checkout. The gate's stamps (taken before its reads)
    go with the plan, so the check after the build names the file."""
    from tasks.lib.build import flow

    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    plan = plan_builds(s, [Target("web")], BuildOptions())
    reports = flow.gate(plan)
    pkg = example_copy / "apps/web/package.json"
    assert str(pkg) in dict(reports[0].read)  # the gate read it ...
    plan = flow.with_gate_reads(plan, reports)
    _tick()
    pkg.write_text(pkg.read_text().replace('"build"', '"build:old"'))  # ... then it changed
    fresh = freshness(plan, None)  # the key is made from the new bytes ...
    assert fresh.inputs_moved(plan.images[0]) == "apps/web/package.json"  # ... and seen


def test_the_gate_reads_are_kept_once_and_only_for_gated_images(example_copy: Path) -> None:
    from tasks.lib.build import flow

    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    plan = plan_builds(s, [Target("gateway"), Target("web")], BuildOptions())
    merged = flow.with_gate_reads(plan, flow.gate(plan))
    for before, after in zip(plan.images, merged.images, strict=True):
        paths = [p for p, _ in after.early_stamps]
        assert len(paths) == len(set(paths))  # the schema is stamped by the plan already
        assert after.early_stamps[: len(before.early_stamps)] == before.early_stamps
    assert [p for p, _ in merged.images[1].early_stamps][-2:] == [
        str(example_copy / "packages/shared/package.json"),
        str(example_copy / "apps/web/package.json"),
    ]
    skipped = plan_builds(s, [Target("web")], BuildOptions(), skip_schema_check=True)
    assert flow.with_gate_reads(skipped, []) == skipped


def test_the_gate_reads_go_to_the_image_their_report_names_in_any_order(
    example_copy: Path,
) -> None:
    from tasks.lib.build import flow

    s = resolve({}, env={}, project_dir=example_copy, root=str(example_copy))
    plan = plan_builds(s, [Target("gateway"), Target("web")], BuildOptions())
    reports = flow.gate(plan)
    assert flow.with_gate_reads(plan, reports[::-1]) == flow.with_gate_reads(plan, reports)
