"""build_inputs() and context_files(): what an image's build reads, for a content-addressed
cache; and the ignore-file rules they rest on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tasks.lib.errors import ConfigError
from tasks.lib.gate import BuildInputs, ContextSource, GateInput, build_inputs, context_files
from tasks.lib.gate.dockerignore import IgnoreRules, clean

EXAMPLE = Path(__file__).resolve().parents[3] / "example"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(EXAMPLE, dest)
    return dest


def _inputs(root: Path, dockerfile: str, **build_args: str) -> BuildInputs:
    return build_inputs(GateInput("x", None, "none", root, dockerfile, build_args=build_args))


def test_gateway_inputs() -> None:
    inputs = _inputs(EXAMPLE, "services/gateway/Dockerfile")
    assert inputs.to_json() == {
        "dockerfile": "services/gateway/Dockerfile",
        "final": "runner",
        "stages": ["base", "deps", "builder", "runner"],
        "sources": [
            {
                "stage": "base",
                "line": 7,
                "keyword": "COPY",
                "path": "tools/fake-bin",
                "excludes": [],
            },
            {
                "stage": "deps",
                "line": 12,
                "keyword": "COPY",
                "path": "packages/shared",
                "excludes": [],
            },
            {
                "stage": "deps",
                "line": 13,
                "keyword": "COPY",
                "path": "services/gateway/package.json",
                "excludes": [],
            },
            {
                "stage": "builder",
                "line": 18,
                "keyword": "COPY",
                "path": "services/gateway/src",
                "excludes": [],
            },
        ],
        "images": ["busybox"],
        "remote": [],
        "frontend": None,
    }


def test_translator_inputs_follow_the_variant() -> None:
    gpu = _inputs(EXAMPLE, "services/translator/Dockerfile", TORCH_BACKEND="gpu")
    assert gpu.stages == ("base", "runtime-gpu", "runtime")
    assert [s.path for s in gpu.sources] == [
        "tools/fake-bin",
        "services/translator/requirements.txt",
        "packages/shared/prisma",
        "services/translator/src",
        "services/translator/entrypoint.sh",
    ]
    assert _inputs(EXAMPLE, "services/translator/Dockerfile", TORCH_BACKEND="tpu").stages == (
        "runtime",
    )


def test_images_mounts_excludes_and_unused_stages(repo: Path) -> None:
    (repo / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1.7\n"
        "ARG NODE=node:22-alpine\n"
        "FROM ${NODE} AS deps\n"
        "ARG SHARED=packages/shared\n"
        "COPY --exclude=*.md --exclude=prisma/client ${SHARED}/ ./shared/\n"
        "RUN --mount=type=bind,source=tools/fake-bin,target=/t "
        "--mount=type=cache,target=/c --mount=type=bind,from=alpine:3.20,target=/a ls\n"
        "FROM scratch AS unused\n"
        "COPY apps/web /web\n"
        "FROM deps\n"
        "COPY --from=ghcr.io/acme/tools:1 /bin/tool /usr/bin/\n"
        "COPY --from=deps /shared /shared\n"
        "ADD https://example.com/a.tgz /opt/\n"
        "COPY <<EOF /etc/x.conf\nkey=value\nEOF\n"
        "RUN --mount=target=/ctx ls /ctx\n",
        encoding="utf-8",
    )
    inputs = _inputs(repo, "Dockerfile", NODE="node:20")
    assert inputs.stages == ("deps", "2")
    assert inputs.images == ("node:20", "alpine:3.20", "ghcr.io/acme/tools:1")
    assert inputs.remote == ("https://example.com/a.tgz",)
    assert inputs.frontend == "docker/dockerfile:1.7"
    assert inputs.sources == (
        ContextSource("deps", 5, "COPY", "packages/shared", ("*.md", "prisma/client")),
        ContextSource("deps", 6, "RUN --mount=type=bind", "tools/fake-bin"),
        ContextSource("2", 16, "RUN --mount=type=bind", ""),
    )


def test_context_files_after_the_dockerignore() -> None:
    sources = _inputs(EXAMPLE, "services/translator/Dockerfile").sources
    assert context_files(EXAMPLE, EXAMPLE / "services/translator/Dockerfile", sources) == [
        "packages/shared/prisma/schema.prisma",
        "services/translator/entrypoint.sh",  # **/*.sh excluded, this one re-included
        "services/translator/requirements.txt",
        "services/translator/src/main.py",
        "tools/fake-bin/bun",
        "tools/fake-bin/bunx",
        "tools/fake-bin/npx",
        "tools/fake-bin/prisma",
    ]


def test_context_files_whole_context_leaves_out_what_is_ignored(repo: Path) -> None:
    files = context_files(repo, repo / "services/gateway/Dockerfile", ["."])
    assert "packages/shared/prisma/schema.prisma" in files
    assert not [f for f in files if f.endswith(("Dockerfile", ".md")) or f.startswith("infra")]
    assert files == sorted(files)


def test_dockerfile_dockerignore_wins(repo: Path) -> None:
    (repo / "services/gateway/Dockerfile.dockerignore").write_text("**/*.ts\n", encoding="utf-8")
    files = context_files(repo, repo / "services/gateway/Dockerfile", ["packages", "services"])
    assert "packages/shared/index.ts" not in files
    assert "services/gateway/Dockerfile" in files  # the root .dockerignore is not read


def test_context_files_globs_excludes_and_symlinks(repo: Path) -> None:
    os.symlink("prisma/schema.prisma", repo / "packages/shared/schema-link.prisma")
    files = context_files(
        repo,
        repo / "apps/web/Dockerfile",
        [
            ContextSource("s", 1, "COPY", "packages/*/schema-link.prisma"),
            ContextSource("s", 2, "COPY", "packages/shared", ("prisma", "*.json")),
        ],
    )
    assert files == [
        "packages/shared/index.ts",
        "packages/shared/prisma/schema.prisma",  # through the symlink
        "packages/shared/schema-link.prisma",
    ]
    every = context_files(
        repo,
        repo / "apps/web/Dockerfile",
        [ContextSource("s", 2, "COPY", "packages/shared", ("prisma",))],
        apply_excludes=False,
    )
    assert "packages/shared/prisma/schema.prisma" in every


def test_a_stage_from_a_stage_takes_its_onbuild_triggers(tmp_path: Path) -> None:
    """``ONBUILD COPY`` in a stage runs in every stage FROM it (checked on a real engine):
    what it copies is an input of the image, read in the child's scope."""
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS a\nENV D=src\nONBUILD COPY ${D}/f.txt /f.txt\n"
        "ONBUILD RUN --mount=type=bind,source=m,target=/m true\nFROM a\n"
    )
    got = _inputs(tmp_path, "Dockerfile")
    assert [(s.stage, s.line, s.keyword, s.path) for s in got.sources] == [
        ("1", 3, "COPY", "src/f.txt"),
        ("1", 4, "RUN --mount=type=bind", "m"),
    ]
    (tmp_path / "Dockerfile").write_text("FROM busybox AS a\nONBUILD COPY f.txt /\nFROM busybox\n")
    assert _inputs(tmp_path, "Dockerfile").sources == ()  # not FROM a: no trigger runs


@pytest.mark.parametrize(
    ("lines", "path", "excluded"),
    [
        # a parent match that only comes after an earlier re-include loses (BuildKit's
        # MatchesUsingParentResults; checked on a real engine)
        (["packages", "!packages/shared/prisma/schema.prisma", "packages/shared"], "x", None),
        (["**/prisma", "!packages/shared/prisma/*.prisma"], "y", None),
        (["Packages/"], "case", None),
        (["# packages"], "comment", None),
        ([" # packages"], "not-a-comment", None),
        (["\ufeffpackages"], "bom", "packages"),
        (["! packages/shared/prisma/schema.prisma", "packages"], "space-after-bang", "packages"),
        (["/packages/./shared/../shared"], "cleaned", "/packages/./shared/../shared"),
    ],
)
def test_ignore_matching(lines: list[str], path: str, excluded: str | None) -> None:
    rules = IgnoreRules.parse("\n".join(lines) + "\n", ".dockerignore")
    culprit = rules.culprit("packages/shared/prisma/schema.prisma")
    assert (culprit.text if culprit else None) == excluded


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"])
def test_ignore_lines_end_at_newline_only(sep: str) -> None:
    """moby's reader splits the file at ``\n`` (a ``\r`` before it dropped), never at the
    other characters Python's ``splitlines`` ends a line at: ``a.txt<U+2028>b.txt`` is one
    pattern that matches neither file, so Docker sends both (checked on a real engine)."""
    rules = IgnoreRules.parse(f"a.txt{sep}b.txt\n", ".dockerignore")
    assert not rules.excluded("a.txt") and not rules.excluded("b.txt")
    crlf = IgnoreRules.parse("# note\r\na.txt\r\n!keep\r\n", ".dockerignore")
    assert [(p.line, p.pattern, p.exclusion) for p in crlf.patterns] == [
        (2, "a.txt", False),
        (3, "keep", True),
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("!", "'!' alone is not a pattern: Docker refuses it (illegal exclusion pattern)"),
        ("! ", "'!' alone is not a pattern"),
        ("b\rc", "pattern 'b\\rc' holds the control character '\\r': BuildKit fails"),
        ("a\x01b", "holds the control character '\\x01'"),
        ("a\x7fb", "holds the control character '\\x7f'"),
        # \x1c-\x1f are whitespace to Python's strip, not to Go's strings.TrimSpace: at
        # the end of a line they stay in the pattern BuildKit gets (checked: PROTOCOL_ERROR)
        ("b\x1f", "pattern 'b\\x1f' holds the control character '\\x1f'"),
        ("\x1cb", "holds the control character '\\x1c'"),
    ],
)
def test_ignore_lines_buildkit_refuses_are_refused(line: str, error: str) -> None:
    """Each of these fails a real build (checked on BuildKit 0.8: "illegal exclusion
    pattern", "PROTOCOL_ERROR"): refused by name, never skipped (the key would call an image
    up to date that the checkout cannot build)."""
    with pytest.raises(ConfigError) as info:
        IgnoreRules.parse(f"a.txt\n{line}\n", ".dockerignore")
    assert info.value.line().startswith(".dockerignore:2: ")
    assert error in info.value.line()


@pytest.mark.parametrize(
    "line", ["a\tb", "\x0cb\x0c", "\u00e9.txt", "a\u2028b", "\x85b\u3000", "! \xa0b"]
)
def test_ignore_lines_buildkit_takes_are_taken(line: str) -> None:
    """A tab inside, a form feed at the edges (trimmed), non-ASCII: BuildKit builds."""
    assert len(IgnoreRules.parse(f"{line}\n", ".dockerignore").patterns) == 1


def test_clean_is_go_filepath_clean_without_leading_slash() -> None:
    assert [clean(p) for p in ["/a/b/", "a//b", "./a/../b", "/", "", "../x"]] == [
        "a/b",
        "a/b",
        "b",
        "/",
        ".",
        "../x",
    ]
