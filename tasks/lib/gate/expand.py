"""Docker's word expansion: ``$VAR`` and ``${VAR...}`` with quote and escape removal."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from tasks.lib.errors import ConfigError

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Expander:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.pos = 0

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"cannot expand {self.text!r}: {message}")

    def process(self, stop: str | None = None) -> str:
        out: list[str] = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if stop is not None and c == stop:
                self.pos += 1
                return "".join(out)
            if c == self.escape:
                self.pos += 1
                if self.pos < n:
                    out.append(text[self.pos])
                    self.pos += 1
                else:
                    out.append(c)
            elif c == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise self.fail("unterminated single quote")
                out.append(text[self.pos + 1 : end])
                self.pos = end + 1
            elif c == '"':
                out.append(self.double_quoted())
            elif c == "$":
                out.append(self.dollar())
            else:
                out.append(c)
                self.pos += 1
        if stop is not None:
            raise self.fail("missing '}'")
        return "".join(out)

    def double_quoted(self) -> str:
        text, n = self.text, len(self.text)
        self.pos += 1
        out: list[str] = []
        while self.pos < n:
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == self.escape and self.pos + 1 < n and text[self.pos + 1] in ('"', "$", c):
                out.append(text[self.pos + 1])
                self.pos += 2
            elif c == "$":
                out.append(self.dollar())
            else:
                out.append(c)
                self.pos += 1
        raise self.fail("unterminated double quote")

    def dollar(self) -> str:
        text, n = self.text, len(self.text)
        self.pos += 1
        if self.pos >= n:
            return "$"
        if text[self.pos] != "{":
            m = _NAME_RE.match(text, self.pos)
            if not m:
                return "$"
            self.pos = m.end()
            return self.env.get(m.group(0), "")
        self.pos += 1
        m = _NAME_RE.match(text, self.pos)
        if not m:
            raise self.fail("bad substitution")
        name = m.group(0)
        self.pos = m.end()
        if self.pos >= n:
            raise self.fail("missing '}'")
        if text[self.pos] == "}":
            self.pos += 1
            return self.env.get(name, "")
        colon = text[self.pos] == ":"
        if colon:
            self.pos += 1
        if self.pos >= n:
            raise self.fail("missing '}'")
        op = text[self.pos]
        self.pos += 1
        if not colon and op in "#%" and self.pos < n and text[self.pos] == op:
            op += op
            self.pos += 1
        if op not in ("-", "+", "?", "#", "##", "%", "%%") or (colon and op[0] in "#%"):
            raise self.fail(f"unsupported modifier in ${{{name}...}}")
        word = self.process(stop="}")
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return value if is_set and value is not None else word
        if op == "+":
            return word if is_set else ""
        if op == "?":
            if not is_set or value is None:
                raise self.fail(f"{name}: {word or 'is not set'}")
            return value
        return _trim(value or "", op, word)


def _trim(value: str, op: str, pattern: str) -> str:
    size = len(value)
    if op in ("#", "##"):
        order = range(size + 1) if op == "#" else range(size, -1, -1)
        for i in order:
            if fnmatch.fnmatchcase(value[:i], pattern):
                return value[i:]
        return value
    order = range(size, -1, -1) if op == "%" else range(size + 1)
    for i in order:
        if fnmatch.fnmatchcase(value[i:], pattern):
            return value[:i]
    return value


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand ``$VAR``/``${VAR...}`` in ``word`` and remove quotes and escapes, as Docker does.

    Supports ``${VAR:-x}``, ``${VAR-x}``, ``${VAR:+x}``, ``${VAR+x}``, ``${VAR:?msg}``,
    ``${VAR#p}``/``##``/``%``/``%%``. Unset variables expand to nothing. Raises
    :class:`ConfigError` on a malformed word.
    """
    return _Expander(word, env, escape).process()
