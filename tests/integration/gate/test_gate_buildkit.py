"""The gate's claims that depend on what BuildKit does, checked against a real build.

Ignore files and symlinked schemas from the mutation suite are built for real (the example's
fake ``prisma`` stamps the client it writes with the sha256 of the schema it read), and
``context_files`` is compared with what BuildKit sends for ``COPY . /``. Builds export the final
stage to a folder (``--output type=local``): no image is created, so none is left behind.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import subprocess
from pathlib import Path

import pytest

from tasks.lib.gate import GateInput, check, context_files
from tests.unit.gate.mutations import DOCKERFILES, POLICIES, SCHEMA, meeshy_copy
from tests.unit.gate.test_gate_mutations import MUTATIONS

pytestmark = pytest.mark.engine

#: Mutations whose verdict rests on BuildKit's handling of ignore files or symlinks.
BUILT = [
    "ignore-folder-then-reinclude-schema",
    "ignore-prisma-files-then-reinclude",
    "ignore-packages-then-reinclude-shared",
    "ignore-quirk-earlier-reinclude-wins",
    "ignore-case-differs",
    "ignore-prisma-folder",
    "ignore-reinclude-before-exclude",
    "ignore-double-star-prisma",
    "dockerfile-specific-ignore-wins",
    "schema-symlink-to-sibling-copied-folder",
    "schema-symlink-sibling-translator",
    "schema-symlink-file-copied-directly",
    "schema-symlink-outside-the-copied-folder",
    "schema-symlink-outside-the-context",
    "schema-symlink-target-ignored",
]
#: Where each image holds the generated client (generate) or the schema (copy).
PROOF = {
    "gateway": "/app/packages/shared/prisma/client/index.js",
    "translator": "/workspace/shared/prisma/client/index.js",
    "web": "/app/packages/shared/prisma/schema.prisma",
}


def _build(root: Path, dockerfile: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--progress=plain",
            "--file",
            str(root / dockerfile),
            "--output",
            f"type=local,dest={out}",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _read_in(root: Path, path: str) -> bytes | None:
    """The content of ``path`` inside an exported image at ``root``, symlinks resolved the way
    the image resolves them (absolute targets from the image's root)."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    for _ in range(40):
        if not parts:
            target = root.joinpath(*done)
            return target.read_bytes() if target.is_file() else None
        part = parts.pop(0)
        current = root.joinpath(*done, part)
        if current.is_symlink():
            link = os.readlink(current)
            base = [] if link.startswith("/") else done
            resolved = posixpath.normpath("/" + posixpath.join(*base, link) if base else link)
            parts = [p for p in resolved.split("/") if p] + parts
            done = []
            continue
        if not current.exists():
            return None
        done.append(part)
    return None


def _schema_digest(root: Path) -> str:
    return hashlib.sha256((root / SCHEMA).read_bytes()).hexdigest()


@pytest.mark.parametrize("mutation", [pytest.param(m, id=m.id) for m in MUTATIONS if m.id in BUILT])
def test_gate_agrees_with_a_real_build(tmp_path: Path, mutation: object) -> None:
    from tests.unit.gate.mutations import Mutation, apply

    assert isinstance(mutation, Mutation)
    root = meeshy_copy(tmp_path / "repo")
    apply(root, mutation)
    service = mutation.service
    report = check(GateInput(service, None, POLICIES[service], root, DOCKERFILES[service]))
    out = tmp_path / "out"
    build = _build(root, DOCKERFILES[service], out)
    content = _read_in(out, PROOF[service]) if build.returncode == 0 else None
    schema = (root / SCHEMA).read_bytes() if (root / SCHEMA).exists() else None
    if service == "web":
        built_from_schema = content is not None and content == schema
    else:
        stamp = re.search(rb'schemaSha256: "([0-9a-f]{64})"', content or b"")
        built_from_schema = stamp is not None and stamp.group(1).decode() == _schema_digest(root)
    why = build.stderr[-2000:]
    assert (report.verdict == "pass") is built_from_schema, (report.problems, why)
    assert report.verdict == mutation.verdict


IGNORE_CASES = {
    "reinclude-a-file-in-an-excluded-folder": (
        "packages/shared/prisma/\n!packages/shared/prisma/schema.prisma\n"
    ),
    "double-star-then-reinclude": "**/*.prisma\n!packages/shared/prisma/schema.prisma\n",
    "earlier-reinclude-beats-a-parent-match": (
        "packages\n!packages/shared/prisma/schema.prisma\npackages/shared\n"
    ),
    "reinclude-by-double-star-inside-excluded-folder": "packages/\n!**/schema.prisma\n",
    "reinclude-by-wildcard-folder": "packages/\n!*/*/prisma/schema.prisma\n",
    "folder-pattern-matches-at-any-depth": "**/prisma\n",
    "single-star-is-one-level": "*/prisma\n*.prisma\n",
    "case-sensitive": "Packages/\nPACKAGES/shared\n",
    "leading-slash-and-dot-dot": "/packages/../packages/shared/prisma/schema.prisma\n",
    "trailing-slash-on-a-file": "packages/shared/prisma/schema.prisma/\n",
    "everything-but": "*\n!packages/shared\n",
    "comment-only-in-column-one": "# packages\n #packages/shared/index.ts\n",
}


@pytest.mark.parametrize("patterns", list(IGNORE_CASES.values()), ids=list(IGNORE_CASES))
def test_context_files_match_what_buildkit_sends(tmp_path: Path, patterns: str) -> None:
    root = tmp_path / "ctx"
    for rel in (
        "packages/shared/prisma/schema.prisma",
        "packages/shared/prisma/other.prisma",
        "packages/shared/index.ts",
        "packages/Other/x.ts",
        " #packages/shared/index.ts",
        "top.prisma",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel, encoding="utf-8")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /\n", encoding="utf-8")
    (root / ".dockerignore").write_text(patterns, encoding="utf-8")
    out = tmp_path / "out"
    build = _build(root, "Dockerfile", out)
    assert build.returncode == 0, build.stderr[-2000:]
    sent = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))  # folders too
    assert context_files(root, root / "Dockerfile", ["."]) == sent
