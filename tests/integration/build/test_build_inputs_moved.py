"""An input that changes while BuildKit builds (an editor saving, a checkout, a base image
retagged): the image may hold either version under a key naming one. The image is built
untagged and tagged only once its key, made again, is the same: otherwise the build fails and
no tag ever names it. Real engine; the change is made at a known moment, from the build's own
log stream (the real buildx stream, only watched)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.build import flow
from tasks.lib.build.plan import BUILD_RUN_LABEL, BuildOptions, ImageBuild, Target
from tasks.lib.build.runner import whales_stream
from tasks.lib.config import resolve
from tasks.lib.engine import connect
from tasks.lib.progress import NullProgress, Status
from tests.cli import run_inv
from tests.integration.registry import (
    LocalRegistry,
    build_other_image,
    build_unrelated_image,
    own_base,
    own_namespace,
    registry,
)

__all__ = ["registry"]  # the fixture, imported explicitly

pytestmark = pytest.mark.engine

SRC = "services/gateway/src/server.ts"
Hook = Callable[[], object]
AfterHook = Callable[[ImageBuild], object]


@pytest.fixture
def namespace() -> Iterator[str]:
    with own_namespace("t8mv") as ns:
        yield ns


def _build_while_changing(
    root: Path,
    ns: str,
    change: Hook,
    after: AfterHook | None = None,
    *,
    push: bool = False,
    before: Hook | None = None,
) -> flow.BuildRun:
    """build.gateway in process, calling ``change()`` once BuildKit's first line is out (and
    ``after()`` once buildx has ended, before the key is made again; ``before()`` once the
    key is made, before buildx starts)."""
    settings = resolve({}, env={}, project_dir=root, root=str(root), registry=ns)
    plan = flow.plan(settings, [Target("gateway")], BuildOptions(push=push))
    with connect(plan.engine) as client:
        fresh = flow.freshness(plan, client)
        plan = flow.labelled(plan, fresh)
        if before is not None:
            before()
        real = whales_stream(plan.engine)

        def stream(image: ImageBuild) -> Iterator[str]:
            for n, line in enumerate(real(image)):
                if n == 0:
                    change()
                yield line
            if after is not None:
                after(image)

        return flow.execute(plan, fresh, NullProgress(), client, stream=stream)


def _ids(sdk: Any, ns: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for tag in (f"{ns}/meeshy-gateway:v1.0.40", f"{ns}/meeshy-gateway:latest"):
        found = sdk.api.images(filters={"reference": tag})
        out[tag] = found[0]["Id"] if found else None
    return out


def _untagged_builds(sdk: Any) -> set[str]:
    """Untagged images a build of this project made (its run label)."""
    return {i["Id"] for i in sdk.api.images(filters={"dangling": True, "label": BUILD_RUN_LABEL})}


def _in_image(ref: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", ref, "dist/src/server.ts"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _built_then_edited(root: Path, ns: str, sdk: Any) -> dict[str, str | None]:
    """gateway built once (its tags' image IDs returned), then a source edited: the next
    build is needed."""
    r = run_inv("build.gateway", "--root", str(root), "--registry", ns, "--json")
    assert r.code == 0, r
    before = _ids(sdk, ns)
    assert all(before.values())
    src = root / SRC
    src.write_text(src.read_text() + "// one\n")
    return before


def _failed(run: flow.BuildRun, what: str) -> None:
    (result,) = run.results
    assert result.status is Status.FAILED
    assert result.moved == what
    assert result.error == (
        f"{what} changed during the build, so the image may not be what its input key says: "
        "no tag was written; rerun once the files are settled"
    )
    assert flow.failure(run) is not None


def test_a_source_saved_during_the_build_fails_it_and_no_tag_moves(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    root, src = example_copy, example_copy / SRC
    before = _built_then_edited(root, namespace, sdk)
    untagged = _untagged_builds(sdk)
    seen: list[dict[str, str | None]] = []
    # another save while BuildKit runs, in place (same inode, same size)
    run = _build_while_changing(
        root,
        namespace,
        lambda: src.write_text(src.read_text()),
        after=lambda _image: seen.append(_ids(sdk, namespace)),
    )
    _failed(run, SRC)
    assert seen == [before]  # buildx has ended and still no tag names its image ...
    assert _ids(sdk, namespace) == before  # ... nor after the check
    assert _untagged_builds(sdk) == untagged  # and the untrusted image is gone

    # the rerun builds it (the old image's key is not the checkout's), and it is the checkout
    r = run_inv("build.gateway", "--root", str(root), "--registry", namespace, "--json")
    assert r.code == 0, r
    assert [d["result"] for d in json.loads(r.out)] == ["built"]
    assert _in_image(f"{namespace}/meeshy-gateway:latest") == src.read_text()
    r = run_inv("build.gateway", "--root", str(root), "--registry", namespace, "--json")
    assert [d["result"] for d in json.loads(r.out)] == ["up to date"]


def test_a_file_added_under_a_copied_folder_is_named(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    new = example_copy / "services/gateway/src/added.ts"  # under a COPY source, not ignored
    run = _build_while_changing(example_copy, namespace, lambda: new.write_text("export {}\n"))
    _failed(run, "services/gateway/src/added.ts")
    assert _ids(sdk, namespace) == dict.fromkeys(_ids(sdk, namespace))  # no tag at all


def test_a_file_created_and_removed_again_during_the_build_is_seen(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    # vim writes and removes a probe file named 4913 on every save: BuildKit may send it
    probe = example_copy / "services/gateway/src/4913"
    run = _build_while_changing(
        example_copy,
        namespace,
        lambda: probe.write_text("stray\n"),
        after=lambda _image: probe.unlink(),
    )
    _failed(run, "services/gateway/src")  # the folder the source names: its stamp moved


@pytest.fixture
def base(example_copy: Path, sdk: Any) -> Iterator[str]:
    """gateway's Dockerfile FROM ``<base>:latest``, a tag of busybox of the test's own (the
    test adds ``<base>:other``); both tags go afterwards."""
    with own_base(sdk, [example_copy / "services/gateway/Dockerfile"], "t8mvbase") as name:
        yield name


def test_a_base_image_retagged_during_the_build_is_seen(
    example_copy: Path, namespace: str, sdk: Any, base: str
) -> None:
    build_other_image(example_copy / "other-base", f"{base}:other")
    run = _build_while_changing(
        example_copy,
        namespace,
        lambda: sdk.api.tag(f"{base}:other", base, "latest", force=True),
    )
    _failed(run, f"base image {base}")


def test_a_base_image_retagged_and_back_during_the_build_is_seen(
    example_copy: Path, namespace: str, sdk: Any, base: str
) -> None:
    """The base's tag names another image when BuildKit resolves it, and the key's image
    again when the build ends: the tag check sees nothing, the layers do (the built image
    does not start with the key's base), and no tag is written. (An image built FROM the
    key's base starts with its layers: that retag-and-back is not seen.)"""
    build_unrelated_image(example_copy / "other-base", f"{base}:other")
    untagged = _untagged_builds(sdk)
    run = _build_while_changing(
        example_copy,
        namespace,
        lambda: None,
        before=lambda: sdk.api.tag(f"{base}:other", base, "latest", force=True),
        after=lambda _image: sdk.api.tag("busybox:latest", base, "latest", force=True),
    )
    _failed(run, f"base image {base}")
    assert _ids(sdk, namespace) == dict.fromkeys(_ids(sdk, namespace))  # no tag at all
    assert _untagged_builds(sdk) == untagged  # the image built on the other base is gone
    # the same build with the base left alone is tagged
    run = _build_while_changing(example_copy, namespace, lambda: None)
    assert [r.status for r in run.results] == [Status.BUILT], run.results[0].error


def test_an_ignored_file_written_during_the_build_changes_nothing(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    notes = example_copy / "services/gateway/src/NOTES.md"  # .dockerignore excludes *.md
    notes.write_text("before\n")
    run = _build_while_changing(
        example_copy, namespace, lambda: notes.write_text("during the build\n")
    )
    (result,) = run.results
    assert result.status is Status.BUILT, result.error
    assert all(_ids(sdk, namespace).values())


def test_a_pushed_build_whose_inputs_moved_loses_its_local_tags(
    example_copy: Path, registry: LocalRegistry, sdk: Any
) -> None:
    root, src = example_copy, example_copy / SRC
    ns = f"{registry.host}/t8mvpush{uuid.uuid4().hex[:6]}"
    try:
        run = _build_while_changing(root, ns, lambda: src.write_text(src.read_text()), push=True)
        (result,) = run.results
        assert result.status is Status.FAILED
        assert result.error == (
            f"{SRC} changed during the build, so the image may not be what its input key "
            "says; it was pushed: rerun with --force once the files are settled"
        )
        # the registry has it (that cannot be taken back); the engine keeps no tag of it, so
        # a later build without --push does not call it up to date
        assert _ids(sdk, ns) == dict.fromkeys(_ids(sdk, ns))
    finally:
        for tag in _ids(sdk, ns):
            subprocess.run(["docker", "image", "rm", tag], check=False, capture_output=True)


def test_the_built_image_pruned_before_its_tags_fails_the_build(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    """Built untagged, an image is dangling until it is tagged: a `docker image prune` by
    someone else right then removes it. That is a failure, never "built" with no tag."""
    before = _built_then_edited(example_copy, namespace, sdk)

    def prune(image: ImageBuild) -> None:
        run_id = dict(image.labels)[BUILD_RUN_LABEL]
        (built,) = sdk.api.images(filters={"label": f"{BUILD_RUN_LABEL}={run_id}"})
        sdk.api.remove_image(built["Id"])

    run = _build_while_changing(example_copy, namespace, lambda: None, after=prune)
    (result,) = run.results
    assert result.status is Status.FAILED
    assert result.error == (
        "the image it built was removed before it could be tagged (a `docker image prune` "
        "meanwhile?): no tag was written; rerun"
    )
    assert _ids(sdk, namespace) == before
