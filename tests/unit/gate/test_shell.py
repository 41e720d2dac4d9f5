"""Splitting RUN shell text into simple commands, and runners: what a command really runs."""

from __future__ import annotations

import pytest

from tasks.lib.gate.runners import Exec, Script, ShellString, Unfollowed, unwrap
from tasks.lib.gate.shell import UNKNOWN, commands, substitute


def _words(text: str) -> list[tuple[str, ...]]:
    return [c.words for c in commands(text) if not c.loop]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("a && b || c; d | e & f", [("a",), ("b",), ("c",), ("d",), ("e",), ("f",)]),
        pytest.param(
            'if [ "$PM" = bun ]; then bun x prisma generate; else pnpm exec prisma generate; fi',
            [
                ("[", "$PM", "=", "bun", "]"),
                ("bun", "x", "prisma", "generate"),
                ("pnpm", "exec", "prisma", "generate"),
            ],
            id="if-then-else",
        ),
        pytest.param(
            "while true; do npx prisma generate && break; done",
            [("true",), ("npx", "prisma", "generate"), ("break",)],
            id="while-do",
        ),
        pytest.param(
            "case $PM in bun|bunx) bunx prisma generate ;; *) npx prisma generate ;; esac",
            [("bunx", "prisma", "generate"), ("npx", "prisma", "generate")],
            id="case",
        ),
        pytest.param(
            "(cd shared && make) && { echo a; echo b; }",
            [("cd", "shared"), ("make",), ("echo", "a"), ("echo", "b")],
            id="groups",
        ),
        pytest.param(
            "echo a # npx prisma generate\necho b#c",
            [("echo", "a"), ("echo", "b#c")],
            id="comments-at-word-start-only",
        ),
        pytest.param(
            "npm run generate 2>&1 > /tmp/log", [("npm", "run", "generate")], id="fd-numbers"
        ),
        pytest.param(
            'NODE_OPTIONS="--max a" npx prisma generate',
            [("NODE_OPTIONS=--max a", "npx", "prisma", "generate")],
            id="quoted-assignment",
        ),
        pytest.param("a \\\n && b", [("a",), ("b",)], id="line-continuation"),
    ],
)
def test_commands(text: str, words: list[tuple[str, ...]]) -> None:
    assert _words(text) == words


def test_redirections_and_what_follows() -> None:
    cmds = commands("prisma generate || true; cat x > out.txt 2>>err | tee -a log")
    assert [(c.words[0], c.next_op, c.last_in_list) for c in cmds] == [
        ("prisma", "||", False),
        ("true", ";", False),
        ("cat", "|", False),
        ("tee", None, True),
    ]
    assert [(r.op, r.target) for r in cmds[2].redirects] == [(">", "out.txt"), (">>", "err")]


def test_a_branch_ends_its_list() -> None:
    cmds = commands("if x; then prisma generate; else y; fi; echo done")
    assert [(c.words[0], c.condition, c.last_in_list) for c in cmds] == [
        ("x", True, True),
        ("prisma", False, True),
        ("y", False, True),
        ("echo", False, True),
    ]


def test_for_header_is_kept_for_its_variable() -> None:
    cmds = commands("for g in client client_py; do prisma generate --generator $g; done")
    assert [(c.loop, c.words) for c in cmds] == [
        (True, ("g", "client", "client_py")),
        (False, ("prisma", "generate", "--generator", "$g")),
    ]


@pytest.mark.parametrize(
    ("text", "env", "expanded"),
    [
        pytest.param("--schema=$(pwd)/s.prisma", {"PWD": "/w"}, "--schema=/w/s.prisma", id="pwd"),
        pytest.param("`pwd -P`/s", {"PWD": "/w"}, "/w/s", id="backticks"),
        pytest.param('"$PWD/a"', {"PWD": "/w"}, "/w/a", id="PWD"),
        pytest.param("${S:-./db}/x", {}, "./db/x", id="default"),
        pytest.param("'$HOME'", {"HOME": "/root"}, "$HOME", id="single-quotes-keep-dollar"),
        pytest.param("\\$HOME", {"HOME": "/root"}, "$HOME", id="escaped-dollar"),
        pytest.param("$(cat f)/x", {}, f"{UNKNOWN}/x", id="unknown-substitution"),
        pytest.param("$((1 + 2))", {}, UNKNOWN, id="arithmetic"),
    ],
)
def test_substitute(text: str, env: dict[str, str], expanded: str) -> None:
    (cmd,) = commands(f"echo {text}")
    assert substitute(cmd.words[1], env) == expanded


def test_unterminated_quote_is_an_error() -> None:
    with pytest.raises(ValueError):
        commands('echo "unterminated')


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("npx -p prisma@6.19.2 prisma generate", Exec(("prisma", "generate"), "/app", ("npx",))),
        ("bunx --bun prisma@6 generate", Exec(("prisma@6", "generate"), "/app", ("bunx",))),
        ("pnpx prisma generate", Exec(("prisma", "generate"), "/app", ("pnpx",))),
        ("npm x -y -- prisma generate", Exec(("prisma", "generate"), "/app", ("npm", "x"))),
        (
            "pnpm -C packages/shared dlx prisma generate",
            Exec(("prisma", "generate"), "/app/packages/shared", ("pnpm", "dlx")),
        ),
        (
            "yarn dlx -p prisma prisma generate",
            Exec(("prisma", "generate"), "/app", ("yarn", "dlx")),
        ),
        ("npx -c 'prisma generate'", ShellString("prisma generate", "/app")),
        (
            "npm --prefix=packages/shared run-script generate",
            Script("generate", "/app/packages/shared", "npm run-script generate", None),
        ),
        (
            "npm run generate -w packages/shared -- --x",
            Script("generate", "/app/packages/shared", "npm run generate", None),
        ),
        (
            "bun --cwd packages/shared run generate",
            Script(
                "generate",
                "/app/packages/shared",
                "bun run generate",
                Exec(("generate",), "/app/packages/shared", ("bun", "run")),
            ),
        ),
        (
            "yarn prisma generate",
            Script(
                "prisma", "/app", "yarn prisma", Exec(("prisma", "generate"), "/app", ("yarn",))
            ),
        ),
        ("pnpm --filter @meeshy/shared run generate", Unfollowed("pnpm --filter")),
        ("npm install", None),
        ("bun install --frozen-lockfile", None),
        ("prisma generate", None),
    ],
)
def test_unwrap(line: str, expected: object) -> None:
    words = commands(line)[0].words
    assert unwrap(list(words), "/app") == expected
