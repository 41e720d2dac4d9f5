"""An input that changes while BuildKit builds (an editor saving, a checkout): the image may
hold either version under a key naming one, so the build fails and its tags go back to what
they named before. Real engine; the change is made at a known moment, from the build's own
log stream (the real buildx stream, only watched)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.build import flow
from tasks.lib.build.plan import BuildOptions, ImageBuild, Target
from tasks.lib.build.runner import whales_stream
from tasks.lib.config import resolve
from tasks.lib.engine import connect
from tasks.lib.progress import NullProgress, Status
from tests.cli import run_inv
from tests.integration.registry import own_namespace

pytestmark = pytest.mark.engine

SRC = "services/gateway/src/server.ts"


@pytest.fixture
def namespace() -> Iterator[str]:
    with own_namespace("t8mv") as ns:
        yield ns


def _build_while_changing(root: Path, ns: str, change: Any, after: Any = None) -> flow.BuildRun:
    """build.gateway in process, calling ``change()`` once BuildKit's first line is out (and
    ``after()`` once the image is loaded, before the key is made again)."""
    settings = resolve({}, env={}, project_dir=root, root=str(root), registry=ns)
    plan = flow.plan(settings, [Target("gateway")], BuildOptions())
    with connect(plan.engine) as client:
        fresh = flow.freshness(plan, client)
        plan = flow.labelled(plan, fresh)
        real = whales_stream(plan.engine)

        def stream(image: ImageBuild) -> Iterator[str]:
            for n, line in enumerate(real(image)):
                if n == 0:
                    change()
                yield line
            if after is not None:
                after()

        return flow.execute(plan, fresh, NullProgress(), client, stream=stream)


def _ids(sdk: Any, ns: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for tag in (f"{ns}/meeshy-gateway:v1.0.40", f"{ns}/meeshy-gateway:latest"):
        found = sdk.api.images(filters={"reference": tag})
        out[tag] = found[0]["Id"] if found else None
    return out


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


def test_a_source_changed_during_the_build_fails_it_and_puts_the_tags_back(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    root, src = example_copy, example_copy / SRC
    before = _built_then_edited(root, namespace, sdk)
    # another save while BuildKit runs, in place (same inode, same size)
    run = _build_while_changing(root, namespace, lambda: src.write_text(src.read_text()))
    (result,) = run.results
    assert result.status is Status.FAILED
    assert result.moved == SRC
    assert result.error == (
        f"{SRC} changed during the build, so the image may not be what its input key says: "
        "its tags were put back as they were; rerun once the files are settled"
    )
    assert flow.failure(run) is not None
    assert _ids(sdk, namespace) == before  # as before the build: no tag names the new image

    # the rerun builds it (the old image's key is not the checkout's), and it is the checkout
    r = run_inv("build.gateway", "--root", str(root), "--registry", namespace, "--json")
    assert r.code == 0, r
    assert [d["result"] for d in json.loads(r.out)] == ["built"]
    assert _in_image(f"{namespace}/meeshy-gateway:latest") == src.read_text()
    r = run_inv("build.gateway", "--root", str(root), "--registry", namespace, "--json")
    assert [d["result"] for d in json.loads(r.out)] == ["up to date"]


def test_tags_that_did_not_exist_are_removed_and_a_new_file_counts(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    root = example_copy
    new = root / "services/gateway/src/added.ts"  # under a COPY source, not ignored
    run = _build_while_changing(root, namespace, lambda: new.write_text("export {}\n"))
    (result,) = run.results
    assert result.status is Status.FAILED
    assert result.moved == "services/gateway/src/added.ts"
    assert _ids(sdk, namespace) == dict.fromkeys(_ids(sdk, namespace))  # no tag at all


def test_an_ignored_file_written_during_the_build_changes_nothing(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    root = example_copy
    notes = root / "services/gateway/src/NOTES.md"  # .dockerignore excludes *.md
    notes.write_text("before\n")
    run = _build_while_changing(root, namespace, lambda: notes.write_text("during the build\n"))
    (result,) = run.results
    assert result.status is Status.BUILT, result.error
    assert all(_ids(sdk, namespace).values())


def test_a_tag_another_build_moved_meanwhile_is_left_alone(
    example_copy: Path, namespace: str, sdk: Any
) -> None:
    root, src = example_copy, example_copy / SRC
    before = _built_then_edited(root, namespace, sdk)
    latest = f"{namespace}/meeshy-gateway:latest"

    def another_build() -> None:  # a second run moved :latest once this build had loaded
        sdk.api.tag("busybox:latest", f"{namespace}/meeshy-gateway", "latest", force=True)

    run = _build_while_changing(
        root, namespace, lambda: src.write_text(src.read_text()), after=another_build
    )
    (result,) = run.results
    assert result.status is Status.FAILED
    assert result.error == (
        f"{SRC} changed during the build, so the image may not be what its input key says: "
        f"{namespace}/meeshy-gateway:v1.0.40 put back as it was, {latest} left as another "
        "build has since set it; rerun once the files are settled"
    )
    ids, version = _ids(sdk, namespace), f"{namespace}/meeshy-gateway:v1.0.40"
    assert ids[version] == before[version]
    assert ids[latest] == sdk.api.inspect_image("busybox:latest")["Id"]


def test_a_signal_while_the_tags_go_back_waits_for_all_of_them(
    example_copy: Path, namespace: str, sdk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    from tasks.lib.errors import Interrupted
    from tasks.lib.images import tags

    root, src = example_copy, example_copy / SRC
    before = _built_then_edited(root, namespace, sdk)
    real_rollback = tags.rollback

    def signalled_rollback(client: Any, actions: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # CI cancels the job right then
        return real_rollback(client, actions)

    monkeypatch.setattr(tags, "rollback", signalled_rollback)
    with pytest.raises(Interrupted) as exc:
        _build_while_changing(root, namespace, lambda: src.write_text(src.read_text()))
    assert exc.value.exit_code == 128 + signal.SIGTERM
    assert exc.value.line() == (
        "interrupted by SIGTERM: nothing was built; not built (stopped, tags unchanged): gateway"
    )
    assert _ids(sdk, namespace) == before  # every tag back before the signal was acted on
