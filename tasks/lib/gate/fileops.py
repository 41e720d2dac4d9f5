"""What a simple command does to the image's files, as :class:`~tasks.lib.gate.paths.Op`.

Followed: ``rm``/``rmdir`` (with wildcards), ``mv`` and ``cp`` (``-t``, ``-T``, several
sources, a trailing ``/``; ``cp -r``/``-a`` keep symlinks, plain ``cp`` follows them),
``ln -s``, ``mkdir``, and writes: output redirections (``>``, ``>>``, ``&>``...), ``tee``,
``sed -i``/``perl -i``, ``truncate``, ``dd of=``. Known to change nothing the gate follows:
reading, listing, ownership and mode changes, package installs and the like (see
:data:`HARMLESS`). Anything else that names a path is an operation the gate cannot follow on
that path (unless the path is the working directory itself or ``/``), so a lookup of a file
at or below it says so instead of guessing.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence

from tasks.lib.gate.paths import Op, OpAction, join
from tasks.lib.gate.shell import UNKNOWN, Redirect

#: Commands that leave the files the gate follows as they are.
HARMLESS = frozenset(
    {"cat", "ls", "echo", "printf", "test", "[", "[[", "true", "false", ":", "grep", "egrep"}
    | {"fgrep", "head", "tail", "wc", "sha256sum", "sha1sum", "md5sum", "stat", "du", "df"}
    | {"diff", "cmp", "file", "readlink", "realpath", "basename", "dirname", "pwd", "export"}
    | {"set", "unset", "exit", "return", "sleep", "id", "whoami", "which", "type", "hash"}
    | {"uname", "date", "chmod", "chown", "chgrp", "touch", "adduser", "addgroup", "useradd"}
    | {"groupadd", "usermod", "deluser", "apk", "apt-get", "apt", "dpkg", "yum", "dnf"}
    | {"microdnf", "pip", "pip3", "python", "python3", "node", "tsc", "npm", "pnpm", "yarn"}
    | {"bun", "npx", "bunx", "corepack", "update-ca-certificates", "ldconfig", "locale-gen"}
    | {"useradd", "source", ".", "eval", "wait", "trap", "ulimit", "umask", "git"}
    | {"xargs", "sort", "uniq", "cut", "tr", "awk"}
    | {"jq", "env", "exec", "time", "nice", "nohup", "command", "sudo", "su"}
    | {"prisma", "next", "vite", "webpack", "esbuild", "rollup", "turbo", "nx", "eslint"}
)
#: Commands whose own handling is elsewhere (cd, shells, runners) or below.
_SPECIAL = frozenset(
    {"rm", "rmdir", "mv", "cp", "ln", "mkdir", "tee", "truncate", "dd", "tar", "unzip"}
    | {"curl", "wget", "sed", "perl", "find", "rsync"}
)
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", "<>", "&>", "&>>"})
_SHOWN_MAX = 120
_SAFE_RE = re.compile(r"[\w@%+=:,./ -]*")


def shown(words: Sequence[str]) -> str:
    """A command as one short line of text."""
    text = " ".join(words)
    if not _SAFE_RE.fullmatch(text):  # quote what needs it
        text = shlex.join(w.replace(UNKNOWN, "$(...)") for w in words)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _operands(words: Sequence[str], value_options: frozenset[str]) -> tuple[list[str], set[str]]:
    """Non-option words (after ``--`` all are) and the short/long option letters seen."""
    operands: list[str] = []
    flags: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            operands.extend(words[i + 1 :])
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            flags.add(name)
            if name in value_options:
                if not eq and i + 1 < len(words):
                    i += 1
                    value = words[i]
                flags.add(f"{name}={value}")
        elif word.startswith("-") and word != "-":
            for j, letter in enumerate(word[1:]):
                flags.add(letter)
                if f"-{letter}" in value_options:
                    value = word[j + 2 :]
                    if not value and i + 1 < len(words):
                        i += 1
                        value = words[i]
                    flags.add(f"-{letter}={value}")
                    break
        else:
            operands.append(word)
        i += 1
    return operands, flags


def _option_value(flags: set[str], *names: str) -> str | None:
    for item in flags:
        for name in names:
            if item.startswith(name + "="):
                return item[len(name) + 1 :]
    return None


def _path(cwd: str, word: str) -> str:
    """``word`` as an absolute path; a word holding an unknown value names the folder before
    the unknown part."""
    if UNKNOWN in word:
        word = word.split(UNKNOWN, 1)[0]
        word = posixpath.dirname(word) if not word.endswith("/") else word
    return join(cwd, word or ".")


def _extract(
    name: str, args: Sequence[str], cwd: str, stage: int, line: int, text: str
) -> list[Op]:
    """``tar -x``/``unzip``: what they unpack into (their ``-C``/``-d`` folder, else the working
    folder) is changed in a way the gate cannot follow; ``tar -c``/``-t`` only read."""
    if name == "tar":
        first = args[0] if args else ""
        bundled = not first.startswith("-") and "x" in first
        extracts = bundled or any(
            a in ("--extract", "--get")
            or (a.startswith("-") and not a.startswith("--") and "x" in a)
            for a in args
        )
        if not extracts:
            return []
        _, flags = _operands(args, frozenset({"-C", "--directory", "-f", "--file"}))
        folder = _option_value(flags, "-C", "--directory")
    else:
        _, flags = _operands(args, frozenset({"-d"}))
        folder = _option_value(flags, "-d")
    return [Op(stage, line, text, "opaque", (_path(cwd, folder or "."),))]


def _find(args: Sequence[str], cwd: str, stage: int, line: int, text: str) -> list[Op]:
    """``find START... [-name P] -delete`` (or ``-exec rm``): removes what matches below
    START; another ``-exec`` is not followed."""
    first = next((i for i, w in enumerate(args) if w[:1] in "-(!"), len(args))
    starts = [_path(cwd, w) for w in args[:first]] or [cwd]
    tests = list(args[first:])
    execs = [i for i, w in enumerate(tests) if w in ("-exec", "-execdir", "-ok", "-okdir")]
    removes = "-delete" in tests or any(
        i + 1 < len(tests) and posixpath.basename(tests[i + 1]) == "rm" for i in execs
    )
    if not removes and not execs:
        return []
    if execs and not removes:
        return [Op(stage, line, text, "opaque", (s,)) for s in starts]
    names = [tests[i + 1] for i, w in enumerate(tests[:-1]) if w in ("-name", "-iname")]
    pattern = names[0] if len(names) == 1 else None
    return [Op(stage, line, text, "prune", (s,), dest=pattern) for s in starts]


def redirect_ops(
    words: Sequence[str], redirects: Sequence[Redirect], cwd: str, stage: int, line: int
) -> list[Op]:
    """The files the redirections of a simple command write."""
    ops: list[Op] = []
    for redirect in redirects:
        target = redirect.target
        writes = redirect.op in _WRITE_REDIRECTS or (
            redirect.op == ">&" and not (target.isdigit() or target == "-")
        )
        if writes and not target.startswith("/dev/"):
            text = f"{shown(words)} {redirect.op} {target}".strip()
            ops.append(Op(stage, line, text, "write", (_path(cwd, target),)))
    return ops


def file_ops(
    words: Sequence[str], redirects: Sequence[Redirect], cwd: str, stage: int, line: int
) -> list[Op]:
    """The file operations of one simple command (words expanded, runners unwrapped); its
    redirections are :func:`redirect_ops`."""
    ops: list[Op] = []
    if not words or words[0].rsplit("/", 1)[-1] in HARMLESS:
        return ops
    text = shown(words)
    name = words[0].rsplit("/", 1)[-1]
    args = list(words[1:])

    def op(
        action: OpAction,
        paths: Sequence[str],
        *,
        dest: str | None = None,
        into_dir: bool | None = None,
        follow: bool = True,
    ) -> Op:
        return Op(stage, line, text, action, tuple(paths), dest, into_dir, follow)

    if name == "install":  # install [-D] [-m MODE] SOURCE... DEST copies; -d makes folders
        kept: list[str] = []
        skip = False
        for word in args:
            if skip:
                skip = False
            elif word in ("-m", "-o", "-g", "--mode", "--owner", "--group"):
                skip = True
            elif not word.startswith(("--mode=", "--owner=", "--group=")) and word != "-D":
                kept.append(word)
        name = "mkdir" if {"-d", "--directory"} & set(kept) else "cp"
        args = [w for w in kept if w not in ("-d", "--directory")]
    if name in ("rm", "rmdir"):
        operands, _ = _operands(args, frozenset())
        known = [_path(cwd, w) for w in operands if UNKNOWN not in w]
        unknown = [_path(cwd, w) for w in operands if UNKNOWN in w]
        if known:
            ops.append(op("remove", known))
        ops.extend(op("opaque", [p]) for p in unknown)
    elif name in ("mv", "cp"):
        operands, flags = _operands(args, frozenset({"-t", "--target-directory", "-S"}))
        folder = _option_value(flags, "-t", "--target-directory")
        into: bool | None
        if folder is not None:
            sources, dest, into = operands, folder, True
        elif len(operands) < 2:
            return ops
        else:
            sources, dest = operands[:-1], operands[-1]
            if "T" in flags or "--no-target-directory" in flags:
                into = False
            elif len(sources) > 1 or dest.endswith("/"):
                into = True
            else:
                into = None
        if UNKNOWN in dest or any(UNKNOWN in w for w in sources):
            ops.append(op("opaque", [_path(cwd, dest)]))
            if name == "mv":
                ops.extend(op("opaque", [_path(cwd, w)]) for w in sources)
            return ops
        recursive = bool(flags & {"r", "R", "a", "--recursive", "--archive"})
        dereference = "L" in flags or "--dereference" in flags
        action: OpAction = "move" if name == "mv" else "copy"
        ops.append(
            op(
                action,
                [_path(cwd, s) for s in sources],
                dest=_path(cwd, dest),
                into_dir=into,
                follow=action == "copy" and (dereference or not recursive),
            )
        )
    elif name == "ln":
        operands, flags = _operands(args, frozenset({"-t", "--target-directory", "-S"}))
        if "s" not in flags and "--symbolic" not in flags:
            if len(operands) >= 2:
                last = operands[-1]
                hard_into = True if len(operands) > 2 or last.endswith("/") else None
                paths = [_path(cwd, s) for s in operands[:-1]]
                ops.append(op("copy", paths, dest=_path(cwd, last), into_dir=hard_into))
            return ops
        if len(operands) == 1:
            link = join(cwd, posixpath.basename(operands[0].rstrip("/")))
        elif len(operands) == 2 and not operands[1].endswith("/"):
            link = _path(cwd, operands[1])
        else:
            folder = operands[-1] if len(operands) > 1 else "."
            for target in operands[:-1]:
                where = join(_path(cwd, folder), posixpath.basename(target.rstrip("/")))
                ops.append(op("link", [where], dest=target))
            return ops
        ops.append(op("link", [link], dest=operands[0]))
    elif name == "mkdir":
        operands, _ = _operands(args, frozenset({"-m", "--mode"}))
        ops.extend(op("mkdir", [_path(cwd, w)]) for w in operands)
    elif name == "tee":
        operands, _ = _operands(args, frozenset())
        ops.extend(op("write", [_path(cwd, w)]) for w in operands)
    elif name == "truncate":
        operands, _ = _operands(args, frozenset({"-s", "--size", "-r", "--reference"}))
        ops.extend(op("write", [_path(cwd, w)]) for w in operands)
    elif name == "dd":
        ops.extend(op("write", [_path(cwd, w[3:])]) for w in args if w.startswith("of="))
    elif name in ("sed", "perl"):
        operands, flags = _operands(args, frozenset({"-e", "-f", "--expression", "--file"}))
        if "i" in flags or any(f.startswith("--in-place") for f in flags):
            scripted = _option_value(flags, "-e", "--expression", "-f", "--file") is not None
            files = operands if scripted else operands[1:]
            ops.extend(op("write", [_path(cwd, w)]) for w in files)
    elif name == "find":
        ops.extend(_find(args, cwd, stage, line, text))
    elif name == "rsync":
        operands, _ = _operands(args, frozenset({"-e", "--rsh", "--exclude", "--include"}))
        if len(operands) >= 2:  # the sources are only read
            ops.append(op("opaque", [_path(cwd, operands[-1])]))
    elif name in ("tar", "unzip"):
        ops.extend(_extract(name, args, cwd, stage, line, text))
    elif name in ("curl", "wget"):
        _, flags = _operands(args, frozenset({"-o", "--output", "-O", "--output-document"}))
        out = _option_value(flags, "-o", "--output", "--output-document")
        if name == "wget":
            out = _option_value(flags, "-O", "--output-document")
        if out is not None and out != "-":
            ops.append(op("write", [_path(cwd, out)]))
    elif name not in HARMLESS and name not in _SPECIAL:
        for word in args:
            if word.startswith("-") or ("=" in word and not word.startswith(("/", "."))):
                continue
            path = _path(cwd, word)
            if path not in (cwd, "/"):
                ops.append(op("opaque", [path]))
    return ops
