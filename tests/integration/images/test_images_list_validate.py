"""images.list / images.validate on the real engine, and reading files out of an image."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import images as image_tasks
from tasks.lib.config import SCHEMA_LABEL
from tests.cli import Call
from tests.integration.registry import (
    EXAMPLE,
    build_example,
    build_image,
    example_images,
    remove_namespace,
)

__all__ = ["example_images"]  # the fixture, imported explicitly

pytestmark = pytest.mark.engine
SCHEMA = "packages/shared/prisma/schema.prisma"


def test_list_json_shows_the_session_images(call: Call, example_images: str) -> None:
    code, out, err = call(image_tasks.list_, json=True, root=str(EXAMPLE), registry=example_images)
    assert code == 0, err
    rows = {r["repository"]: r for r in json.loads(out)}
    sha = hashlib.sha256((EXAMPLE / SCHEMA).read_bytes()).hexdigest()
    gw = rows[f"{example_images}/meeshy-gateway"]
    assert {"latest", "v1.0.40"} <= set(gw["tags"])
    assert gw["version"] == "1.0.40"
    assert gw["schema_sha256"] == sha
    assert gw["schema"] == "match"
    assert rows[f"{example_images}/meeshy-translator"]["version"] == "1.0.0"
    assert rows[f"{example_images}/meeshy-web"]["schema"] == "match"


def test_list_table(call: Call, example_images: str) -> None:
    code, out, _ = call(image_tasks.list_, root=str(EXAMPLE), registry=example_images)
    assert code == 0
    assert "REPOSITORY" in out
    line = next(x for x in out.splitlines() if x.startswith(f"{example_images}/meeshy-web "))
    assert "1.0.41" in line
    assert line.rstrip().endswith("match")


def test_validate_passes_on_fresh_images(call: Call, example_images: str) -> None:
    code, out, err = call(
        image_tasks.validate, json=True, root=str(EXAMPLE), registry=example_images
    )
    assert code == 0, err
    reports = {r["service"]: r for r in json.loads(out)}
    assert set(reports) == {"gateway", "translator", "web"}
    assert all(r["ok"] for r in reports.values())
    gw_checks = [c["check"] for c in reports["gateway"]["checks"]]
    assert "file /app/dist/packages/shared/prisma/schema.prisma" in gw_checks
    assert "file /app/packages/shared/prisma/schema.prisma" in gw_checks
    assert "file /workspace/shared/prisma/schema.prisma" in [
        c["check"] for c in reports["translator"]["checks"]
    ]
    assert not any(c["check"].startswith("file") for c in reports["web"]["checks"])


def test_validate_missing_image_fails_naming_it(call: Call, example_images: str) -> None:
    code, out, err = call(
        image_tasks.validate,
        root=str(EXAMPLE),
        registry=example_images,
        service=["web"],
        tag="t4-no-such-tag",
    )
    assert code == 1
    assert f"{example_images}/meeshy-web:t4-no-such-tag" in err
    assert "no local image" in err
    assert "FAIL" in out.upper()


def test_read_files_without_running(example_images: str) -> None:
    import docker

    from tasks.lib.images.files import read_image_files

    client = docker.from_env()
    ref = f"{example_images}/meeshy-gateway:latest"

    def made_from_it() -> set[str]:  # the engine is shared: look at this image's only
        return {str(c.id) for c in client.containers.list(all=True, filters={"ancestor": ref})}

    try:
        before = made_from_it()
        files = read_image_files(
            client, ref, ["/app/packages/shared/prisma/schema.prisma", "/app/nope"]
        )
        assert files["/app/packages/shared/prisma/schema.prisma"] == (EXAMPLE / SCHEMA).read_bytes()
        assert files["/app/nope"] is None
        assert made_from_it() == before  # created, never started, removed again
    finally:
        client.close()


def test_read_files_leaves_no_volume_of_an_image_that_declares_one(
    example_images: str, tmp_path: Path
) -> None:
    # found by review: an image with a VOLUME (the real gateway may declare one) got an
    # anonymous volume at `containers.create`, and `remove(force=True)` left it behind: one
    # more dangling volume on the engine per `images.validate`

    ref = f"{example_images}/meeshy-gateway:t4volume"
    dockerfile = (
        f"FROM {example_images}/meeshy-gateway:latest\nVOLUME /t4-data /app/packages/shared\n"
    )
    with built_image(tmp_path, ref, dockerfile) as client:
        check_no_volume_left(client, ref)


def check_no_volume_left(client: Any, ref: str) -> None:
    from tasks.lib.images.files import read_image_files

    def anonymous() -> set[str]:  # the engine is shared: only unnamed (64-hex) volumes
        return {
            str(v.name)
            for v in client.volumes.list()
            if len(v.name) == 64 and all(ch in "0123456789abcdef" for ch in v.name)
        }

    before = anonymous()
    files = read_image_files(client, ref, ["/app/packages/shared/prisma/schema.prisma"])
    assert files["/app/packages/shared/prisma/schema.prisma"] == (EXAMPLE / SCHEMA).read_bytes()
    assert anonymous() - before == set()


@contextlib.contextmanager
def built_image(tmp_path: Path, ref: str, dockerfile: str) -> Iterator[Any]:
    """``ref`` built from ``dockerfile``; yields an SDK client; the image is removed after."""
    import docker

    build_image(tmp_path, ref, dockerfile)
    client = docker.from_env()
    try:
        yield client
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(ref)
        client.close()


@pytest.fixture
def changed_copy(example_copy: Path) -> Iterator[tuple[Path, str]]:
    """gateway and translator built from a private copy under their own namespace; then the
    copy's schema changes. Yields (root, namespace); the images are removed afterwards."""
    namespace = "t4val"
    remove_namespace(namespace)
    try:
        build_example(example_copy, namespace, ("gateway", "translator"))
        schema = example_copy / SCHEMA
        schema.write_text(schema.read_text() + "\nmodel T4Extra {\n  id String @id\n}\n")
        yield example_copy, namespace
    finally:
        remove_namespace(namespace)


def test_validate_fails_after_the_schema_changes(
    call: Call, changed_copy: tuple[Path, str]
) -> None:
    root, namespace = changed_copy
    code, out, err = call(
        image_tasks.validate,
        json=True,
        root=str(root),
        registry=namespace,
        service=["gateway", "translator"],
    )
    assert code == 4  # not the current schema's images: as staging.tag
    reports = {r["service"]: r for r in json.loads(out)}
    for svc in ("gateway", "translator"):
        failed = {c["check"]: c["detail"] for c in reports[svc]["checks"] if c["verdict"] == "fail"}
        assert failed[SCHEMA_LABEL] == "built from another schema"
        assert any(k.startswith("file ") for k in failed)
        # labels other than the schema still pass (the copy is not a git checkout: "local")
        assert "org.opencontainers.image.version" not in failed
        assert "org.opencontainers.image.revision" not in failed
    assert f"{namespace}/meeshy-gateway:v1.0.40" in err
    assert f"{namespace}/meeshy-translator:v1.0.0" in err
    assert "another schema" in err
    # the table form names the image and the reason too
    code, out, err = call(
        image_tasks.validate, root=str(root), registry=namespace, service=["gateway"]
    )
    assert code == 4
    assert "built from another schema" in out
    assert f"{namespace}/meeshy-gateway:v1.0.40" in out


@pytest.fixture
def other_registry(sdk: Any) -> Iterator[str]:
    """A meeshy image under another registry namespace (busybox retagged); removed after."""
    namespace = f"t4other{uuid.uuid4().hex[:8]}"
    ref = f"{namespace}/meeshy-web:latest"
    sdk.images.get("busybox:latest").tag(ref)
    try:
        yield namespace
    finally:
        sdk.images.remove(ref)


def test_list_shows_only_the_registry_asked_for(
    call: Call, example_images: str, other_registry: str
) -> None:
    """``images.list --registry X`` lists X's meeshy images, not every registry's."""
    code, out, err = call(image_tasks.list_, json=True, root=str(EXAMPLE), registry=example_images)
    assert code == 0, err
    repos = {r["repository"] for r in json.loads(out)}
    assert f"{example_images}/meeshy-web" in repos
    assert all(r.startswith(f"{example_images}/") for r in repos), repos
    code, out, err = call(image_tasks.list_, json=True, root=str(EXAMPLE), registry=other_registry)
    assert code == 0, err
    assert [(r["repository"], r["tags"]) for r in json.loads(out)] == [
        (f"{other_registry}/meeshy-web", ["latest"])
    ]


def test_read_files_never_loads_a_folder_or_a_huge_file_whole(
    example_images: str, tmp_path: Path
) -> None:
    # found by review: get_archive's whole tar was joined in memory before its first member
    # was looked at, so an image whose schema path is a folder of 200 MB (or a file of 200 MB)
    # cost images.validate 400+ MB of memory, and a big enough one killed it
    import tracemalloc

    from tasks.lib.images.files import MAX_FILE, read_image_files

    ref = f"{example_images}/meeshy-gateway:t4huge"
    dockerfile = (
        "FROM busybox\nRUN mkdir -p /d/schema.prisma && "
        "dd if=/dev/zero of=/d/schema.prisma/big bs=1M count=200 2>/dev/null && "
        "dd if=/dev/zero of=/f bs=1M count=200 2>/dev/null\n"
    )
    with built_image(tmp_path, ref, dockerfile) as client:
        tracemalloc.start()
        try:
            files = read_image_files(client, ref, ["/d/schema.prisma"])
            folder_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            big = read_image_files(client, ref, ["/f"])["/f"]
            file_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert files == {"/d/schema.prisma": None}
    assert folder_peak < 16 << 20
    assert big is not None and len(big) == MAX_FILE < 200 << 20
    assert file_peak < 3 * MAX_FILE
