"""The Dockerfile parser: grammar, expansion, bases and stage dependencies."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tasks.lib.errors import ConfigError, DockerfileError
from tasks.lib.gate.dockerfile import Heredoc, Instruction, parse
from tasks.lib.gate.expand import expand
from tasks.lib.gate.stages import required_stages, resolve_bases

EXAMPLE = Path(__file__).resolve().parents[3] / "example"


def _one(text: str) -> Instruction:
    """The single instruction after ``FROM scratch``."""
    df = parse("FROM scratch\n" + text)
    assert len(df.stages[0].instructions) == 1
    return df.stages[0].instructions[0]


def _example(rel: str) -> str:
    return (EXAMPLE / rel).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Grammar


@pytest.mark.parametrize(
    ("text", "args", "line", "end_line", "raw"),
    [
        pytest.param(
            "RUN echo a \\\n    b\n", ("echo a     b",), 2, 3, "RUN echo a     b", id="join"
        ),
        pytest.param(
            "RUN echo a \\  \t\n b\n", ("echo a  b",), 2, 3, "RUN echo a  b", id="trailing-ws"
        ),
        pytest.param(
            "RUN echo a \\\n# a comment\n  # indented comment\n\n b\n",
            ("echo a  b",),
            2,
            6,
            "RUN echo a  b",
            id="comments-and-blanks-inside",
        ),
        pytest.param("RUN a \\\n b \\\n c\n", ("a  b  c",), 2, 4, "RUN a  b  c", id="three-lines"),
        pytest.param("RUN echo done \\", ("echo done",), 2, 2, "RUN echo done", id="eof-cont"),
        pytest.param(
            "RUN echo done \\\n\n# trailing comment\n",
            ("echo done",),
            2,
            2,
            "RUN echo done",
            id="eof-cont-after-blank",
        ),
        pytest.param("   RUN   x  \n", ("x",), 2, 2, "RUN   x", id="indented"),
    ],
)
def test_continuations(
    text: str, args: tuple[str, ...], line: int, end_line: int, raw: str
) -> None:
    ins = _one(text)
    assert (ins.args, ins.line, ins.end_line, ins.raw) == (args, line, end_line, raw)


def test_line_numbers_across_the_file() -> None:
    text = '# c\n\nARG A=1\nFROM x \\\n  AS b\n\nRUN one \\\n two\n# c\nCMD ["z"]\n'
    df = parse(text)
    assert [(i.keyword, i.line, i.end_line) for i in df.global_args] == [("ARG", 3, 3)]
    stage = df.stages[0]
    assert (stage.name, stage.base, stage.line) == ("b", "x", 4)
    assert [(i.keyword, i.line, i.end_line) for i in stage.instructions] == [
        ("RUN", 7, 8),
        ("CMD", 10, 10),
    ]


def test_escape_directive_backtick_windows_style() -> None:
    text = (
        "# escape=`\n"
        "\n"
        "FROM mcr.microsoft.com/windows/servercore\n"
        "COPY testfile.txt c:\\\n"
        "RUN dir c:\\\n"
        "RUN echo a `\n"
        "    b\n"
    )
    df = parse(text)
    assert df.escape == "`"
    assert df.directives == (("escape", "`"),)
    got = [(i.keyword, i.args, i.line) for i in df.stages[0].instructions]
    assert got == [
        ("COPY", ("testfile.txt", "c:\\"), 4),
        ("RUN", ("dir c:\\",), 5),
        ("RUN", ("echo a     b",), 6),
    ]


def test_without_directive_backslash_ends_a_line_as_continuation() -> None:
    df = parse("FROM w\nCOPY testfile.txt c:\\\nRUN dir c:\\\n")
    assert [(i.keyword, i.args) for i in df.stages[0].instructions] == [
        ("COPY", ("testfile.txt", "c:RUN", "dir", "c:")),
    ]


@pytest.mark.parametrize(
    ("head", "escape", "directives"),
    [
        pytest.param(
            "# syntax=docker/dockerfile:1\n",
            "\\",
            (("syntax", "docker/dockerfile:1"),),
            id="syntax",
        ),
        pytest.param(
            "# syntax=docker/dockerfile:1.7\n#escape = `\n",
            "`",
            (("syntax", "docker/dockerfile:1.7"), ("escape", "`")),
            id="both",
        ),
        pytest.param("# ESCAPE=`\n", "`", (("escape", "`"),), id="case-insensitive-key"),
        pytest.param("# a comment\n# escape=`\n", "\\", (), id="after-comment-is-comment"),
        pytest.param("\n# escape=`\n", "\\", (), id="after-blank-is-comment"),
        pytest.param("# unknown=1\n# escape=`\n", "\\", (), id="unknown-directive-ends"),
    ],
)
def test_parser_directives(head: str, escape: str, directives: tuple[tuple[str, str], ...]) -> None:
    df = parse(head + "FROM a\n")
    assert (df.escape, df.directives) == (escape, directives)


@pytest.mark.parametrize(
    ("text", "keyword", "args", "json_form"),
    [
        pytest.param('CMD ["a", "b c"]', "CMD", ("a", "b c"), True, id="cmd-json"),
        pytest.param("CMD a  b", "CMD", ("a  b",), False, id="cmd-shell"),
        pytest.param('CMD ["a", 1]', "CMD", ('["a", 1]',), False, id="non-string-falls-back"),
        pytest.param("CMD [a, b]", "CMD", ("[a, b]",), False, id="invalid-json-falls-back"),
        pytest.param('ENTRYPOINT ["x"]', "ENTRYPOINT", ("x",), True, id="entrypoint-json"),
        pytest.param('RUN ["sh", "-c", "x"]', "RUN", ("sh", "-c", "x"), True, id="run-json"),
        pytest.param('RUN echo "[x]"', "RUN", ('echo "[x]"',), False, id="run-shell"),
        pytest.param('COPY ["a b", "c"]', "COPY", ("a b", "c"), True, id="copy-json"),
        pytest.param("COPY a  b\tc", "COPY", ("a", "b", "c"), False, id="copy-words"),
        pytest.param('COPY "a b" c', "COPY", ('"a', 'b"', "c"), False, id="copy-no-quote-split"),
        pytest.param('VOLUME ["/a", "/b"]', "VOLUME", ("/a", "/b"), True, id="volume-json"),
        pytest.param("VOLUME /a /b", "VOLUME", ("/a", "/b"), False, id="volume-words"),
        pytest.param('SHELL ["bash", "-c"]', "SHELL", ("bash", "-c"), True, id="shell"),
        pytest.param("EXPOSE 80 443/tcp", "EXPOSE", ("80", "443/tcp"), False, id="expose"),
        pytest.param("WORKDIR /my dir", "WORKDIR", ("/my dir",), False, id="workdir-one-string"),
        pytest.param("USER 1000:1000", "USER", ("1000:1000",), False, id="user"),
        pytest.param(
            "ENV A=1 B=\"x y\" C='z'", "ENV", ("A", "1", "B", '"x y"', "C", "'z'"), False, id="env"
        ),
        pytest.param("ENV A one two", "ENV", ("A", "one two"), False, id="env-old-form"),
        pytest.param('LABEL a.b="v w" c=d', "LABEL", ("a.b", '"v w"', "c", "d"), False, id="label"),
        pytest.param('ARG A B=2 C="x y"', "ARG", ("A", "B=2", 'C="x y"'), False, id="arg"),
        pytest.param(
            "HEALTHCHECK --interval=5s CMD curl -f x",
            "HEALTHCHECK",
            ("CMD", "curl -f x"),
            False,
            id="healthcheck",
        ),
        pytest.param(
            'HEALTHCHECK CMD ["curl", "x"]', "HEALTHCHECK", ("CMD", "curl", "x"), True, id="hc-json"
        ),
        pytest.param("HEALTHCHECK NONE", "HEALTHCHECK", ("NONE",), False, id="hc-none"),
        pytest.param("STOPSIGNAL SIGTERM", "STOPSIGNAL", ("SIGTERM",), False, id="stopsignal"),
    ],
)
def test_forms(text: str, keyword: str, args: tuple[str, ...], json_form: bool) -> None:
    ins = _one(text + "\n")
    assert (ins.keyword, ins.args, ins.json_form) == (keyword, args, json_form)


@pytest.mark.parametrize(
    ("text", "flags", "args"),
    [
        pytest.param(
            "COPY --from=node:20 --chown=1000:1000 /app/dist ./dist",
            (("from", "node:20"), ("chown", "1000:1000")),
            ("/app/dist", "./dist"),
            id="from-chown",
        ),
        pytest.param(
            "COPY --link --chmod=755 a b", (("link", None), ("chmod", "755")), ("a", "b"), id="bare"
        ),
        pytest.param(
            'COPY --chown="1000:1000" a b', (("chown", "1000:1000"),), ("a", "b"), id="quoted"
        ),
        pytest.param(
            "RUN --mount=type=cache,target=/a --mount=type=secret,id=x --network=none make",
            (
                ("mount", "type=cache,target=/a"),
                ("mount", "type=secret,id=x"),
                ("network", "none"),
            ),
            ("make",),
            id="repeated-mount",
        ),
        pytest.param(
            "RUN --MOUNT=type=bind,from=b,target=/x ls",
            (("mount", "type=bind,from=b,target=/x"),),
            ("ls",),
            id="flag-name-case",
        ),
        pytest.param(
            'RUN --network=host ["ls", "-l"]', (("network", "host"),), ("ls", "-l"), id="json"
        ),
        pytest.param("COPY -- a b", (), ("a", "b"), id="double-dash-ends-flags"),
    ],
)
def test_flags(text: str, flags: tuple[tuple[str, str | None], ...], args: tuple[str, ...]) -> None:
    ins = _one(text + "\n")
    assert (ins.flags, ins.args) == (flags, args)


def test_flag_accessors_keep_order_and_last_value() -> None:
    ins = _one("RUN --mount=type=cache,target=/a --mount=type=cache,target=/b x\n")
    assert ins.flag("mount") == "type=cache,target=/b"
    assert ins.flag_values("mount") == ["type=cache,target=/a", "type=cache,target=/b"]
    assert ins.flag("network") is None
    link = _one("COPY --link a b\n")
    assert (link.flag("link"), link.has_flag("link"), link.has_flag("chown")) == (None, True, False)


def test_from_platform_and_as_any_case() -> None:
    df = parse("FROM --platform=$BUILDPLATFORM node:20 As Build\nfrom build aS Next\n")
    got = [(s.index, s.name, s.base, s.platform, s.line) for s in df.stages]
    assert got == [(0, "build", "node:20", "$BUILDPLATFORM", 1), (1, "next", "build", None, 2)]
    assert df.stage("BUILD") is df.stages[0]
    assert df.stage("1") is df.stages[1]


def test_keywords_are_case_insensitive() -> None:
    df = parse("from a\nrun echo hi\nCoPy x y\nworkdir /w\n")
    assert [i.keyword for i in df.stages[0].instructions] == ["RUN", "COPY", "WORKDIR"]
    assert df.stages[0].instructions[0].raw == "run echo hi"


def test_onbuild_parses_its_trigger() -> None:
    ins = _one("ONBUILD COPY --chown=1 . /app/src\n")
    assert ins.keyword == "ONBUILD"
    assert ins.args == ("COPY --chown=1 . /app/src",)
    assert ins.onbuild is not None
    assert (ins.onbuild.keyword, ins.onbuild.flags, ins.onbuild.args) == (
        "COPY",
        (("chown", "1"),),
        (".", "/app/src"),
    )


# ---------------------------------------------------------------------------------------------
# Heredocs


def test_heredoc_single() -> None:
    ins = _one(
        "RUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nRUN x\n".replace("RUN x\n", "")
    )
    assert ins.heredocs == (
        Heredoc("EOF", "apt-get update\napt-get install -y curl\n", False, False),
    )
    assert (ins.args, ins.line, ins.end_line) == (("<<EOF",), 2, 5)


def test_heredocs_several_on_one_line_strip_tabs_and_quoted() -> None:
    text = (
        "FROM a\n"
        'RUN <<EOF cat > /x && <<-"END" sh\n'
        "  echo $HOME\n"
        "EOF\n"
        "\techo hi\n"
        "\t\tEND\n"
        "RUN next\n"
    )
    df = parse(text)
    first, second = df.stages[0].instructions
    assert first.heredocs == (
        Heredoc("EOF", "  echo $HOME\n", strip_tabs=False, quoted=False),
        Heredoc("END", "echo hi\n", strip_tabs=True, quoted=True),
    )
    assert (first.line, first.end_line) == (2, 6)
    assert (second.args, second.line) == (("next",), 7)


def test_heredoc_copy_and_single_quotes_and_fd() -> None:
    df = parse("FROM a\nCOPY <<'A' <<B /dest/\n$x\nA\ny\nB\nRUN 3<<X cat\nz\nX\n")
    copy, run = df.stages[0].instructions
    assert copy.args == ("<<'A'", "<<B", "/dest/")
    assert copy.heredocs == (Heredoc("A", "$x\n", False, True), Heredoc("B", "y\n", False, False))
    assert run.heredocs == (Heredoc("X", "z\n", False, False),)


def test_heredoc_not_in_quotes_nor_json_nor_other_keywords() -> None:
    df = parse('FROM a\nRUN echo "<<EOF"\nCMD cat <<EOF\nRUN ["cat", "<<EOF"]\n')
    assert [i.heredocs for i in df.stages[0].instructions] == [(), (), ()]


def test_heredoc_body_keeps_comments_and_backslashes() -> None:
    ins = _one("RUN <<EOF\n# not a comment here\necho a \\\nEOF\n")
    assert ins.heredocs[0].body == "# not a comment here\necho a \\\n"


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "FROM a\nFROBNICATE x\n", "Dockerfile:2: unknown instruction: FROBNICATE", id="unknown"
        ),
        pytest.param(
            "ARG X\nFROM\n",
            "Dockerfile:2: FROM is missing the image: use FROM <image> [AS <name>]",
            id="from-missing-image",
        ),
        pytest.param(
            "FROM --platform=linux/amd64\n",
            "Dockerfile:1: FROM is missing the image: use FROM <image> [AS <name>]",
            id="from-only-flag",
        ),
        pytest.param(
            "# comment\nARG A\nENV X=1\nFROM a\n",
            "Dockerfile:3: ENV before the first FROM: only ARG may come before FROM",
            id="before-from",
        ),
        pytest.param(
            "FROM a\nRUN <<EOF\necho\n",
            "Dockerfile:2: unterminated heredoc <<EOF: add a line EOF to end it",
            id="unterminated-heredoc",
        ),
        pytest.param(
            "FROM a\nRUN <<A <<B\na\nA\nb\n",
            "Dockerfile:2: unterminated heredoc <<B: add a line B to end it",
            id="unterminated-second-heredoc",
        ),
        pytest.param(
            "FROM a AS build\nFROM b\nCOPY --from=biuld /a /b\n",
            "Dockerfile:3: COPY --from=biuld: no stage named 'biuld' (stages: build, 1); "
            "name a stage, or an image with its tag (e.g. image:latest)",
            id="copy-from-unknown-stage",
        ),
        pytest.param(
            "FROM a\nFROM b\nCOPY --from=1 /a /b\n",
            "Dockerfile:3: COPY --from=1: stage index 1 is not an earlier stage (this is stage 1)",
            id="copy-from-index-not-earlier",
        ),
        pytest.param(
            "FROM a AS x\nCOPY --from=x /a /b\n",
            "Dockerfile:2: COPY --from=x: a stage cannot copy from itself",
            id="copy-from-itself",
        ),
        pytest.param(
            "ARG A\n",
            "Dockerfile:1: no FROM instruction: a Dockerfile needs FROM <image>",
            id="no-from",
        ),
        pytest.param(
            "", "Dockerfile:1: no FROM instruction: a Dockerfile needs FROM <image>", id="empty"
        ),
        pytest.param(
            "FROM a\nCOPY --form=x a b\n", "Dockerfile:2: COPY: unknown flag --form", id="bad-flag"
        ),
        pytest.param("FROM a\nCMD --x\n", "Dockerfile:2: CMD: unknown flag --x", id="flag-on-cmd"),
        pytest.param(
            "FROM a AS b\nFROM c AS B\n", "Dockerfile:2: duplicate stage name 'b'", id="dup-stage"
        ),
        pytest.param(
            "FROM a AS 1x\n",
            "Dockerfile:1: invalid stage name '1x': use letters, digits, '.', '_' or '-'",
            id="bad-stage-name",
        ),
        pytest.param(
            "FROM a b\n", "Dockerfile:1: FROM takes <image> [AS <name>]", id="from-two-words"
        ),
        pytest.param(
            "FROM a\nCOPY onlyone\n",
            "Dockerfile:2: COPY requires at least a source and a destination",
            id="copy-one-arg",
        ),
        pytest.param(
            "FROM a\nSHELL sh -c\n",
            'Dockerfile:2: SHELL requires the JSON form: SHELL ["sh", "-c"]',
            id="shell-not-json",
        ),
        pytest.param(
            "# escape=x\nFROM a\n",
            "Dockerfile:1: invalid escape token 'x': use ` or \\",
            id="bad-escape",
        ),
        pytest.param(
            "# escape=`\n# escape=\\\nFROM a\n",
            "Dockerfile:2: only one escape parser directive can be used",
            id="two-escapes",
        ),
        pytest.param(
            "FROM a\nENV A=1 B\n",
            "Dockerfile:2: ENV: can't find = in 'B'; use the form name=value",
            id="env-missing-equals",
        ),
        pytest.param(
            "FROM a\nONBUILD ONBUILD RUN x\n",
            "Dockerfile:2: ONBUILD isn't allowed as an ONBUILD trigger",
            id="onbuild-onbuild",
        ),
        pytest.param(
            "FROM a\nONBUILD FROM b\n",
            "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger",
            id="onbuild-from",
        ),
        pytest.param(
            "FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires an argument", id="workdir-empty"
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    assert str(info.value) == message
    assert info.value.lineno == int(message.split(":")[1])


def test_error_names_the_given_path() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\n\n\nBAD x\n", "services/x/Dockerfile")
    assert (str(info.value), info.value.path) == (
        "services/x/Dockerfile:4: unknown instruction: BAD",
        "services/x/Dockerfile",
    )


def test_copy_from_an_image_reference_is_not_an_error() -> None:
    df = parse("FROM a\nCOPY --from=nginx:1.27 /etc/nginx /x\nCOPY --from=$IMG /a /b\n")
    assert [i.flag("from") for i in df.stages[0].instructions] == ["nginx:1.27", "$IMG"]


# ---------------------------------------------------------------------------------------------
# expand


ENV = {"A": "1", "E": "", "P": "/usr/local/bin", "N": "file.tar.gz"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "1"),
        ("${A}", "1"),
        ("x${A}y", "x1y"),
        ("$A$A", "11"),
        ("$U", ""),
        ("${U}", ""),
        ("${U:-d}", "d"),
        ("${E:-d}", "d"),
        ("${A:-d}", "1"),
        ("${U-d}", "d"),
        ("${E-d}", ""),
        ("${U:+s}", ""),
        ("${E:+s}", ""),
        ("${A:+s}", "s"),
        ("${U+s}", ""),
        ("${E+s}", "s"),
        ("${U:-${A}z}", "1z"),
        ("${U:-a b}", "a b"),
        ('"$A b"', "1 b"),
        ('"${A}"x', "1x"),
        ("'$A'", "$A"),
        ("'a\"b'", 'a"b'),
        ('"a\\"b"', 'a"b'),
        ('"a\\b"', "a\\b"),
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$-x", "$-x"),
        ("${P#*/}", "usr/local/bin"),
        ("${P##*/}", "bin"),
        ("${N%.*}", "file.tar"),
        ("${N%%.*}", "file"),
        ("runtime-${TORCH_BACKEND:-cpu}", "runtime-cpu"),
    ],
)
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_expand_with_backtick_escape() -> None:
    assert expand("c:\\path`$A", ENV, escape="`") == "c:\\path$A"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "cannot expand '${A': missing '}'"),
        ("${}", "cannot expand '${}': bad substitution"),
        ("'x", 'cannot expand "\'x": unterminated single quote'),
        ('"x', "cannot expand '\"x': unterminated double quote"),
        ("${U:?must be set}", "cannot expand '${U:?must be set}': U: must be set"),
        ("${A/x/y}", "cannot expand '${A/x/y}': unsupported modifier in ${A...}"),
    ],
)
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        expand(word, ENV)
    assert str(info.value) == message


@pytest.mark.parametrize("seed", range(25))
def test_expand_property_plain_words_are_unchanged(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcXYZ019-_./:@=+,"
    word = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
    assert expand(word, ENV) == word
    name = rng.choice(["A", "P", "N"])
    assert expand(f"{word}${{{name}}}{word}", ENV) == word + ENV[name] + word


# ---------------------------------------------------------------------------------------------
# Property: formatting does not change the meaning


_CANONICAL = [
    ("FROM", "busybox AS base"),
    ("WORKDIR", "/app"),
    ("COPY", "--from=node:20 --chown=1:1 /a /b"),
    ("RUN", "--mount=type=cache,target=/c echo one two three"),
    ("ENV", "K=v"),
    ("CMD", '["a", "b"]'),
]


def _render(rng: random.Random) -> str:
    out: list[str] = []
    for keyword, rest in _CANONICAL:
        if rng.random() < 0.4:
            out.append(rng.choice(["", "# a comment", "   ", "  # indented"]))
        kw = "".join(c.lower() if rng.random() < 0.5 else c for c in keyword)
        words = rest.split(" ")
        pieces = [kw]
        for word in words:
            sep = " "
            if rng.random() < 0.3 and keyword not in ("CMD",):
                sep = " \\\n" + rng.choice(["", "# inner comment\n", "\n"]) + "  "
            pieces.append(sep + word)
        out.append("".join(pieces))
    return "\n".join(out) + "\n"


def _meaning(text: str) -> list[tuple[str, tuple[tuple[str, str | None], ...], tuple[str, ...]]]:
    df = parse(text)
    stage = df.stages[0]
    return [("FROM", (), (stage.base, stage.name or ""))] + [
        (i.keyword, i.flags, tuple(" ".join(a.split()) for a in i.args)) for i in stage.instructions
    ]


@pytest.mark.parametrize("seed", range(40))
def test_property_formatting_is_irrelevant(seed: int) -> None:
    rng = random.Random(seed)
    assert _meaning(_render(rng)) == [
        ("FROM", (), ("busybox", "base")),
        ("WORKDIR", (), ("/app",)),
        ("COPY", (("from", "node:20"), ("chown", "1:1")), ("/a", "/b")),
        ("RUN", (("mount", "type=cache,target=/c"),), ("echo one two three",)),
        ("ENV", (), ("K", "v")),
        ("CMD", (), ("a", "b")),
    ]


# ---------------------------------------------------------------------------------------------
# Bases and required stages


def test_resolve_bases_translator_default_and_build_arg() -> None:
    df = parse(_example("services/translator/Dockerfile"), "services/translator/Dockerfile")
    assert resolve_bases(df, {}) == ["busybox", "base", "base", "base", "base", "runtime-cpu"]
    assert resolve_bases(df, {"TORCH_BACKEND": "gpu-cu121"})[-1] == "runtime-gpu-cu121"


def test_resolve_bases_ignores_undeclared_build_args_and_chains_defaults() -> None:
    df = parse("ARG REG=docker.io\nARG IMG=${REG}/node\nFROM ${IMG}:${TAG:-20}\n")
    assert resolve_bases(df, {"TAG": "22"}) == ["docker.io/node:20"]
    assert resolve_bases(df, {"REG": "ghcr.io"}) == ["ghcr.io/node:20"]
    assert resolve_bases(df, {"IMG": "alpine"}) == ["alpine:20"]


def test_resolve_bases_empty_is_an_error() -> None:
    df = parse("ARG BASE\nFROM busybox\nFROM ${BASE}\n", "x/Dockerfile")
    with pytest.raises(DockerfileError) as info:
        resolve_bases(df, {})
    assert str(info.value) == (
        "x/Dockerfile:3: FROM ${BASE} resolves to an empty image name; "
        "set BASE with a global ARG default or --build-arg"
    )
    assert resolve_bases(df, {"BASE": "alpine"}) == ["busybox", "alpine"]


@pytest.mark.parametrize(
    ("backend", "stages"),
    [
        ("cpu", ["base", "runtime-cpu", "runtime"]),
        ("gpu", ["base", "runtime-gpu", "runtime"]),
        ("gpu-cu121", ["base", "runtime-gpu-cu121", "runtime"]),
        ("gpu-cu118", ["base", "runtime-gpu-cu118", "runtime"]),
        ("tpu", ["runtime"]),
    ],
)
def test_required_stages_translator(backend: str, stages: list[str]) -> None:
    df = parse(_example("services/translator/Dockerfile"), "services/translator/Dockerfile")
    assert [s.name for s in required_stages(df, {"TORCH_BACKEND": backend})] == stages


def test_required_stages_translator_default_is_cpu() -> None:
    df = parse(_example("services/translator/Dockerfile"))
    assert [s.name for s in required_stages(df, {})] == ["base", "runtime-cpu", "runtime"]


@pytest.mark.parametrize(
    ("rel", "target", "stages"),
    [
        ("services/gateway/Dockerfile", None, ["base", "deps", "builder", "runner"]),
        ("services/gateway/Dockerfile", "deps", ["base", "deps"]),
        ("services/gateway/Dockerfile", "BASE", ["base"]),
        ("apps/web/Dockerfile", None, ["base", "builder", "runner"]),
    ],
)
def test_required_stages_examples(rel: str, target: str | None, stages: list[str]) -> None:
    df = parse(_example(rel), rel)
    assert [s.name for s in required_stages(df, {}, target)] == stages


def test_required_stages_copy_from_index_mount_from_and_unused() -> None:
    text = (
        "FROM alpine\n"  # 0
        "RUN echo zero\n"
        "FROM alpine AS unused\n"  # 1
        "FROM alpine AS tools\n"  # 2
        "FROM alpine AS cache\n"  # 3
        "FROM alpine AS final\n"  # 4
        "COPY --from=0 /x /x\n"
        "RUN --mount=type=bind,from=tools,target=/t ls /t\n"
        "ADD --chown=1 a b\n"
    )
    df = parse(text)
    assert [s.index for s in required_stages(df, {})] == [0, 2, 4]
    assert [s.index for s in required_stages(df, {}, "cache")] == [3]


def test_required_stages_follow_from_chains_and_expanded_from() -> None:
    text = (
        "ARG SRC=one\n"
        "FROM a AS one\n"
        "FROM a AS two\n"
        "FROM one AS three\n"
        "ARG SRC\n"
        "COPY --from=${SRC} /x /y\n"
        "FROM three\n"
    )
    df = parse(text)
    assert [s.label for s in required_stages(df, {})] == ["one", "three", "3"]
    assert [s.label for s in required_stages(df, {"SRC": "two"})] == ["one", "two", "three", "3"]


def test_required_stages_target_not_found() -> None:
    df = parse("FROM a AS x\nFROM b AS y\n", "d/Dockerfile")
    with pytest.raises(DockerfileError) as info:
        required_stages(df, {}, "z")
    assert str(info.value) == "d/Dockerfile:2: target stage 'z' not found; stages are: x, y"


def test_from_stage_name_is_case_insensitive_and_only_earlier() -> None:
    df = parse("FROM later AS first\nFROM a AS Later\nFROM FIRST\n")
    assert [s.label for s in required_stages(df, {})] == ["first", "2"]
