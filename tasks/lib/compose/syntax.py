"""Compose short syntax: ``a:b:c`` split outside ``${...}`` and ``[...]``, ``${VAR:-default}``,
and the two forms of ``environment``/``labels`` (a mapping or a ``KEY=VALUE`` list)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

VAR_WITH_DEFAULT = re.compile(r"^\$\{(?P<var>\w+):?-(?P<default>[^}]*)\}$")


def split_colons(text: str) -> list[str]:
    """Split on ``:`` outside ``${...}`` and ``[...]`` (an IPv6 host address)."""
    parts: list[str] = []
    depth = 0
    bracket = False
    current = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and text[i + 1 : i + 2] == "{":
            depth += 1
            current += "${"
            i += 2
            continue
        if ch == "}" and depth:
            depth -= 1
        elif ch == "[":
            bracket = True
        elif ch == "]":
            bracket = False
        elif ch == ":" and not depth and not bracket:
            parts.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    parts.append(current)
    return parts


def pairs(value: Any) -> Iterable[tuple[str, Any]]:
    """(key, value) of a mapping or a ``KEY=VALUE`` list."""
    if isinstance(value, dict):
        yield from ((str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                key, _eq, val = item.partition("=")
                yield key, val


def map_pairs(value: Any, fn: Callable[[str, Any], tuple[str, Any]]) -> Any:
    """Apply ``fn(key, value)`` to a mapping or a ``KEY=VALUE`` list, keeping its form."""
    if isinstance(value, dict):
        return dict(fn(str(k), v) for k, v in value.items())
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str) and "=" in item:
                key, _eq, val = item.partition("=")
                new_key, new_val = fn(key, val)
                out.append(f"{new_key}={new_val}")
            elif isinstance(item, str):
                out.append(fn(item, None)[0])
            else:
                out.append(item)
        return out
    return value


def strings(value: Any) -> Iterable[str]:
    """Every string in nested data, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
