"""Recognising a Prisma CLI command and the schema it is told to use.

``prisma`` is the command when its name (a path's last part, a ``@version`` dropped) is
``prisma``, when ``node`` runs Prisma's own entry point (``.../prisma/build/index.js``), or
``python -m prisma`` (Prisma Client Python's CLI).
Where Prisma looks for the schema when ``--schema`` is not given is the caller's business
(:mod:`tasks.lib.gate.commands`): ``package.json``'s ``prisma.schema``, then
``./prisma/schema.prisma``, then ``./schema.prisma``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Options of the Prisma CLI that take a value as the next word.
_VALUE_OPTIONS = frozenset({"--schema", "--generator", "--config", "--name", "--url", "--output"})
#: Subcommands that rewrite the schema file.
_REWRITES = frozenset({"format", "db pull", "introspect"})


@dataclass(frozen=True)
class PrismaCommand:
    """A Prisma CLI invocation."""

    subcommand: str  # "generate", "format", "db pull", "migrate deploy", ...
    schema: str | None  # the --schema value, as given
    generators: tuple[str, ...]  # --generator values

    @property
    def generates(self) -> bool:
        """Whether it is ``prisma generate``."""
        return self.subcommand == "generate"

    @property
    def rewrites_schema(self) -> bool:
        """Whether it rewrites the schema file (``format``, ``db pull``)."""
        return self.subcommand in _REWRITES


def is_prisma(word: str) -> bool:
    """Whether ``word`` names the Prisma CLI (``prisma``, ``prisma@6.19.2``, a path to it)."""
    name = word.rsplit("/", 1)[-1]
    return name == "prisma" or name.startswith("prisma@")


def parse_prisma(words: Sequence[str]) -> PrismaCommand | None:
    """The Prisma command ``words`` run, or ``None`` when they do not run Prisma."""
    if not words:
        return None
    args: list[str]
    if is_prisma(words[0]):
        args = list(words[1:])
    elif words[0].rsplit("/", 1)[-1].startswith("python") and list(words[1:3]) == ["-m", "prisma"]:
        args = list(words[3:])  # Prisma Client Python's CLI
    elif words[0].rsplit("/", 1)[-1] == "node" and len(words) > 1:
        script = words[1]
        if not script.endswith(("prisma/build/index.js", "/.bin/prisma")):
            return None
        args = list(words[2:])
    else:
        return None
    positional: list[str] = []
    schema: str | None = None
    generators: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        name, eq, value = word.partition("=")
        if word.startswith("-") and name in _VALUE_OPTIONS:
            if not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
                i += 1
            if name == "--schema":
                schema = value
            elif name == "--generator":
                generators.append(value)
        elif not word.startswith("-"):
            positional.append(word)
        i += 1
    if not positional:
        return None
    sub = positional[0]
    if sub in ("db", "migrate") and len(positional) > 1:
        sub = f"{sub} {positional[1]}"
    return PrismaCommand(sub, schema, tuple(generators))
