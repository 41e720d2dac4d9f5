"""Command analysis: what one ``RUN`` does, command after command.

For each simple command (see :mod:`tasks.lib.gate.shell`) it follows ``cd``, variable
assignments and ``export``, ``set -e``, ``$PWD``/``$(pwd)``, shells (``sh -c``, a heredoc fed
to a shell, a script file the image holds), package runners and package scripts (see
:mod:`tasks.lib.gate.runners`; a script is read from the ``package.json`` nearest the folder,
as npm does). It records the file operations of each command in the
:class:`~tasks.lib.gate.paths.PathMap` as it goes, so a later command of the same ``RUN`` sees
them, and returns the ``prisma generate`` commands it found, each with the schema file it reads
at that moment, the client folders it writes, and whether its failure would fail the ``RUN``.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.lib.gate import fileops, runners, shell
from tasks.lib.gate.dockerfile import Heredoc, Instruction
from tasks.lib.gate.paths import Copy, Entry, Op, PathMap, join, under
from tasks.lib.gate.prisma import PrismaCommand, parse_prisma
from tasks.lib.gate.schema import Generator, parse_generators
from tasks.lib.gate.stages import Scope

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})
_PREFIXES = frozenset({"sudo", "exec", "time", "nice", "nohup", "command", "doas"})
_BUILD_TOOLS = frozenset(
    {"next", "tsc", "vite", "webpack", "nest", "react-scripts", "turbo", "nx", "esbuild"}
    | {"rollup", "parcel", "tsup", "swc", "babel"}
)
_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Generate:
    """A ``prisma generate`` found in a RUN."""

    stage: int
    line: int
    shown: str  # "npx prisma generate"
    via: str | None  # "npm run generate: script in packages/shared/package.json"
    cwd: str
    target: str | None  # the schema path it reads in the image (None: cannot tell)
    unknown: str | None  # why the target cannot be told
    read: Entry | None  # what it reads there (symlinks followed)
    position: int  # the stage's events before it
    masked: str | None  # why its failure would not fail the RUN (None: it would)
    produced: tuple[Op, ...]  # the client folders it writes into the image
    mounted: bool  # the RUN has bind mounts
    lost: tuple[tuple[str, str], ...] = ()  # (client folder, bind mount target) not kept


@dataclass(frozen=True)
class AppBuild:
    """A command that builds the app (a ``build`` script, ``next build``, ``tsc``...)."""

    stage: int
    line: int
    shown: str
    position: int


@dataclass
class RunResult:
    """What one RUN was found to do."""

    generates: list[Generate] = field(default_factory=list)
    builds: list[AppBuild] = field(default_factory=list)
    unfollowed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _marker(name: str) -> str:
    return r"\d*<<-?[\"']?" + re.escape(name) + r"[\"']?"


def script_heredocs(text: str, heredocs: Sequence[Heredoc]) -> list[tuple[Heredoc, bool]]:
    """Heredocs a RUN runs as shell scripts (``RUN <<EOF`` alone, or fed to a shell), each
    with whether that shell has ``-e``."""
    rest = text
    for heredoc in heredocs:
        rest = re.sub(_marker(heredoc.name), "", rest)
    if not rest.strip():
        return [(h, False) for h in heredocs]
    scripts: list[tuple[Heredoc, bool]] = []
    for heredoc in heredocs:
        for segment in re.split(r"&&|\|\||;|\||\n", text):
            if re.search(_marker(heredoc.name), segment):
                words = re.sub(_marker(heredoc.name), "", segment).split()
                if words and words[0].rsplit("/", 1)[-1] in _SHELLS:
                    errexit = any(w.startswith("-") and "e" in w[1:] for w in words[1:])
                    scripts.append((heredoc, errexit))
    return scripts


def _read_text(paths: PathMap, entry: Entry | None) -> str | None:
    if entry is None:
        return None
    if entry.origin == "heredoc":
        return entry.content
    if entry.origin == "context" and entry.kind == "file" and entry.context_path is not None:
        return paths.context.read_text(entry.context_path)
    return None


@functools.lru_cache(maxsize=256)
def _json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class RunAnalyzer:
    """Analyses the RUN instructions of one Dockerfile into a :class:`PathMap`."""

    def __init__(self, paths: PathMap, df_path: str) -> None:
        self.paths = paths
        self.df_path = df_path

    def analyze(
        self, stage: int, ins: Instruction, scope: Scope, mounts: Sequence[Copy]
    ) -> RunResult:
        """Analyse RUN ``ins`` of ``stage`` (with its bind ``mounts``), recording its file
        operations; returns what it found."""
        run = _Run(self.paths, self.df_path, stage, ins.line, tuple(mounts))
        env = scope.vars()
        cwd = scope.workdir
        if ins.json_form:
            run.command(list(ins.args), [], cwd, env, 0, None, None, "")
            return run.result
        text = ins.args[0] if ins.args else ""
        run.run_shell(text, cwd, env, 0, None, errexit=False, masked=None)
        for heredoc, errexit in script_heredocs(text, ins.heredocs):
            run.run_shell(heredoc.body, cwd, env, 0, None, errexit=errexit, masked=None)
        return run.result


class _Run:
    """The analysis of one RUN."""

    def __init__(
        self, paths: PathMap, df_path: str, stage: int, line: int, mounts: tuple[Copy, ...]
    ) -> None:
        self.paths = paths
        self.df_path = df_path
        self.stage = stage
        self.line = line
        self.mounts = mounts
        self.run_start = paths.end(stage)
        self.result = RunResult()

    # reading the image as this RUN sees it

    def read(self, path: str) -> Entry | None:
        """What this RUN reads at ``path`` now (its bind mounts and earlier commands seen)."""
        return self.paths.read(
            self.stage, path, self.paths.end(self.stage), self.mounts, self.run_start
        )

    def lookup(self, path: str) -> Entry | None:
        """Like :meth:`read`, a symlink at ``path`` itself not followed."""
        return self.paths.lookup(
            self.stage, path, self.paths.end(self.stage), self.mounts, self.run_start
        )

    def add(self, ops: Sequence[Op]) -> None:
        for op in ops:
            self.paths.add(op)

    def where(self) -> str:
        return f"{self.df_path}:{self.line}"

    # shell text

    def run_shell(
        self,
        text: str,
        cwd: str,
        env: Mapping[str, str],
        depth: int,
        via: str | None,
        *,
        errexit: bool,
        masked: str | None,
    ) -> None:
        if depth > _MAX_DEPTH:
            return
        try:
            commands = shell.commands(text)
        except ValueError as exc:
            self.result.warnings.append(
                f"{self.where()}: the gate cannot split this shell text ({exc}); "
                "the build's shell will likely refuse it too"
            )
            return
        env = _Env(env)  # assignments of this shell, over what it inherits
        for k, cmd in enumerate(commands):
            if cmd.loop:  # for NAME in WORDS: the body is read for the first word
                local = _ShellVars(env, cwd)
                values = [shell.substitute(w, local) for w in cmd.words[1:]]
                env.own[cmd.words[0]] = next((v for w in values for v in w.split()), "")
                continue
            words = list(cmd.words)
            redirects = list(cmd.redirects)
            if any("$" in w for w in words) or any("$" in r.target for r in redirects):
                local = _ShellVars(env, cwd)
                words = [shell.substitute(w, local) for w in words]
                redirects = [
                    shell.Redirect(r.op, shell.substitute(r.target, local)) for r in redirects
                ]
            elif any(shell.LITERAL_DOLLAR in w for w in words):
                words = [w.replace(shell.LITERAL_DOLLAR, "$") for w in words]
            assigns: dict[str, str] = {}
            while words and _ASSIGN_RE.match(words[0]):
                name, _, value = words.pop(0).partition("=")
                assigns[name] = value
            if not words:
                env.own.update(assigns)
                self.add(fileops.redirect_ops([], redirects, cwd, self.stage, self.line))
                continue
            head = words[0]
            if head == "cd":
                target = next((w for w in words[1:] if w != "--" and not w.startswith("-")), None)
                if target is not None and target != "-" and shell.known(target):
                    cwd = join(cwd, target)
                continue
            if head == "set":
                errexit = _errexit(words[1:], errexit)
                continue
            if head == "export":
                for word in words[1:]:
                    name, eq, value = word.partition("=")
                    if eq and _ASSIGN_RE.match(word):
                        env.own[name] = value
                continue
            why = masked or _masked(commands, k, errexit)
            self.command(words, redirects, cwd, _Env(env, assigns), depth, via, why, "")

    def command(
        self,
        words: list[str],
        redirects: Sequence[shell.Redirect],
        cwd: str,
        env: Mapping[str, str],
        depth: int,
        via: str | None,
        masked: str | None,
        runner: str,
    ) -> None:
        if depth > _MAX_DEPTH or not words:
            return
        self.add(fileops.redirect_ops(words, redirects, cwd, self.stage, self.line))
        words = _strip_prefixes(words)
        if not words:
            return
        head = words[0].rsplit("/", 1)[-1]
        if head in _SHELLS:
            self._shell_command(words, cwd, env, depth, via, masked)
            return
        if words[0].endswith(".sh") or (words[0].startswith(("./", "/")) and "." in head):
            self._script_file(join(cwd, words[0]), cwd, env, depth, via, masked)
            return
        invocation = runners.unwrap(words, cwd)
        if isinstance(invocation, runners.Unfollowed):
            self.result.unfollowed.append(
                f"{self.where()}: `{fileops.shown(words)}`: {invocation.reason}"
            )
            return
        if isinstance(invocation, runners.Exec):
            shown = " ".join(invocation.shown)
            self.command(
                list(invocation.words), [], invocation.cwd, env, depth + 1, via, masked, shown
            )
            return
        if isinstance(invocation, runners.ShellString):
            self.run_shell(
                invocation.text, invocation.cwd, env, depth + 1, via, errexit=False, masked=masked
            )
            return
        if isinstance(invocation, runners.Script):
            self._script(invocation, env, depth, via, masked)
            return
        prisma = parse_prisma(words)
        if prisma is not None:
            self._prisma(prisma, words, cwd, via, masked, runner)
            return
        if head in _BUILD_TOOLS:
            self._build(fileops.shown([*runner.split(), *words]))
        self.add(fileops.file_ops(words, [], cwd, self.stage, self.line))

    def _shell_command(
        self,
        words: list[str],
        cwd: str,
        env: Mapping[str, str],
        depth: int,
        via: str | None,
        masked: str | None,
    ) -> None:
        errexit = False
        for i, word in enumerate(words[1:], 1):
            if word.startswith("-") and not word.startswith("--"):
                errexit = errexit or "e" in word[1:]
                if "c" in word[1:] and i + 1 < len(words):
                    self.run_shell(
                        words[i + 1], cwd, env, depth + 1, via, errexit=errexit, masked=masked
                    )
                    return
                continue
            self._script_file(join(cwd, word), cwd, env, depth, via, masked)
            return

    def _script_file(
        self,
        path: str,
        cwd: str,
        env: Mapping[str, str],
        depth: int,
        via: str | None,
        masked: str | None,
    ) -> None:
        text = _read_text(self.paths, self.read(path))
        if text is not None:
            self.run_shell(
                text, cwd, env, depth + 1, via or f"script {path}", errexit=False, masked=masked
            )

    def _script(
        self,
        invocation: runners.Script,
        env: Mapping[str, str],
        depth: int,
        via: str | None,
        masked: str | None,
    ) -> None:
        found = self._package_script(invocation.cwd, invocation.name)
        if found is None:
            if invocation.fallback is not None:
                fallback = invocation.fallback
                shown = " ".join(fallback.shown)
                self.command(
                    list(fallback.words), [], fallback.cwd, env, depth + 1, via, masked, shown
                )
            return
        body, origin, folder = found
        if "build" in invocation.name:
            self._build(invocation.label)
        label = via or f"{invocation.label}: script in {origin}"
        self.run_shell(body, folder, env, depth + 1, label, errexit=False, masked=masked)

    def _package_script(self, cwd: str, name: str) -> tuple[str, str, str] | None:
        """The body of script ``name`` in the ``package.json`` nearest ``cwd``, where that
        file comes from, and its folder."""
        folder = cwd
        while True:
            entry = self.read(join(folder, "package.json"))
            if entry is not None and entry.present:
                data = _json(_read_text(self.paths, entry))
                scripts = data.get("scripts") if data else None
                if isinstance(scripts, dict) and isinstance(scripts.get(name), str):
                    origin = entry.context_path or join(folder, "package.json")
                    return str(scripts[name]), origin, folder
                return None
            if folder == "/":
                return None
            folder = posixpath.dirname(folder)

    def _build(self, shown: str) -> None:
        self.result.builds.append(
            AppBuild(self.stage, self.line, shown, self.paths.end(self.stage))
        )

    # prisma

    def _prisma(
        self,
        prisma: PrismaCommand,
        words: Sequence[str],
        cwd: str,
        via: str | None,
        masked: str | None,
        runner: str,
    ) -> None:
        target, unknown = self._schema_path(prisma, cwd)
        shown = " ".join(filter(None, [runner, "prisma", prisma.subcommand]))
        if prisma.rewrites_schema:
            if target is not None:
                text = fileops.shown(words)
                self.add([Op(self.stage, self.line, text, "write", (target,))])
            return
        if not prisma.generates:
            return
        entry = self.read(target) if target is not None else None
        produced: list[Op] = []
        lost: list[tuple[str, str]] = []
        if target is not None and entry is not None and entry.present:
            for generator in self._generators(entry, prisma.generators):
                if generator.output:
                    out = join(posixpath.dirname(target), generator.output)
                    mount = next((m.dest for m in self.mounts if under(out, m.dest)), None)
                    if mount is not None:
                        lost.append((out, mount))  # written into the mount: not kept
                        continue
                    produced.append(Op(self.stage, self.line, shown, "produce", (out,)))
        position = self.paths.end(self.stage)
        self.add(produced)
        self.result.generates.append(
            Generate(
                stage=self.stage,
                line=self.line,
                shown=shown,
                via=via,
                cwd=cwd,
                target=target,
                unknown=unknown,
                read=entry,
                position=position,
                masked=masked,
                produced=tuple(produced),
                mounted=bool(self.mounts),
                lost=tuple(lost),
            )
        )

    def _schema_path(self, prisma: PrismaCommand, cwd: str) -> tuple[str | None, str | None]:
        """The schema path Prisma reads (``--schema``, ``package.json``, its defaults)."""
        if prisma.schema is not None:
            if not shell.known(prisma.schema):
                shown = prisma.schema.replace(shell.UNKNOWN, "$(...)")
                return None, f"its --schema ({shown}) holds a value the gate cannot know"
            return join(cwd, prisma.schema), None
        data = _json(_read_text(self.paths, self.read(join(cwd, "package.json"))))
        config = data.get("prisma") if data else None
        if isinstance(config, dict) and isinstance(config.get("schema"), str):
            return join(cwd, str(config["schema"])), None
        defaults = [join(cwd, "prisma/schema.prisma"), join(cwd, "schema.prisma")]
        for path in defaults:
            entry = self.lookup(path)
            if entry is not None and entry.present:
                return path, None
        return defaults[0], None

    def _generators(self, entry: Entry, wanted: Sequence[str]) -> list[Generator]:
        text = _read_text(self.paths, entry)
        found = parse_generators(text) if text is not None else []
        return [g for g in found if not wanted or g.name in wanted]


class _Env(Mapping[str, str]):
    """Variables set in a shell (``own``) over those it inherits; a view, not a copy."""

    def __init__(self, parent: Mapping[str, str], own: dict[str, str] | None = None) -> None:
        self.parent = parent
        self.own: dict[str, str] = own if own is not None else {}

    def __getitem__(self, name: str) -> str:
        if name in self.own:
            return self.own[name]
        return self.parent[name]

    def __contains__(self, name: object) -> bool:
        return name in self.own or name in self.parent

    def __iter__(self) -> Iterator[str]:
        yield from {*self.own, *self.parent}

    def __len__(self) -> int:
        return len({*self.own, *self.parent})


class _ShellVars(Mapping[str, str]):
    """The variables a command sees: the shell's, ``PWD`` (the current folder) and ``HOME``
    (root's) unless set; a view, not a copy."""

    def __init__(self, env: Mapping[str, str], cwd: str) -> None:
        self.env = env
        self.cwd = cwd

    def __getitem__(self, name: str) -> str:
        if name == "PWD":
            return self.cwd
        if name in self.env:
            return self.env[name]
        if name == "HOME":
            return "/root"
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from {*self.env, "PWD", "HOME"}

    def __len__(self) -> int:
        return len({*self.env, "PWD", "HOME"})


def _errexit(args: Sequence[str], current: bool) -> bool:
    for i, word in enumerate(args):
        if word.startswith("-") and not word.startswith("--") and "e" in word[1:]:
            current = True
        elif word.startswith("+") and "e" in word[1:]:
            current = False
        elif word in ("-o", "+o") and i + 1 < len(args) and args[i + 1] == "errexit":
            current = word == "-o"
    return current


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop ``env A=b``, ``sudo``, ``exec``, ``time``... in front of the real command."""
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if head == "env":
            words = words[1:]
            while words and (words[0].startswith("-") or _ASSIGN_RE.match(words[0])):
                words = words[1:]
            continue
        if head in _PREFIXES:
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[1:]
            continue
        return words
    return words


def _masked(commands: Sequence[shell.Command], k: int, errexit: bool) -> str | None:
    """Why a failure of command ``k`` would not fail the RUN (``None``: it would)."""
    cmd = commands[k]
    nxt = commands[k + 1] if k + 1 < len(commands) else None
    if cmd.condition:
        return "it is the condition of an if/while"
    op = cmd.next_op
    if op == "&&" or nxt is None:
        return None
    if op == "||":
        branch = [nxt]
        if nxt.group != cmd.group:
            branch = [c for c in commands[k + 1 :] if c.group == nxt.group]
        for other in branch:
            words = other.words
            if words and words[0] in ("exit", "false", "return") and words[1:2] != ("0",):
                return None
        return f"it is followed by `|| {fileops.shown(nxt.words)}`"
    if op in ("|", "|&"):
        return f"its output is piped to `{fileops.shown(nxt.words)}` (no pipefail)"
    if op == "&":
        return "it runs in the background (`&`)"
    if cmd.last_in_list or errexit:
        return None
    return f"`{fileops.shown(nxt.words)}` runs after it and the shell has no `set -e`"
