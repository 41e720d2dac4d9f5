"""The schema gate on the example monorepo and on broken copies of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tasks.lib.gate import Evidence, GateInput, GateReport, Policy, Verdict, check, schema_sha256
from tasks.lib.gate.dockerignore import IgnoreRules

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
SCHEMA = "packages/shared/prisma/schema.prisma"
GATEWAY = "services/gateway/Dockerfile"
TRANSLATOR = "services/translator/Dockerfile"
WEB = "apps/web/Dockerfile"
GATEWAY_IGNORE_WARNING = (
    "services/gateway/.dockerignore is not read by a build with context '.' (Docker reads "
    ".dockerignore); move its patterns there or into services/gateway/Dockerfile.dockerignore"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A private copy of the example monorepo."""
    dest = tmp_path / "repo"
    shutil.copytree(EXAMPLE, dest)
    return dest


def _gate(
    root: Path,
    dockerfile: str,
    policy: Policy = "generate",
    *,
    variant: str | None = None,
    build_args: dict[str, str] | None = None,
    context: str = ".",
    target: str | None = None,
) -> GateReport:
    return check(
        GateInput(
            service=dockerfile.split("/")[1],
            variant=variant,
            policy=policy,
            root=root,
            dockerfile=dockerfile,
            context=context,
            build_args=build_args or {},
            target=target,
        )
    )


def _edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The example passes


TRANSLATOR_EVIDENCE = (
    Evidence(
        "base",
        11,
        "COPY packages/shared/prisma -> /workspace/shared/prisma/ "
        "(packages/shared/prisma/schema.prisma -> /workspace/shared/prisma/schema.prisma)",
    ),
    Evidence(
        "base",
        12,
        "RUN prisma generate reads /workspace/shared/prisma/schema.prisma "
        "(from packages/shared/prisma/schema.prisma)",
    ),
)


RUNTIME_LINES = {"cpu": 14, "gpu": 18, "gpu-cu121": 22, "gpu-cu118": 25}


@pytest.mark.parametrize("backend", list(RUNTIME_LINES))
def test_translator_passes_for_every_variant(backend: str) -> None:
    report = _gate(EXAMPLE, TRANSLATOR, variant=backend, build_args={"TORCH_BACKEND": backend})
    assert (report.verdict, report.ok, report.problems, report.warnings) == ("pass", True, (), ())
    assert report.evidence == (
        *TRANSLATOR_EVIDENCE,
        Evidence("runtime", 28, f"stage runtime depends on runtime-{backend} (FROM)"),
        Evidence(
            f"runtime-{backend}",
            RUNTIME_LINES[backend],
            f"stage runtime-{backend} depends on base (FROM)",
        ),
        Evidence(
            "runtime",
            28,
            "final stage runtime holds the client generated at line 12 (base) at "
            "/workspace/shared/prisma/client",
        ),
    )
    assert report.variant == backend


def test_gateway_passes_with_the_per_service_ignore_warning() -> None:
    report = _gate(EXAMPLE, GATEWAY)
    assert (report.verdict, report.problems) == ("pass", ())
    assert report.warnings == (GATEWAY_IGNORE_WARNING,)
    assert report.evidence == (
        Evidence(
            "deps",
            12,
            "COPY packages/shared/ -> /app/packages/shared/ "
            "(packages/shared/prisma/schema.prisma -> /app/packages/shared/prisma/schema.prisma)",
        ),
        Evidence(
            "builder",
            19,
            "RUN npx prisma generate reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
        ),
        Evidence("runner", 34, "stage runner depends on builder (COPY --from/RUN --mount)"),
        Evidence(
            "runner",
            35,
            "final stage runner holds the client generated at line 19 (builder) at "
            "/app/packages/shared/prisma/client",
        ),
    )


def test_web_passes_with_copy_policy() -> None:
    report = _gate(EXAMPLE, WEB, "copy")
    assert (report.verdict, report.problems, report.warnings) == ("pass", (), ())
    assert report.evidence == (
        Evidence(
            "builder",
            11,
            "COPY packages/shared/ -> /app/packages/shared/ "
            "(packages/shared/prisma/schema.prisma -> /app/packages/shared/prisma/schema.prisma)",
        ),
        Evidence(
            "runner",
            25,
            "COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)",
        ),
    )


def test_report_to_json_is_json_ready() -> None:
    report = _gate(EXAMPLE, WEB, "copy")
    assert report.verdict is Verdict.PASS
    data = json.loads(json.dumps(report.to_json()))
    assert data == {
        "service": "web",
        "variant": None,
        "policy": "copy",
        "verdict": "pass",
        "ok": True,
        "evidence": [{"stage": e.stage, "line": e.line, "text": e.text} for e in report.evidence],
        "problems": [],
        "warnings": [],
        "schema": SCHEMA,
        "schema_sha256": schema_sha256(EXAMPLE / SCHEMA),
    }
    assert len(str(data["schema_sha256"])) == 64


def test_policy_none_skips_and_never_fails(repo: Path) -> None:
    report = _gate(EXAMPLE, WEB, "none")
    assert (report.verdict, report.ok, report.problems) == ("skip", True, ())
    assert len(report.evidence) == 2
    (repo / SCHEMA).unlink()
    broken = _gate(repo, WEB, "none")
    assert (broken.verdict, broken.ok, broken.problems, broken.schema_sha256) == (
        "skip",
        True,
        (),
        None,
    )
    assert broken.warnings[0] == (
        "packages/shared/prisma/schema.prisma: schema file not found; "
        "restore it or fix the service's schema path"
    )


# ---------------------------------------------------------------------------------------------
# Failures on broken copies of the example


def test_schema_missing(repo: Path) -> None:
    (repo / SCHEMA).unlink()
    report = _gate(repo, TRANSLATOR)
    assert (report.verdict, report.ok, report.schema_sha256) == ("fail", False, None)
    assert report.problems == (
        "packages/shared/prisma/schema.prisma: schema file not found; "
        "restore it or fix the service's schema path",
    )


@pytest.mark.parametrize(
    ("old", "problem"),
    [
        pytest.param(
            "datasource db {",
            "packages/shared/prisma/schema.prisma: no datasource block; "
            "add datasource db { provider = ... }",
            id="no-datasource",
        ),
        pytest.param(
            "generator client {",
            "packages/shared/prisma/schema.prisma: no generator block; "
            "add generator client { provider = ... }",
            id="no-generator",
        ),
    ],
)
def test_schema_without_required_blocks(repo: Path, old: str, problem: str) -> None:
    text = (repo / SCHEMA).read_text(encoding="utf-8")
    if old.startswith("generator"):
        text = text.replace("generator client_py {", "// generator client_py {")
    _write(repo, SCHEMA, text.replace(old, "// " + old))
    report = _gate(repo, TRANSLATOR)
    assert (report.verdict, report.problems[0]) == ("fail", problem)


def test_schema_excluded_by_dockerignore_names_the_pattern(repo: Path) -> None:
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("packages/shared/prisma\n")
    report = _gate(repo, TRANSLATOR)
    assert report.verdict == "fail"
    assert report.problems[0] == (
        ".dockerignore:14: pattern 'packages/shared/prisma' excludes "
        "packages/shared/prisma/schema.prisma from the build context; "
        "add '!packages/shared/prisma/schema.prisma' after it or narrow the pattern"
    )


def test_dockerignore_double_star_then_reinclude(repo: Path) -> None:
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("**/*.prisma\n")
    excluded = _gate(repo, WEB, "copy")
    assert excluded.problems[0].startswith(".dockerignore:14: pattern '**/*.prisma' excludes ")
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("!packages/shared/prisma/schema.prisma\n")
    report = _gate(repo, WEB, "copy")
    assert (report.verdict, report.problems) == ("pass", ())
    assert report.evidence[0].line == 11


def test_dockerignore_filters_what_a_directory_copy_brings(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox\nWORKDIR /app\nCOPY packages/shared/ ./shared/\n"
        "RUN cd shared && npm run generate\n",
    )
    assert _gate(repo, X).verdict == "pass"
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("packages/*/package.json\n")
    report = _gate(repo, X)
    assert report.problems == (
        "services/x/Dockerfile:1: no RUN in the stages the final image depends on (0) runs "
        "prisma generate (the schema is at /app/shared/prisma/schema.prisma in stage '0'); "
        "add RUN npx prisma generate --schema=<that path>",
    )


def test_schema_path_that_no_copy_fills(repo: Path) -> None:
    _edit(
        repo, TRANSLATOR, "--schema=./shared/prisma/schema.prisma", "--schema=./foo/schema.prisma"
    )
    report = _gate(repo, TRANSLATOR, build_args={"TORCH_BACKEND": "gpu"})
    assert report.verdict == "fail"
    assert report.problems == (
        "services/translator/Dockerfile:12: prisma generate reads /workspace/foo/schema.prisma "
        "but no COPY puts packages/shared/prisma/schema.prisma there; copy it with "
        "COPY packages/shared/prisma /workspace/foo/",
    )


def test_schema_copied_to_the_wrong_place(repo: Path) -> None:
    _edit(
        repo,
        TRANSLATOR,
        "COPY packages/shared/prisma ./shared/prisma/",
        "COPY packages/shared/prisma ./",
    )
    report = _gate(repo, TRANSLATOR)
    assert report.problems == (
        "services/translator/Dockerfile:12: prisma generate reads "
        "/workspace/shared/prisma/schema.prisma but no COPY puts "
        "packages/shared/prisma/schema.prisma there; copy it with "
        "COPY packages/shared/prisma /workspace/shared/prisma/",
    )


def test_schema_flag_reads_another_context_file(repo: Path) -> None:
    _write(repo, "services/translator/other.prisma", "datasource db {}\ngenerator c {}\n")
    _edit(
        repo,
        TRANSLATOR,
        "RUN prisma generate",
        "COPY services/translator/other.prisma ./shared/prisma/schema.prisma\nRUN prisma generate",
    )
    report = _gate(repo, TRANSLATOR)
    assert report.problems == (
        "services/translator/Dockerfile:13: prisma generate reads "
        "/workspace/shared/prisma/schema.prisma, which comes from "
        "services/translator/other.prisma, not packages/shared/prisma/schema.prisma; "
        "point --schema at the copy of packages/shared/prisma/schema.prisma",
    )


def test_generate_only_in_a_stage_the_final_image_does_not_use(repo: Path) -> None:
    _edit(
        repo,
        TRANSLATOR,
        "RUN prisma generate --schema=./shared/prisma/schema.prisma\n",
        "\nFROM base AS gen\nRUN prisma generate --schema=./shared/prisma/schema.prisma\n",
    )
    report = _gate(repo, TRANSLATOR, build_args={"TORCH_BACKEND": "gpu"})
    assert report.problems == (
        "services/translator/Dockerfile:14: prisma generate runs in stage 'gen', but the final "
        "stage 'runtime' does not depend on it; build the final stage FROM gen or "
        "COPY --from=gen the generated client",
    )


def test_variant_naming_no_stage_has_no_generate(repo: Path) -> None:
    report = _gate(repo, TRANSLATOR, build_args={"TORCH_BACKEND": "tpu"})
    assert report.problems == (
        "services/translator/Dockerfile:12: prisma generate runs in stage 'base', but the final "
        "stage 'runtime' does not depend on it; build the final stage FROM base or "
        "COPY --from=base the generated client",
    )


def test_generate_policy_without_any_generate(repo: Path) -> None:
    report = _gate(repo, WEB, "generate")
    assert report.problems == (
        "apps/web/Dockerfile:16: no RUN in the stages the final image depends on "
        "(base, builder, runner) runs prisma generate (the schema is at "
        "/app/packages/shared/prisma/schema.prisma in stage 'builder'); "
        "add RUN npx prisma generate --schema=<that path>",
    )


def test_copy_policy_without_a_copy(repo: Path) -> None:
    _edit(repo, WEB, "COPY packages/shared/ ./packages/shared/", "COPY packages/shared/index.ts ./")
    report = _gate(repo, WEB, "copy")
    assert report.problems == (
        "apps/web/Dockerfile:16: no COPY in the stages the final image depends on "
        "(base, builder, runner) brings packages/shared/prisma/schema.prisma; "
        "add COPY packages/shared/prisma ./packages/shared/prisma/",
    )


def test_copy_policy_copy_only_in_an_unused_stage(repo: Path) -> None:
    _edit(repo, WEB, "COPY packages/shared/ ./packages/shared/", "COPY apps/web/package.json ./")
    _edit(
        repo,
        WEB,
        "FROM base AS runner",
        "FROM base AS extra\nCOPY packages/ ./\n\nFROM base AS runner",
    )
    report = _gate(repo, WEB, "copy")
    assert report.problems == (
        "apps/web/Dockerfile:16: packages/shared/prisma/schema.prisma is copied only into stage "
        "'extra', which the final stage 'runner' does not depend on; COPY it in one of: "
        "base, builder, runner",
    )


def test_broken_dockerfile(repo: Path) -> None:
    _edit(repo, GATEWAY, "USER 1000", "FROBNICATE 1000")
    report = _gate(repo, GATEWAY)
    assert (report.verdict, report.problems) == (
        "fail",
        ("services/gateway/Dockerfile:36: unknown instruction: FROBNICATE",),
    )


def test_missing_dockerfile(repo: Path) -> None:
    (repo / GATEWAY).unlink()
    report = _gate(repo, GATEWAY)
    assert report.problems == (
        f"services/gateway/Dockerfile: Dockerfile not found under {repo}; "
        "fix the service's dockerfile path",
    )


def test_unknown_target(repo: Path) -> None:
    report = _gate(repo, GATEWAY, target="prod")
    assert report.problems == (
        "services/gateway/Dockerfile:26: target stage 'prod' not found; "
        "stages are: base, deps, builder, runner",
    )


def test_target_stage_that_precedes_the_generate(repo: Path) -> None:
    report = _gate(repo, GATEWAY, target="deps")
    assert report.verdict == "fail"
    assert report.problems[0].startswith(
        "services/gateway/Dockerfile:19: prisma generate runs in stage 'builder', but the final "
        "stage 'deps' does not depend on it"
    )


def test_empty_from_after_build_args(repo: Path) -> None:
    _edit(repo, TRANSLATOR, "ARG TORCH_BACKEND=cpu", "ARG TORCH_BACKEND=cpu\nARG BASE")
    _edit(repo, TRANSLATOR, "FROM busybox AS base", "FROM ${BASE} AS base")
    report = _gate(repo, TRANSLATOR)
    assert report.problems == (
        "services/translator/Dockerfile:6: FROM ${BASE} resolves to an empty image name; "
        "set BASE with a global ARG default or --build-arg",
    )
    assert _gate(repo, TRANSLATOR, build_args={"BASE": "busybox"}).verdict == "pass"


# ---------------------------------------------------------------------------------------------
# Which .dockerignore is read, and how


@pytest.mark.parametrize(
    ("patterns", "path", "culprit"),
    [
        pytest.param(["packages"], SCHEMA, (1, "packages"), id="top-dir"),
        pytest.param(["packages/"], SCHEMA, (1, "packages/"), id="top-dir-slash"),
        pytest.param(["/packages/shared"], SCHEMA, (1, "/packages/shared"), id="leading-slash"),
        pytest.param(["**/prisma/"], SCHEMA, (1, "**/prisma/"), id="double-star-dir-deep"),
        pytest.param(["**/*.prisma"], SCHEMA, (1, "**/*.prisma"), id="double-star-file"),
        pytest.param(["*.prisma"], SCHEMA, None, id="single-star-is-top-level-only"),
        pytest.param(["packages/*/prisma"], SCHEMA, (1, "packages/*/prisma"), id="star-segment"),
        pytest.param(["packages", "!packages/shared"], SCHEMA, None, id="reinclude-dir"),
        pytest.param(
            ["**/*.prisma", f"!{SCHEMA}", "packages/shared/prisma"],
            SCHEMA,
            (3, "packages/shared/prisma"),
            id="last-match-wins",
        ),
        pytest.param(["./packages/../packages"], SCHEMA, (1, "./packages/../packages"), id="clean"),
        pytest.param(["pack"], SCHEMA, None, id="no-prefix-match"),
        pytest.param([".", ""], SCHEMA, None, id="dot-ignored"),
    ],
)
def test_ignore_rules(patterns: list[str], path: str, culprit: tuple[int, str] | None) -> None:
    rules = IgnoreRules(list(enumerate(patterns, 1)), ".dockerignore")
    found = rules.culprit(path)
    assert ((found.line, found.text) if found else None) == culprit
    assert rules.excluded(path) is (culprit is not None)


def test_relative_root_gives_relative_names(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.parent)
    report = _gate(Path("repo"), GATEWAY)
    assert (report.verdict, report.warnings) == ("pass", (GATEWAY_IGNORE_WARNING,))


def test_dockerfile_dockerignore_is_used_instead_of_the_root_one(repo: Path) -> None:
    _write(repo, "services/gateway/Dockerfile.dockerignore", "# gateway only\n**/node_modules\n")
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("packages/\n")  # would break the build if it were read
    report = _gate(repo, GATEWAY)
    assert (report.verdict, report.problems) == ("pass", ())
    assert report.warnings == (
        "services/gateway/.dockerignore is not read by a build with context '.' (Docker reads "
        "services/gateway/Dockerfile.dockerignore); move its patterns there or into "
        "services/gateway/Dockerfile.dockerignore",
    )


def test_dockerfile_dockerignore_that_excludes_the_schema(repo: Path) -> None:
    _write(repo, "services/gateway/Dockerfile.dockerignore", "# gateway only\n**/prisma/\n")
    report = _gate(repo, GATEWAY)
    assert report.problems[0] == (
        "services/gateway/Dockerfile.dockerignore:2: pattern '**/prisma/' excludes "
        "packages/shared/prisma/schema.prisma from the build context; "
        "add '!packages/shared/prisma/schema.prisma' after it or narrow the pattern"
    )


def test_service_context_reads_the_service_dockerignore(repo: Path) -> None:
    _write(repo, "services/gateway/prisma/schema.prisma", (repo / SCHEMA).read_text("utf-8"))
    _write(
        repo,
        "services/gateway/Dockerfile",
        "FROM busybox\nWORKDIR /srv\nCOPY prisma ./prisma\nRUN npx prisma generate\n",
    )
    report = check(
        GateInput(
            "gateway",
            None,
            "generate",
            repo,
            "services/gateway/Dockerfile",
            context="services/gateway",
            schema="services/gateway/prisma/schema.prisma",
        )
    )
    assert (report.verdict, report.warnings) == ("pass", ())
    assert report.evidence[-1] == Evidence(
        "0",
        4,
        "RUN npx prisma generate reads /srv/prisma/schema.prisma (from prisma/schema.prisma)",
    )


def test_schema_outside_the_context(repo: Path) -> None:
    report = _gate(repo, GATEWAY, context="services/gateway")
    assert report.problems == (
        "packages/shared/prisma/schema.prisma: outside the build context 'services/gateway'; "
        "build from a context that holds it",
    )


# ---------------------------------------------------------------------------------------------
# How generate finds its schema


X = "services/x/Dockerfile"


@pytest.mark.parametrize(
    ("body", "line", "text"),
    [
        pytest.param(
            "WORKDIR /app\nCOPY packages/shared/ ./packages/shared/\n"
            "RUN cd packages/shared && npx prisma generate",
            4,
            "RUN npx prisma generate reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="cd-then-package-json-prisma-key",
        ),
        pytest.param(
            "WORKDIR /app\nCOPY packages/shared ./shared\n"
            "RUN set -e; cd shared\\\n && bun run generate",
            4,
            "RUN prisma generate via bun run generate: script in packages/shared/package.json "
            "reads /app/shared/prisma/schema.prisma (from packages/shared/prisma/schema.prisma)",
            id="bun-run-generate-script",
        ),
        pytest.param(
            "ARG PM=npm\nWORKDIR /app\nCOPY packages/shared/ ./\nRUN ${PM} run generate",
            5,
            "RUN prisma generate via npm run generate: script in packages/shared/package.json "
            "reads /app/prisma/schema.prisma (from packages/shared/prisma/schema.prisma)",
            id="npm-run-via-arg",
        ),
        pytest.param(
            "WORKDIR /srv\nCOPY packages/shared/prisma/ prisma/\nRUN pnpm exec prisma generate",
            4,
            "RUN pnpm exec prisma generate reads /srv/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="default-prisma-dir",
        ),
        pytest.param(
            "WORKDIR /srv\nCOPY packages/shared/prisma/*.prisma ./\nRUN bunx prisma generate",
            4,
            "RUN bunx prisma generate reads /srv/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="wildcard-and-default-root",
        ),
        pytest.param(
            "ENV APP=/opt\nWORKDIR $APP\nWORKDIR svc\nWORKDIR ../db\n"
            'COPY ["packages/shared/prisma/schema.prisma", "db.prisma"]\n'
            'RUN ["npx", "prisma", "generate", "--schema", "db.prisma"]',
            7,
            "RUN npx prisma generate reads /opt/db/db.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="workdir-chain-json-forms",
        ),
        pytest.param(
            "COPY . /src\nRUN <<EOF\nset -e\ncd /src\nyarn prisma generate "
            "--schema packages/shared/prisma/schema.prisma\nEOF",
            3,
            "RUN yarn prisma generate reads /src/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="heredoc-and-copy-dot",
        ),
        pytest.param(
            "WORKDIR /w\nCOPY packages/shared/prisma/schema.prisma s.prisma\n"
            "RUN sh -c 'npx --yes prisma@6 generate --schema=s.prisma'",
            4,
            "RUN npx prisma generate reads /w/s.prisma (from packages/shared/prisma/schema.prisma)",
            id="sh-c-and-versioned",
        ),
        pytest.param(
            "WORKDIR /w\nCOPY packages/shared/prisma/ db/\n"
            "RUN <<EOF bash -e\ncd db\nnpx prisma generate --schema=./schema.prisma\nEOF",
            4,
            "RUN npx prisma generate reads /w/db/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="heredoc-fed-to-bash",
        ),
        pytest.param(
            "ARG SHARED=packages/shared\nENV DEST=/opt/app\nWORKDIR ${DEST}\n"
            "COPY ${SHARED}/prisma $DEST/db/\nRUN npx prisma generate --schema=db/schema.prisma",
            6,
            "RUN npx prisma generate reads /opt/app/db/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="arg-env-in-paths",
        ),
        pytest.param(
            "WORKDIR /w\nCOPY <<EOF package.json\n"
            '{"prisma": {"schema": "db/main.prisma"}}\nEOF\n'
            "COPY packages/shared/prisma/schema.prisma db/main.prisma\n"
            "RUN npx prisma generate",
            7,
            "RUN npx prisma generate reads /w/db/main.prisma "
            "(from packages/shared/prisma/schema.prisma)",
            id="package-json-from-heredoc",
        ),
    ],
)
def test_generate_finds_the_schema(repo: Path, body: str, line: int, text: str) -> None:
    _write(repo, X, "FROM busybox\n" + body + "\n")
    report = _gate(repo, X)
    assert (report.verdict, report.problems) == ("pass", ())
    assert report.evidence[-1] == Evidence("0", line, text)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            "WORKDIR /w\nCOPY packages/shared/package.json packages/shared/prisma ./lib/\n"
            "RUN cd lib && npx prisma generate",
            "services/x/Dockerfile:4: npx prisma generate reads /w/lib/prisma/schema.prisma but "
            "no COPY puts packages/shared/prisma/schema.prisma there; copy it with "
            "COPY packages/shared/prisma /w/lib/prisma/",
            id="several-sources-copy-dir-contents",
        ),
        pytest.param(
            "WORKDIR /w\nCOPY packages/shared/prisma db\n"
            "RUN <<EOF cat > /gen.sh\nnpx prisma generate --schema=db/schema.prisma\nEOF",
            "services/x/Dockerfile:1: no RUN in the stages the final image depends on (0) runs "
            "prisma generate (the schema is at /w/db/schema.prisma in stage '0'); "
            "add RUN npx prisma generate --schema=<that path>",
            id="heredoc-that-is-data",
        ),
        pytest.param(
            "WORKDIR /w\nCOPY packages/shared/prisma db\n"
            "RUN echo npx prisma generate --schema=db/schema.prisma",
            "services/x/Dockerfile:1: no RUN in the stages the final image depends on (0) runs "
            "prisma generate (the schema is at /w/db/schema.prisma in stage '0'); "
            "add RUN npx prisma generate --schema=<that path>",
            id="echo-is-not-generate",
        ),
        pytest.param(
            "WORKDIR /w\nCOPY packages/shared/prisma db\nRUN npx prisma validate",
            "services/x/Dockerfile:1: no RUN in the stages the final image depends on (0) runs "
            "prisma generate (the schema is at /w/db/schema.prisma in stage '0'); "
            "add RUN npx prisma generate --schema=<that path>",
            id="other-prisma-command",
        ),
    ],
)
def test_generate_that_does_not_prove_anything(repo: Path, body: str, problem: str) -> None:
    _write(repo, X, "FROM busybox\n" + body + "\n")
    report = _gate(repo, X)
    assert (report.verdict, report.problems) == ("fail", (problem,))


def test_generate_evidence_chains_copy_from(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox AS src\n"
        "COPY packages/shared/prisma /in/\n"
        "FROM busybox AS gen\n"
        "WORKDIR /out\n"
        "COPY --from=src /in ./db\n"
        "RUN npx prisma generate --schema db/schema.prisma\n"
        "FROM gen\n",
    )
    report = _gate(repo, X)
    assert (report.verdict, report.problems) == ("pass", ())
    assert report.evidence == (
        Evidence(
            "src",
            2,
            "COPY packages/shared/prisma -> /in/ "
            "(packages/shared/prisma/schema.prisma -> /in/schema.prisma)",
        ),
        Evidence(
            "gen", 5, "COPY --from=src /in -> /out/db (/in/schema.prisma -> /out/db/schema.prisma)"
        ),
        Evidence(
            "gen",
            6,
            "RUN npx prisma generate reads /out/db/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)",
        ),
        Evidence("2", 7, "stage 2 depends on gen (FROM)"),
        Evidence(
            "2", 7, "final stage 2 holds the client generated at line 6 (gen) at /out/db/client"
        ),
    )


def test_generate_before_the_copy_does_not_count(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox\nWORKDIR /a\nRUN npx prisma generate\nCOPY packages/shared/prisma prisma\n",
    )
    report = _gate(repo, X)
    assert report.problems == (
        "services/x/Dockerfile:3: npx prisma generate reads /a/prisma/schema.prisma but no COPY "
        "puts packages/shared/prisma/schema.prisma there; copy it with "
        "COPY packages/shared/prisma /a/prisma/",
    )


def test_copy_exclude_flag_filters_a_directory_copy(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox\nWORKDIR /a\nCOPY --exclude=*.prisma packages/shared/prisma prisma\n"
        "RUN npx prisma generate\n",
    )
    assert (
        _gate(repo, X)
        .problems[0]
        .startswith(
            "services/x/Dockerfile:4: npx prisma generate reads /a/prisma/schema.prisma but no COPY"
        )
    )


def test_missing_copy_source_is_a_warning(repo: Path) -> None:
    _edit(repo, WEB, "COPY apps/web/ ./apps/web/", "COPY apps/webb/ ./apps/web/")
    report = _gate(repo, WEB, "copy")
    assert report.verdict == "pass"
    assert report.warnings == (
        "apps/web/Dockerfile:12: COPY source apps/webb/ is not in the context; "
        "the build will fail there",
    )


# ---------------------------------------------------------------------------------------------
# RUN --mount=type=bind: mapped for the commands of that RUN only

GENERATE_SCH = "npx prisma generate --schema=/sch/schema.prisma"


def _default_client_output(repo: Path) -> None:
    """The schema's JS client goes to Prisma's default place (node_modules), not next to the
    schema: with the schema in a bind mount, ``output = "./client"`` would be lost with it."""
    _edit(repo, SCHEMA, '  output   = "./client"\n', "")


def test_client_written_into_a_bind_mount_is_lost(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox\nRUN --mount=type=bind,source=packages/shared/prisma,target=/sch,rw "
        + GENERATE_SCH
        + "\n",
    )
    report = _gate(repo, X)
    assert report.problems == (
        "services/x/Dockerfile:2: npx prisma generate writes its client to /sch/client, inside "
        "the bind mount at /sch, which the image does not keep; mount only the schema file, or "
        "COPY the schema instead",
    )


READS_SCH = (
    "RUN npx prisma generate reads /sch/schema.prisma (from packages/shared/prisma/schema.prisma)"
)


@pytest.mark.parametrize(
    ("body", "evidence"),
    [
        pytest.param(
            "RUN --mount=type=bind,source=packages/shared/prisma,target=/sch " + GENERATE_SCH,
            [
                (
                    "0",
                    2,
                    "RUN --mount=type=bind packages/shared/prisma -> /sch "
                    "(packages/shared/prisma/schema.prisma -> /sch/schema.prisma)",
                ),
                ("0", 2, READS_SCH),
            ],
            id="context-dir-absolute-target",
        ),
        pytest.param(
            "ARG SHARED=packages/shared\nWORKDIR /app\n"
            "RUN --mount=src=${SHARED},dst=shared,rw cd shared && npm run generate",
            [
                (
                    "0",
                    4,
                    "RUN --mount=type=bind packages/shared -> /app/shared "
                    "(packages/shared/prisma/schema.prisma -> /app/shared/prisma/schema.prisma)",
                ),
                (
                    "0",
                    4,
                    "RUN prisma generate via npm run generate: script in "
                    "packages/shared/package.json reads /app/shared/prisma/schema.prisma "
                    "(from packages/shared/prisma/schema.prisma)",
                ),
            ],
            id="context-dir-relative-target-default-type",
        ),
        pytest.param(
            "RUN --mount=type=bind,target=/src,readonly "
            "npx prisma generate --schema /src/packages/shared/prisma/schema.prisma",
            [
                (
                    "0",
                    2,
                    "RUN --mount=type=bind . -> /src (packages/shared/prisma/schema.prisma -> "
                    "/src/packages/shared/prisma/schema.prisma)",
                ),
                (
                    "0",
                    2,
                    "RUN npx prisma generate reads /src/packages/shared/prisma/schema.prisma "
                    "(from packages/shared/prisma/schema.prisma)",
                ),
            ],
            id="default-source-whole-context",
        ),
        pytest.param(
            "WORKDIR /w\nRUN --mount=type=cache,target=/root/.npm "
            "--mount=type=bind,src=packages/shared/prisma/schema.prisma,destination=db.prisma "
            "npx prisma generate --schema=db.prisma",
            [
                (
                    "0",
                    3,
                    "RUN --mount=type=bind packages/shared/prisma/schema.prisma -> /w/db.prisma "
                    "(packages/shared/prisma/schema.prisma -> /w/db.prisma)",
                ),
                (
                    "0",
                    3,
                    "RUN npx prisma generate reads /w/db.prisma "
                    "(from packages/shared/prisma/schema.prisma)",
                ),
            ],
            id="file-source",
        ),
        pytest.param(
            "COPY packages/shared/prisma /in/\nFROM busybox AS gen\n"
            "RUN --mount=type=bind,from=0,source=/in,target=/sch " + GENERATE_SCH,
            [
                (
                    "0",
                    2,
                    "COPY packages/shared/prisma -> /in/ "
                    "(packages/shared/prisma/schema.prisma -> /in/schema.prisma)",
                ),
                (
                    "gen",
                    4,
                    "RUN --mount=type=bind,from=0 /in -> /sch "
                    "(/in/schema.prisma -> /sch/schema.prisma)",
                ),
                ("gen", 4, READS_SCH),
            ],
            id="from-stage",
        ),
        pytest.param(
            "WORKDIR /sch\nCOPY services/translator /sch/\n"
            "RUN --mount=type=bind,source=packages/shared/prisma,target=/sch " + GENERATE_SCH,
            [
                (
                    "0",
                    4,
                    "RUN --mount=type=bind packages/shared/prisma -> /sch "
                    "(packages/shared/prisma/schema.prisma -> /sch/schema.prisma)",
                ),
                ("0", 4, READS_SCH),
            ],
            id="mount-hides-the-image",
        ),
    ],
)
def test_bind_mount_maps_the_schema_for_its_run(
    repo: Path, body: str, evidence: list[tuple[str, int, str]]
) -> None:
    _default_client_output(repo)
    _write(repo, X, "FROM busybox\n" + body + "\n")
    report = _gate(repo, X)
    assert (report.verdict, report.problems, report.warnings) == ("pass", (), ())
    assert report.evidence == tuple(Evidence(*item) for item in evidence)


def test_bind_mount_from_a_stage_makes_it_required(repo: Path) -> None:
    _default_client_output(repo)
    _write(
        repo,
        X,
        "FROM busybox AS src\nCOPY packages/shared/prisma /in/\n"
        "FROM busybox AS gen\nRUN --mount=from=src,src=/in,target=/sch " + GENERATE_SCH + "\n"
        "FROM gen\n",
    )
    report = _gate(repo, X)
    assert (report.verdict, report.problems) == ("pass", ())
    assert report.evidence[-1] == Evidence("2", 5, "stage 2 depends on gen (FROM)")
    assert report.evidence[0].stage == "src"


NO_COPY_AT_SCH = (
    "services/x/Dockerfile:{line}: npx prisma generate reads /sch/schema.prisma but no {what} "
    "puts packages/shared/prisma/schema.prisma there; copy it with "
    "COPY packages/shared/prisma /sch/"
)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            "RUN --mount=type=bind,from=node:20,source=/x,target=/sch " + GENERATE_SCH,
            "services/x/Dockerfile:2: npx prisma generate reads /sch/schema.prisma, which comes "
            "from the image node:20, not packages/shared/prisma/schema.prisma; "
            "point --schema at the copy of packages/shared/prisma/schema.prisma",
            id="from-image",
        ),
        pytest.param(
            "RUN --mount=type=bind,source=packages/shared/prisma,target=/sch true\n"
            "RUN " + GENERATE_SCH,
            NO_COPY_AT_SCH.format(line=3, what="COPY"),
            id="not-visible-to-a-later-run",
        ),
        pytest.param(
            "RUN --mount=type=bind,source=packages/shared/prisma,target=/sch true\n"
            "FROM 0\nRUN " + GENERATE_SCH,
            NO_COPY_AT_SCH.format(line=4, what="COPY"),
            id="not-visible-to-a-later-stage",
        ),
        pytest.param(
            "RUN --mount=type=cache,source=packages/shared/prisma,target=/sch " + GENERATE_SCH,
            NO_COPY_AT_SCH.format(line=2, what="COPY"),
            id="cache-mount",
        ),
        pytest.param(
            "RUN --mount=type=secret,id=s,target=/sch/schema.prisma --mount=type=tmpfs,target=/t "
            "--mount=type=ssh " + GENERATE_SCH,
            NO_COPY_AT_SCH.format(line=2, what="COPY"),
            id="secret-ssh-tmpfs-mounts",
        ),
        pytest.param(
            "COPY packages/shared/prisma /sch/\n"
            "RUN --mount=type=bind,source=services/translator,target=/sch " + GENERATE_SCH,
            NO_COPY_AT_SCH.format(line=3, what="COPY or bind mount of this RUN"),
            id="mount-hides-a-copied-schema",
        ),
    ],
)
def test_bind_mount_that_does_not_prove_anything(repo: Path, body: str, problem: str) -> None:
    _write(repo, X, "FROM busybox\n" + body + "\n")
    report = _gate(repo, X)
    assert (report.verdict, report.problems) == ("fail", (problem,))


def test_bind_mount_of_an_ignored_source_names_the_pattern(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox\nRUN --mount=type=bind,source=packages/shared/prisma,target=/sch "
        + GENERATE_SCH
        + "\n",
    )
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("packages/shared/prisma\n")
    report = _gate(repo, X)
    assert report.verdict == "fail"
    assert report.problems == (
        ".dockerignore:14: pattern 'packages/shared/prisma' excludes "
        "packages/shared/prisma/schema.prisma from the build context; "
        "add '!packages/shared/prisma/schema.prisma' after it or narrow the pattern",
    )
    assert report.warnings == (
        "services/x/Dockerfile:2: RUN --mount source packages/shared/prisma is excluded by "
        ".dockerignore:14 pattern 'packages/shared/prisma'; the build will fail there",
    )


def test_bind_mount_of_the_context_is_filtered_by_the_dockerignore(repo: Path) -> None:
    _default_client_output(repo)
    _write(
        repo,
        X,
        "FROM busybox\nRUN --mount=target=/src "
        "npx prisma generate --schema=/src/packages/shared/prisma/schema.prisma\n",
    )
    assert _gate(repo, X).verdict == "pass"
    with (repo / ".dockerignore").open("a", encoding="utf-8") as fh:
        fh.write("**/prisma\n")
    report = _gate(repo, X)
    assert report.problems[0].startswith(".dockerignore:14: pattern '**/prisma' excludes ")
    assert report.warnings == ()  # the context root itself is never excluded


def test_missing_bind_mount_source_is_a_warning(repo: Path) -> None:
    _write(
        repo,
        X,
        "FROM busybox\nRUN --mount=type=bind,source=packages/nope,target=/sch "
        + GENERATE_SCH
        + "\n",
    )
    report = _gate(repo, X)
    assert report.problems == (
        NO_COPY_AT_SCH.format(line=2, what="COPY or bind mount of this RUN"),
    )
    assert report.warnings == (
        "services/x/Dockerfile:2: RUN --mount source packages/nope is not in the context; "
        "the build will fail there",
    )


# ---------------------------------------------------------------------------------------------
# The gate's messages are plain text: no module of it prints or uses rich


def test_gate_modules_neither_print_nor_import_rich() -> None:
    import ast

    package = Path(__file__).resolve().parents[3] / "tasks/lib/gate"
    offenders: list[str] = []
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n == "rich" or n.startswith("rich.") for n in names):
                offenders.append(f"{module.name}:{line} imports rich")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{module.name}:{line} prints")
    assert offenders == []
