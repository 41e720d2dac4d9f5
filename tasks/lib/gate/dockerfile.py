"""A small Dockerfile parser of our own, following Docker's Dockerfile reference grammar.

Handles parser directives (``# escape=``, ``# syntax=``), line continuations with the escape
character, comments and blank lines inside continuations, JSON (exec) versus shell form,
heredocs, instruction flags, ``ONBUILD`` and stages. Word expansion is in
:mod:`tasks.lib.gate.expand`, the stage graph in :mod:`tasks.lib.gate.stages`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tasks.lib.errors import DockerfileError

KEYWORDS: frozenset[str] = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

#: Flags each instruction accepts (any other flag is an error, as in Docker).
ALLOWED_FLAGS: Mapping[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset(
        {"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude", "unpack", "parents"}
    ),
    "RUN": frozenset({"mount", "network", "security", "device"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}

_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE_RE = re.compile(r"^#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$")
_KNOWN_DIRECTIVES = frozenset({"escape", "syntax", "check"})
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)([^<].*)$")
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9._-]*$")
_WS_RE = re.compile(r"[ \t\v\f\r]+")
_KEYWORD_RE = re.compile(r"(\S+)\s*(.*)\Z", re.S)


@dataclass(frozen=True)
class Heredoc:
    """One heredoc attached to an instruction; ``quoted`` means no expansion."""

    name: str
    body: str
    strip_tabs: bool
    quoted: bool


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuations joined, flags split off."""

    keyword: str
    flags: tuple[tuple[str, str | None], ...]
    args: tuple[str, ...]
    json_form: bool
    heredocs: tuple[Heredoc, ...]
    line: int
    end_line: int
    raw: str
    onbuild: Instruction | None = None

    def flag(self, name: str) -> str | None:
        """The last value given to flag ``name`` (``None`` if absent or bare)."""
        value: str | None = None
        for key, val in self.flags:
            if key == name:
                value = val
        return value

    def has_flag(self, name: str) -> bool:
        """Whether flag ``name`` was given at all."""
        return any(key == name for key, _ in self.flags)

    def flag_values(self, name: str) -> list[str | None]:
        """Every value given to flag ``name``, in order."""
        return [val for key, val in self.flags if key == name]


@dataclass(frozen=True)
class Stage:
    """One build stage: its FROM line and the instructions after it."""

    index: int
    name: str | None
    base: str
    platform: str | None
    line: int
    instructions: tuple[Instruction, ...]
    from_instruction: Instruction | None = None

    @property
    def label(self) -> str:
        """The stage name, or its index when unnamed."""
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    path: str
    escape: str
    global_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    directives: tuple[tuple[str, str], ...] = ()

    def stage(self, ref: str) -> Stage | None:
        """The stage named ``ref`` (case-insensitive) or with index ``ref``."""
        return find_stage(self.stages, ref, len(self.stages))


# --------------------------------------------------------------------------------------------
# Parsing


def _error(path: str, line: int, message: str) -> DockerfileError:
    return DockerfileError(path, line, message)


def _directives(lines: list[str], path: str) -> tuple[dict[str, str], list[tuple[str, str]], int]:
    """Parser directives at the top of the file; returns them and the first line after."""
    found: dict[str, str] = {}
    ordered: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE_RE.match(lines[i].strip())
        if not m:
            break
        key = m.group(1).lower()
        if key not in _KNOWN_DIRECTIVES:
            break
        if key in found:
            raise _error(path, i + 1, f"only one {key} parser directive can be used")
        found[key] = m.group(2)
        ordered.append((key, m.group(2)))
        i += 1
    return found, ordered, i


def _scan_word(text: str, i: int, escape: str, *, keep_quotes: bool) -> tuple[str, int]:
    """Read one whitespace-delimited word honouring quotes; returns it and the index after."""
    out: list[str] = []
    quote: str | None = None
    n = len(text)
    while i < n:
        c = text[i]
        if quote is not None:
            if c == escape and quote == '"' and i + 1 < n:
                if keep_quotes:
                    out.append(c)
                out.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
                if keep_quotes:
                    out.append(c)
            else:
                out.append(c)
            i += 1
            continue
        if c in " \t\r\n\v\f":
            break
        if c in "\"'":
            quote = c
            if keep_quotes:
                out.append(c)
            i += 1
            continue
        if c == escape and i + 1 < n:
            if keep_quotes:
                out.append(c)
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    if quote is not None:
        raise ValueError(f"unterminated {quote} quote")
    return "".join(out), i


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n\v\f":
        i += 1
    return i


def parse_words(text: str, escape: str = "\\") -> list[str]:
    """Split like Docker's ``parseWords``: whitespace outside quotes, quotes kept."""
    words: list[str] = []
    i = _skip_ws(text, 0)
    while i < len(text):
        word, i = _scan_word(text, i, escape, keep_quotes=True)
        words.append(word)
        i = _skip_ws(text, i)
    return words


def _split_flags(rest: str, escape: str) -> tuple[list[tuple[str, str | None]], str]:
    """Leading ``--name[=value]`` words, then the remaining text."""
    flags: list[tuple[str, str | None]] = []
    i = _skip_ws(rest, 0)
    while rest.startswith("--", i):
        word, j = _scan_word(rest, i, escape, keep_quotes=False)
        i = _skip_ws(rest, j)
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        flags.append((name.lower(), value if eq else None))
    return flags, rest[i:]


def _json_list(text: str) -> list[str] | None:
    text = text.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    return None


def _heredoc_markers(rest: str, escape: str) -> list[tuple[str, bool, bool]]:
    """(name, strip_tabs, quoted) for each heredoc marker word in ``rest``."""
    markers: list[tuple[str, bool, bool]] = []
    try:
        words = parse_words(rest, escape)
    except ValueError:
        return markers
    for word in words:
        m = _HEREDOC_RE.match(word)
        if not m:
            continue
        spec = m.group(3)
        quoted = any(q in spec for q in "\"'")
        name = spec.replace('"', "").replace("'", "")
        if not name:
            continue
        markers.append((name, m.group(2) == "-", quoted))
    return markers


def _name_val_args(keyword: str, rest: str, escape: str, path: str, line: int) -> tuple[str, ...]:
    """ENV/LABEL: flattened (key, value, ...) as Docker's parseNameVal; values keep quotes."""
    words = parse_words(rest, escape)
    if not words:
        raise _error(path, line, f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        key = words[0]
        value = rest.strip()[len(key) :].strip()
        if not value and keyword == "ENV":
            raise _error(path, line, f"ENV {key} needs a value: use ENV {key}=value")
        return (key, value)
    out: list[str] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise _error(
                path, line, f"{keyword}: can't find = in {word!r}; use the form name=value"
            )
        out += [key, value]
    return tuple(out)


def _build_instruction(
    keyword_word: str,
    rest: str,
    *,
    path: str,
    line: int,
    end_line: int,
    raw: str,
    escape: str,
    heredocs: tuple[Heredoc, ...],
    nested: bool = False,
) -> Instruction:
    keyword = keyword_word.upper()
    if keyword not in KEYWORDS:
        raise _error(path, line, f"unknown instruction: {keyword_word}")
    try:
        flags, rest = _split_flags(rest, escape)
    except ValueError as exc:
        raise _error(path, line, f"{keyword}: {exc} in a flag") from None
    allowed = ALLOWED_FLAGS.get(keyword, frozenset())
    for name, _value in flags:
        if name not in allowed:
            raise _error(path, line, f"{keyword}: unknown flag --{name}")
    rest = rest.strip()
    json_form = False
    args: tuple[str, ...]
    onbuild: Instruction | None = None
    try:
        if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
            parsed = _json_list(rest)
            if parsed is not None:
                json_form, args = True, tuple(parsed)
            elif keyword == "SHELL":
                raise _error(path, line, 'SHELL requires the JSON form: SHELL ["sh", "-c"]')
            else:
                args = (rest,) if rest else ()
        elif keyword in ("COPY", "ADD", "VOLUME"):
            parsed = _json_list(rest)
            if parsed is not None:
                json_form, args = True, tuple(parsed)
            else:
                args = tuple(w for w in _WS_RE.split(rest) if w)
        elif keyword in ("ENV", "LABEL"):
            args = _name_val_args(keyword, rest, escape, path, line)
        elif keyword == "ARG":
            args = tuple(parse_words(rest, escape))
            if not args:
                raise _error(path, line, "ARG requires a name: ARG NAME[=default]")
        elif keyword in ("FROM", "EXPOSE"):
            args = tuple(w for w in _WS_RE.split(rest) if w)
        elif keyword == "HEALTHCHECK":
            kind, _, cmd = rest.partition(" ")
            if kind.upper() == "NONE":
                args = ("NONE",)
            elif kind.upper() == "CMD":
                parsed = _json_list(cmd)
                if parsed is not None:
                    json_form, args = True, ("CMD", *parsed)
                else:
                    args = ("CMD", cmd.strip())
            else:
                raise _error(path, line, "HEALTHCHECK needs CMD <command> or NONE")
        elif keyword == "ONBUILD":
            if nested:
                raise _error(path, line, "ONBUILD ONBUILD is not allowed")
            sub_word, sub_rest = _split_keyword(rest)
            if not sub_word:
                raise _error(path, line, "ONBUILD requires an instruction")
            if sub_word.upper() in ("ONBUILD", "FROM", "MAINTAINER"):
                raise _error(path, line, f"{sub_word.upper()} isn't allowed as an ONBUILD trigger")
            onbuild = _build_instruction(
                sub_word,
                sub_rest,
                path=path,
                line=line,
                end_line=end_line,
                raw=rest,
                escape=escape,
                heredocs=heredocs,
                nested=True,
            )
            args = (rest,)
        else:  # WORKDIR, USER, STOPSIGNAL, MAINTAINER: one string
            args = (rest,) if rest else ()
    except ValueError as exc:
        raise _error(path, line, f"{keyword}: {exc}") from None
    if keyword in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER", "CMD", "ENTRYPOINT") and not (
        args or json_form
    ):
        raise _error(path, line, f"{keyword} requires an argument")
    if keyword in ("COPY", "ADD") and len(args) + len(heredocs) < 2:
        raise _error(path, line, f"{keyword} requires at least a source and a destination")
    return Instruction(
        keyword=keyword,
        flags=tuple(flags),
        args=args,
        json_form=json_form,
        heredocs=heredocs if keyword in _HEREDOC_KEYWORDS and not json_form else (),
        line=line,
        end_line=end_line,
        raw=raw,
        onbuild=onbuild,
    )


def _is_blank_or_comment(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _instructions(text: str, path: str) -> tuple[str, list[tuple[str, str]], list[Instruction]]:
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    directives, ordered, i = _directives(lines, path)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise _error(path, 1, f"invalid escape token {escape!r}: use ` or \\")
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    result: list[Instruction] = []
    n = len(lines)
    while i < n:
        if _is_blank_or_comment(lines[i]):
            i += 1
            continue
        start = i
        parts: list[str] = []
        current = lines[i].lstrip()
        while True:
            m = continuation.search(current)
            if not m:
                parts.append(current)
                i += 1
                last = i
                break
            parts.append(current[: m.start()])
            i += 1
            last = i
            while i < n and _is_blank_or_comment(lines[i]):
                i += 1
            if i >= n:
                break  # a continuation at the end of the file is accepted
            current = lines[i]
        logical = "".join(parts).strip()
        if not logical:
            continue
        end = last  # 1-based number of the last physical line used so far
        keyword_word, rest = _split_keyword(logical)
        keyword = keyword_word.upper()
        heredocs: list[Heredoc] = []
        heredoc_rest = rest
        if keyword == "ONBUILD":
            heredoc_kw, heredoc_rest = _split_keyword(rest.strip())
            keyword = heredoc_kw.upper()
        if (
            keyword in _HEREDOC_KEYWORDS
            and "<<" in heredoc_rest
            and _json_list(_split_rest_for_json(heredoc_rest)) is None
        ):
            for name, strip_tabs, quoted in _heredoc_markers(heredoc_rest, escape):
                body: list[str] = []
                while True:
                    if i >= n:
                        raise _error(
                            path,
                            start + 1,
                            f"unterminated heredoc <<{name}: add a line {name} to end it",
                        )
                    raw_line = lines[i]
                    i += 1
                    candidate = raw_line.lstrip("\t") if strip_tabs else raw_line
                    if candidate == name:
                        break
                    body.append(candidate + "\n")
                heredocs.append(Heredoc(name, "".join(body), strip_tabs, quoted))
                end = i
        result.append(
            _build_instruction(
                keyword_word,
                rest,
                path=path,
                line=start + 1,
                end_line=max(end, start + 1),
                raw=logical,
                escape=escape,
                heredocs=tuple(heredocs),
            )
        )
    return escape, ordered, result


def _split_keyword(text: str) -> tuple[str, str]:
    m = _KEYWORD_RE.match(text)
    return (m.group(1), m.group(2)) if m else (text, "")


def _split_rest_for_json(rest: str) -> str:
    try:
        return _split_flags(rest, "\\")[1]
    except ValueError:
        return rest


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text``; raises :class:`DockerfileError` naming ``path`` and the line."""
    escape, directives, instructions = _instructions(text, path)
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    header: Instruction | None = None

    seen_names: set[str] = set()

    def close() -> None:
        if header is None or current is None:
            return
        stages.append(_make_stage(len(stages), header, tuple(current), path, seen_names))

    for ins in instructions:
        if ins.keyword == "FROM":
            close()
            header, current = ins, []
        elif current is None:
            if ins.keyword != "ARG":
                raise _error(
                    path,
                    ins.line,
                    f"{ins.keyword} before the first FROM: only ARG may come before FROM",
                )
            global_args.append(ins)
        else:
            current.append(ins)
    close()
    if not stages:
        last = instructions[-1].end_line if instructions else 1
        raise _error(path, last, "no FROM instruction: a Dockerfile needs FROM <image>")
    names = {s.name: s.index for s in stages if s.name is not None}
    for stage in stages:
        for ins in stage.instructions:
            if ins.keyword in ("COPY", "ADD"):
                ref = ins.flag("from")
                if ref is not None:
                    _check_from_ref(path, ins=ins, ref=ref, stage=stage, stages=stages, names=names)
    return Dockerfile(path, escape, tuple(global_args), tuple(stages), tuple(directives))


def _make_stage(
    index: int, ins: Instruction, body: tuple[Instruction, ...], path: str, names: set[str]
) -> Stage:
    args = ins.args
    if not args:
        raise _error(path, ins.line, "FROM is missing the image: use FROM <image> [AS <name>]")
    name: str | None = None
    if len(args) == 3 and args[1].upper() == "AS":
        name = args[2].lower()
        if not _STAGE_NAME_RE.match(name):
            raise _error(
                path,
                ins.line,
                f"invalid stage name {args[2]!r}: use letters, digits, '.', '_' or '-'",
            )
        if name in names:
            raise _error(path, ins.line, f"duplicate stage name {name!r}")
        names.add(name)
    elif len(args) != 1:
        raise _error(path, ins.line, "FROM takes <image> [AS <name>]")
    return Stage(index, name, args[0], ins.flag("platform"), ins.line, body, ins)


def _check_from_ref(
    path: str,
    *,
    ins: Instruction,
    ref: str,
    stage: Stage,
    stages: list[Stage],
    names: Mapping[str, int],
) -> None:
    if "$" in ref:
        return  # resolved later, with the build args
    if ref.isdigit():
        if int(ref) >= stage.index:
            raise _error(
                path,
                ins.line,
                f"{ins.keyword} --from={ref}: stage index {ref} is not an earlier stage "
                f"(this is stage {stage.index})",
            )
        return
    if ref.lower() in names:
        if names[ref.lower()] == stage.index:
            raise _error(
                path, ins.line, f"{ins.keyword} --from={ref}: a stage cannot copy from itself"
            )
        return
    if any(ch in ref for ch in "/:@."):
        return  # an image reference
    known = ", ".join(s.label for s in stages)
    raise _error(
        path,
        ins.line,
        f"{ins.keyword} --from={ref}: no stage named {ref!r} (stages: {known}); "
        "name a stage, or an image with its tag (e.g. image:latest)",
    )


def find_stage(stages: tuple[Stage, ...], ref: str, before: int) -> Stage | None:
    """The stage named ``ref`` (any case) or with index ``ref`` among the first ``before``."""
    if ref.isdigit():
        idx = int(ref)
        return stages[idx] if idx < before else None
    low = ref.lower()
    for stage in stages[:before]:
        if stage.name == low:
            return stage
    return None


def mount_options(value: str) -> dict[str, str]:
    """``type=cache,target=/x`` as a dict (bare keys map to ``"true"``)."""
    out: dict[str, str] = {}
    for part in value.split(","):
        key, eq, val = part.strip().partition("=")
        if key:
            out[key.lower()] = val if eq else "true"
    return out
