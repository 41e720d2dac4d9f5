"""Splitting ``RUN`` shell text into simple commands.

Words, quotes, escapes and operators come from :class:`shlex.shlex` (POSIX mode,
``punctuation_chars``). A short pre-pass does what shlex does not: line continuations,
comments (``#`` at the start of a word), newlines as command separators, ``$`` kept literal
inside single quotes or after a backslash, and command substitutions: ``$(pwd)``/`` `pwd` ``
become ``${PWD}`` (the working directory), any other ``$(...)``/`` `...` ``/``$((...))`` a
value the gate cannot know. Compound commands are flattened: the reserved words of ``if``,
``while``, ``until``, ``for`` and ``case`` (and ``{ }``/``( )`` groups) are dropped, so every
command in every branch is seen, with what follows it (to tell whether its failure fails the
``RUN``) and whether it is a condition.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tasks.lib.errors import ConfigError
from tasks.lib.gate.expand import expand

LITERAL_DOLLAR = "\ue000"
UNKNOWN = "\ue001"
_SUBST = "__GATE_SUBST__"
_PWD_FORMS = frozenset({"pwd", "pwd -L", "pwd -P", "/bin/pwd"})

_OP_RE = re.compile(r";;&?|;&|&&|\|\||\|&|<<<|<<-|<<|<>|<&|>&|>>|>\||&>>|&>|[;&|()<>]")
REDIRECTS = frozenset({"<", ">", ">>", ">|", "<>", "<&", ">&", "&>", "&>>", "<<", "<<-", "<<<"})
_LIST_ENDS = frozenset({";", "&", ";;", ";&", ";;&"})
_OPENERS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})
_CLOSERS = frozenset({"fi", "done", "esac", "}"})
_CONDITIONS = frozenset({"if", "elif", "while", "until"})
_VAR_RE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9@*#?$!-]")


@dataclass(frozen=True)
class Redirect:
    """A redirection: its operator and target word."""

    op: str
    target: str


@dataclass(frozen=True)
class Command:
    """One simple command: its words (quotes removed, ``$`` not yet expanded) and context."""

    words: tuple[str, ...]
    redirects: tuple[Redirect, ...]
    next_op: str | None  # the operator after it; None at the end of the text
    last_in_list: bool  # nothing runs after it in its list (end of text or of a block)
    condition: bool  # the condition of an if/while/until
    group: int  # the { } or ( ) group it belongs to (0: none)
    loop: bool = False  # a ``for NAME in WORDS`` header: words are (NAME, WORDS...)


def _matching(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index of the ``close_ch`` that closes ``text[start]`` (``len(text)`` when none)."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def _substitution(inner: str) -> str:
    return "${PWD}" if " ".join(inner.split()) in _PWD_FORMS else "${" + _SUBST + "}"


_PLAIN_RE = re.compile(r"[^'\"\\$`#\n]*")
_OPERATOR_TOKEN_RE = re.compile(r"[();<>|&]+")
_SIMPLE_TOKEN_RE = re.compile(r"[();<>|&]+|[^\s();<>|&]+")


def prepare(text: str) -> str:
    """The pre-pass described in the module docstring."""
    if _PLAIN_RE.fullmatch(text):
        return text  # nothing for the pre-pass to do
    out: list[str] = []
    i, n = 0, len(text)
    quote = ""
    word_start = True
    while i < n:
        c = text[i]
        if quote == "'":
            quote = "" if c == "'" else quote
            out.append(LITERAL_DOLLAR if c == "$" else c)
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\n":
                i += 2
                continue
            out.append(LITERAL_DOLLAR if nxt == "$" else c + nxt)
            i += 2
            word_start = False
            continue
        if text.startswith("$((", i):
            end = _matching(text, i + 1, "(", ")")
            out.append("${" + _SUBST + "}")
            i, word_start = end + 1, False
            continue
        if text.startswith("$(", i):
            end = _matching(text, i + 1, "(", ")")
            out.append(_substitution(text[i + 2 : end]))
            i, word_start = end + 1, False
            continue
        if c == "`":
            end = text.find("`", i + 1)
            end = n if end < 0 else end
            out.append(_substitution(text[i + 1 : end]))
            i, word_start = end + 1, False
            continue
        if quote == '"':
            quote = "" if c == '"' else quote
            out.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
        elif c == "#" and word_start:
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c == "\n":
            out.append(" ; ")
            i, word_start = i + 1, True
            continue
        word_start = c in " \t\r;&|()<>"
        out.append(c)
        i += 1
    return "".join(out)


def tokens(text: str) -> list[str]:
    """Words and operator tokens of prepared shell ``text`` (raises ValueError on a bad quote)."""
    if not any(c in text for c in "'\"\\"):
        return _SIMPLE_TOKEN_RE.findall(text)  # what shlex gives when nothing is quoted
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


class _Splitter:
    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.words: list[str] = []
        self.redirects: list[Redirect] = []
        self.pending: str | None = None  # a redirection waiting for its target
        self.mode = "command"  # or: for, case-word, case-in, case-pattern
        self.condition = False
        self.groups: list[int] = [0]
        self.next_group = 1

    def finish(self, op: str | None) -> None:
        if not self.words and not self.redirects:
            if op in ("&&", "||", "|", "|&") and self.commands:
                self.commands[-1] = replace(self.commands[-1], next_op=op, last_in_list=False)
            return
        self.commands.append(
            Command(
                tuple(self.words),
                tuple(self.redirects),
                op,
                op is None,
                self.condition,
                self.groups[-1],
            )
        )
        self.words, self.redirects = [], []

    def finish_loop(self) -> None:
        """A ``for`` header: its variable and words, for the analysis to bind."""
        if self.words:
            self.commands.append(
                Command(tuple(self.words), (), ";", False, False, self.groups[-1], loop=True)
            )
        self.words = []

    def close_list(self) -> None:
        """What came before ends its list: its last command runs last."""
        if self.commands and self.commands[-1].next_op in (None, *_LIST_ENDS):
            last = self.commands[-1]
            if not last.last_in_list:
                self.commands[-1] = replace(last, last_in_list=True)

    def operator(self, op: str) -> None:
        if op in REDIRECTS:
            if self.words and self.words[-1].isdigit():
                self.words.pop()  # a file descriptor number: 2>&1
            self.pending = op
            return
        if self.mode == "case-pattern":
            if op == ")":
                self.mode = "command"
            return
        if op == "(":
            self.finish(";")
            self.groups.append(self.next_group)
            self.next_group += 1
            return
        if op == ")":
            self.finish(";")
            self.close_list()
            if len(self.groups) > 1:
                self.groups.pop()
            return
        if self.mode == "for" and op == ";":
            self.finish_loop()
            self.mode = "command"
            return
        self.finish(op)
        if op in (";;", ";&", ";;&"):
            self.close_list()
            self.mode = "case-pattern"

    def word(self, word: str) -> None:
        if self.pending is not None:
            self.redirects.append(Redirect(self.pending, word))
            self.pending = None
            return
        if self.mode == "for":
            if word == "do":
                self.finish_loop()
                self.mode = "command"
            elif word != "in" or not self.words or len(self.words) > 1:
                self.words.append(word)
            return
        if self.mode == "case-word":
            self.mode = "case-in" if word != "in" else "case-pattern"
            return
        if self.mode == "case-in":
            self.mode = "case-pattern" if word == "in" else self.mode
            return
        if self.mode == "case-pattern":
            if word == "esac":
                self.close_list()
                self.mode = "command"
            return
        if not self.words and not self.redirects:
            if word in _OPENERS:
                self.close_list()
                self.condition = word in _CONDITIONS
                if word == "{":
                    self.groups.append(self.next_group)
                    self.next_group += 1
                return
            if word in _CLOSERS:
                self.close_list()
                if word == "}" and len(self.groups) > 1:
                    self.groups.pop()
                return
            if word in ("for", "select"):
                self.mode = "for"
                self.words = []
                return
            if word == "case":
                self.mode = "case-word"
                return
        self.words.append(word)


@functools.lru_cache(maxsize=1024)
def commands(text: str) -> tuple[Command, ...]:
    """The simple commands of shell ``text``, in order (raises ValueError on a bad quote)."""
    splitter = _Splitter()
    for token in tokens(prepare(text)):
        if _OPERATOR_TOKEN_RE.fullmatch(token):
            for op in _OP_RE.findall(token):
                splitter.operator(op)
        else:
            splitter.word(token)
    splitter.finish(None)
    splitter.close_list()
    return tuple(splitter.commands)


def substitute(word: str, env: Mapping[str, str]) -> str:
    """``word`` with ``$VAR``/``${VAR...}`` expanded from ``env``; what cannot be known
    (a command substitution, a malformed ``${...}``) becomes :data:`UNKNOWN`."""

    def one(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("${"):
            if text == "${" + _SUBST + "}":
                return UNKNOWN
            try:
                return expand(text, env)
            except ConfigError:
                return UNKNOWN
        return env.get(text[1:], "")

    if "$" in word:
        word = _VAR_RE.sub(one, word)
    return word.replace(LITERAL_DOLLAR, "$")


def known(word: str) -> bool:
    """Whether ``word`` holds no value the gate cannot know."""
    return UNKNOWN not in word
