"""Package managers and package runners: what a command such as ``npx -p prisma@6 prisma
generate``, ``pnpm --dir packages/shared exec prisma generate`` or ``npm --workspace=packages/shared
run generate`` actually runs, and in which folder.

Followed: ``npx``, ``bunx``, ``pnpx``, ``npm exec``/``npm x``, ``pnpm exec``/``pnpm dlx``,
``yarn exec``/``yarn dlx``, ``bun x`` (their options, ``-p``/``--package``, ``--``, ``-c``);
scripts run by ``npm run``/``run-script``, ``pnpm run``, ``yarn run``, ``bun run`` and the short
forms ``pnpm NAME``, ``yarn NAME``, ``bun NAME`` (a script of that name, else a binary);
folders chosen by ``npm --prefix DIR``/``--workspace DIR``/``-w DIR``, ``pnpm -C DIR``/``--dir``,
``yarn --cwd DIR``, ``bun --cwd DIR``; ``uv run``, ``poetry run``, ``pipenv run``, ``pdm run``,
``hatch run`` (their leading options skipped). Not followed (reported as such): workspaces
named by package name, ``--filter``, ``--recursive``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tasks.lib.gate.paths import join

#: Options taking the next word as their value, per runner (``--x=value`` always works).
_VALUES = {
    "npm": frozenset(
        {"-w", "--workspace", "--prefix", "-C", "--userconfig", "--cache", "--registry", "-p"}
        | {"--package", "-c", "--call", "--loglevel", "--script-shell"}
    ),
    "pnpm": frozenset({"-C", "--dir", "--filter", "-F", "--package", "--reporter", "-c"}),
    "yarn": frozenset({"--cwd", "-p", "--package"}),
    "bun": frozenset({"--cwd", "-p", "--package", "--filter", "--config", "-c"}),
}
_FOLDER_OPTIONS = frozenset({"-w", "--workspace", "--prefix", "-C", "--dir", "--cwd"})
_UNFOLLOWED = frozenset({"--filter", "-F", "--recursive", "-r", "--workspaces", "-ws"})
_BUILTINS = {
    "npm": frozenset(
        {"install", "i", "ci", "add", "uninstall", "update", "prune", "link", "pack", "publish"}
        | {"cache", "config", "init", "audit", "dedupe", "ls", "outdated", "rebuild", "version"}
        | {"set", "get", "pkg", "view", "whoami", "login", "logout", "help", "doctor", "fund"}
    ),
    "pnpm": frozenset(
        {"install", "i", "add", "remove", "rm", "update", "up", "link", "unlink", "prune"}
        | {"fetch", "store", "import", "rebuild", "audit", "list", "ls", "outdated", "pack"}
        | {"publish", "config", "setup", "env", "deploy", "patch", "why", "licenses", "init"}
    ),
    "yarn": frozenset(
        {"install", "add", "remove", "upgrade", "up", "link", "unlink", "cache", "config"}
        | {"init", "info", "list", "pack", "publish", "set", "plugin", "workspaces", "why"}
        | {"version", "audit", "npm", "constraints", "dedupe", "rebuild"}
    ),
    "bun": frozenset(
        {"install", "i", "add", "a", "remove", "rm", "update", "link", "unlink", "pm", "init"}
        | {"create", "upgrade", "build", "test", "repl", "outdated", "publish", "audit", "patch"}
    ),
}
_RUN = frozenset({"run", "run-script", "rum", "urn"})
_EXEC = frozenset({"exec", "x", "dlx"})
_DIRECT = {"npx": "npm", "bunx": "bun", "pnpx": "pnpm"}
#: Python tools whose ``run`` runs a command in the project's environment.
_PYTHON_RUNNERS = frozenset({"uv", "poetry", "pipenv", "pdm", "hatch"})


@dataclass(frozen=True)
class Exec:
    """Run the program ``words[0]`` (through a runner shown as ``shown``)."""

    words: tuple[str, ...]
    cwd: str
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Script:
    """Run package script ``name`` from the ``package.json`` nearest ``cwd``; ``fallback`` is
    what runs when there is no such script (``yarn prisma``: the ``prisma`` binary)."""

    name: str
    cwd: str
    label: str
    fallback: Exec | None


@dataclass(frozen=True)
class ShellString:
    """``npx -c 'text'``: a shell command line."""

    text: str
    cwd: str


@dataclass(frozen=True)
class Unfollowed:
    """A runner invocation whose folder the gate cannot tell (``--filter``, a workspace by
    package name)."""

    reason: str


Invocation = Exec | Script | ShellString | Unfollowed


def _options(
    runner: str, words: Sequence[str], cwd: str, *, anywhere: bool = False
) -> tuple[list[str], str, dict[str, str], str | None]:
    """Split options off ``words``: leading ones (``anywhere``: all before ``--``, as npm
    reads them). Returns the other words, the folder the options choose, their values, and
    why the folder cannot be told (or ``None``)."""
    values = _VALUES[runner]
    found: dict[str, str] = {}
    rest: list[str] = []
    todo = list(words)
    unfollowed: str | None = None
    while todo:
        word = todo.pop(0)
        if word == "--":
            rest += ["--", *todo] if anywhere else todo
            break
        if not word.startswith("-") or word == "-":
            rest.append(word)
            if anywhere:
                continue
            rest += todo
            break
        name, eq, value = word.partition("=")
        if not eq and name in values and todo:
            value = todo.pop(0)
        if name in _UNFOLLOWED:
            unfollowed = f"{runner} {word}"
        if name in _FOLDER_OPTIONS:
            if value.startswith("@"):
                unfollowed = f"{runner} {name} {value} (a workspace named by package name)"
            cwd = join(cwd, value)
        found[name] = value
    return rest, cwd, found, unfollowed


def _exec_after(runner: str, words: Sequence[str], cwd: str, shown: tuple[str, ...]) -> Invocation:
    rest, cwd, found, unfollowed = _options(runner, words, cwd)
    if unfollowed is not None:
        return Unfollowed(unfollowed)
    call = found.get("-c") or found.get("--call")
    if call is not None:
        return ShellString(call, cwd)
    if rest and rest[0] == "--":
        rest = rest[1:]
    if not rest:
        return Unfollowed(f"{' '.join(shown)} without a command")
    return Exec(tuple(rest), cwd, shown)


def unwrap(words: Sequence[str], cwd: str) -> Invocation | None:
    """What ``words`` run when ``words[0]`` is a package manager or runner, else ``None``."""
    if not words:
        return None
    head = words[0].rsplit("/", 1)[-1]
    if head in _PYTHON_RUNNERS and len(words) > 2 and words[1] == "run":
        rest = list(words[2:])
        while rest and rest[0].startswith("-"):
            rest.pop(0)
        return Exec(tuple(rest), cwd, (head, "run")) if rest else None
    if head in _DIRECT:
        return _exec_after(_DIRECT[head], words[1:], cwd, (head,))
    if head not in _VALUES:
        return None
    rest, cwd, _found, unfollowed = _options(head, words[1:], cwd)
    if not rest:
        return None
    sub = rest[0]
    if unfollowed is not None and (sub in _RUN or sub in _EXEC or sub not in _BUILTINS[head]):
        return Unfollowed(unfollowed)
    if sub in _EXEC and not (head == "npm" and sub == "dlx"):
        return _exec_after(head, rest[1:], cwd, (head, sub))
    if sub in _RUN:
        tail, cwd, _found, unfollowed = _options(head, rest[1:], cwd, anywhere=head == "npm")
        if unfollowed is not None:
            return Unfollowed(unfollowed)
        if not tail or tail[0] == "--":
            return None
        fallback = None if head == "npm" else Exec(tuple(tail), cwd, (head, sub))
        return Script(tail[0], cwd, f"{head} {sub} {tail[0]}", fallback)
    if head == "npm" or sub in _BUILTINS[head]:
        return None
    return Script(sub, cwd, f"{head} {sub}", Exec(tuple(rest), cwd, (head,)))
