"""The one compose loader: YAML read the way ``docker compose`` (Go, gopkg.in/yaml.v3) reads it.

PyYAML's ``safe_load`` is YAML 1.1: an unquoted ``10022:22`` is the base-60 integer 601342,
``80:80`` is 4880, ``no``/``off``/``yes`` are booleans. Compose reads YAML 1.2 as yaml.v3
resolves it, so every compose read in this project goes through :func:`load_compose` (or
:func:`read_compose`), whose plain scalars resolve exactly as yaml.v3's ``resolve()`` does:

* null: ``~``, ``null``, ``Null``, ``NULL``, empty; booleans: only ``true``/``True``/``TRUE``
  and ``false``/``False``/``FALSE`` (``yes``, ``on``, ``no`` stay strings);
* integers as Go's ``strconv.ParseInt(text, 0, 64)`` after removing every ``_``: decimal,
  ``0x``, ``0o``, ``0b``, and a leading ``0`` is octal (``017`` is 15), signed or not;
* floats: ``1.5``, ``.5``, ``1e3``, ``08`` (not an octal: 8.0), ``.inf``, ``-.Inf``, ``.nan``;
* timestamps (``2026-01-25``) stay text, as yaml.v3 leaves them when decoding into ``any``;
  they are kept as :class:`PlainTimestamp` so :func:`dump_compose` writes them unquoted again
  (compose then treats the value exactly as in the source);
* a key written twice in one mapping is refused, as compose refuses it.

:func:`dump_compose` writes data back so that both YAML 1.1 and yaml.v3 read it as it is: a
string that either would take for something else (``yes``, ``10022:22``, ``017``, ``1e3``) is
quoted.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from tasks.lib import fsread
from tasks.lib.errors import ConfigError

NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
STR = "tag:yaml.org,2002:str"
MERGE = "tag:yaml.org,2002:merge"
TIMESTAMP = "tag:yaml.org,2002:timestamp"

_CONSTANTS: dict[str, tuple[str, Any]] = {
    **{s: (BOOL, True) for s in ("true", "True", "TRUE")},
    **{s: (BOOL, False) for s in ("false", "False", "FALSE")},
    **{s: (NULL, None) for s in ("", "~", "null", "Null", "NULL")},
    **{s: (FLOAT, float("nan")) for s in (".nan", ".NaN", ".NAN")},
    **{s: (FLOAT, float("inf")) for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: (FLOAT, float("-inf")) for s in ("-.inf", "-.Inf", "-.INF")},
    "<<": (MERGE, None),
}
# yaml.v3 looks a plain scalar up only when its first character is one of these
_HINTED = set("+-0123456789yYnNtTfFoO~.<")
_GO_INT = re.compile(
    r"^(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|0(?P<legacy_oct>[0-7]*)|(?P<dec>[1-9][0-9]*))$"
)
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+(?:[eE][-+]?[0-9]+)?$")
_TIMESTAMP = re.compile(
    r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?:[Tt](?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})(?:\.[0-9]+)?"
    r"(?:Z|[-+][0-9]{2}:[0-9]{2}))"
    r"|(?: (?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:\.[0-9]+)?))?$"
)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


class PlainTimestamp(str):
    """A plain scalar yaml.v3 resolves as a timestamp: text here, written back unquoted."""

    __slots__ = ()


def _go_int(plain: str) -> int | None:
    """``strconv.ParseInt(plain, 0, 64)``, else ``ParseUint``; None when neither accepts it."""
    m = _GO_INT.match(plain)
    if m is None:
        return None
    if m["hex"] is not None:
        value = int(m["hex"], 16)
    elif m["oct"] is not None:
        value = int(m["oct"], 8)
    elif m["bin"] is not None:
        value = int(m["bin"], 2)
    elif m["legacy_oct"] is not None:
        value = int(m["legacy_oct"] or "0", 8)
    else:
        value = int(m["dec"])
    if m["sign"] == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if not m["sign"] and value <= _UINT64_MAX:  # ParseUint takes no sign
        return value
    return None


def _finite_float(text: str) -> float | None:
    value = float(text)
    return None if value in (float("inf"), float("-inf")) else value  # Go: ErrRange


def _is_timestamp(text: str) -> bool:
    m = _TIMESTAMP.match(text)
    if m is None:
        return False
    try:
        datetime.date(int(m["y"]), int(m["m"]), int(m["d"]))
        hour, minute, second = (m["H"] or m["h"]), (m["M"] or m["mi"]), (m["S"] or m["s"])
        if hour is not None:
            datetime.time(int(hour), int(minute), int(second))
    except ValueError:
        return False
    return True


def resolve_plain(text: str) -> tuple[str, Any]:
    """(tag, value) of an unquoted scalar, as yaml.v3's ``resolve()`` decides them."""
    if text and text[0] not in _HINTED:
        return STR, text
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.match(text) and (value := _finite_float(text)) is not None:
            return FLOAT, value
        return STR, text
    if first in "+-0123456789":
        if _is_timestamp(text):
            return TIMESTAMP, PlainTimestamp(text)
        plain = text.replace("_", "")
        if (number := _go_int(plain)) is not None:
            return INT, number
        if _YAML_STYLE_FLOAT.match(plain) and (value := _finite_float(plain)) is not None:
            return FLOAT, value
    return STR, text


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader whose plain scalars resolve as in yaml.v3; duplicate keys refused."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return resolve_plain(value)[0]
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def _scalar(self, node: Node) -> Any:
        text = self.construct_scalar(node)  # type: ignore[arg-type]
        tag, value = resolve_plain(str(text))
        if tag != node.tag:  # an explicit tag (!!int "1"): let PyYAML convert it
            return None
        return value

    def construct_go_int(self, node: Node) -> Any:
        value = self._scalar(node)
        return value if value is not None else super().construct_yaml_int(node)  # type: ignore[arg-type]

    def construct_go_float(self, node: Node) -> Any:
        value = self._scalar(node)
        return value if value is not None else super().construct_yaml_float(node)  # type: ignore[arg-type]

    def construct_plain_timestamp(self, node: Node) -> Any:
        return PlainTimestamp(self.construct_scalar(node))  # type: ignore[arg-type]

    def flatten_mapping(self, node: MappingNode) -> None:
        """Refuse a key written twice (yaml.v3 compares the keys' text), before PyYAML
        merges ``<<`` keys into the node."""
        if id(node) not in self._checked:
            self._checked.add(id(node))
            seen: dict[str, int] = {}
            for key_node, _value in node.value:
                if not isinstance(key_node, ScalarNode):
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"line {line}: mapping key {key_node.value!r} already defined at line "
                        f"{seen[key_node.value]}",
                        key_node.start_mark,
                    )
                seen[key_node.value] = line
        super().flatten_mapping(node)

    @property
    def _checked(self) -> set[int]:
        checked: set[int] | None = self.__dict__.get("_checked_nodes")
        if checked is None:
            checked = self.__dict__["_checked_nodes"] = set()
        return checked


_ComposeLoader.add_constructor(INT, _ComposeLoader.construct_go_int)
_ComposeLoader.add_constructor(FLOAT, _ComposeLoader.construct_go_float)
_ComposeLoader.add_constructor(TIMESTAMP, _ComposeLoader.construct_plain_timestamp)


class _ComposeDumper(yaml.SafeDumper):
    """SafeDumper that quotes a string whenever YAML 1.1 or yaml.v3 would read it as
    something else, and writes :class:`PlainTimestamp` unquoted."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            go = resolve_plain(value)[0]
            yaml11 = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            if go == yaml11:
                return go
            return "tag:meeshy,ambiguous"  # matches no node tag: never written plain
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a generated file spells every value out: no &id001 anchors


def _represent_timestamp(dumper: yaml.SafeDumper, data: PlainTimestamp) -> Node:
    return dumper.represent_scalar(TIMESTAMP, str(data))


_ComposeDumper.add_representer(PlainTimestamp, _represent_timestamp)


def load_yaml(text: str, source: str) -> Any:
    """Any YAML document, read as compose reads it; ConfigError when it is not YAML."""
    try:
        return yaml.load(text, Loader=_ComposeLoader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)
        mark = getattr(exc, "problem_mark", None)
        if problem and mark is not None and not str(problem).startswith("line "):
            where = f"line {mark.line + 1}: {problem}"
        else:
            lines = str(problem or exc).strip().splitlines()
            where = lines[0] if lines else "invalid YAML"
        raise ConfigError(f"{source} is not a compose file: invalid YAML ({where})") from None


def load_compose(text: str, source: str) -> dict[str, Any]:
    """Parse compose YAML; refuse anything that is not a mapping with a ``services`` mapping."""
    data = load_yaml(text, source)
    if data is None:
        raise ConfigError(f"{source} is not a compose file: it is empty")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} is not a compose file: the top level is a {type(data).__name__}, "
            "not a mapping"
        )
    if not isinstance(data.get("services"), dict):
        raise ConfigError(f"{source} is not a compose file: no `services` mapping")
    return data


def read_text(path: Path, what: str = "compose file") -> str:
    """A file's UTF-8 text; ConfigError (one line) when it cannot be read or is not text."""
    try:
        raw = fsread.read_bytes(path)
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not a compose file: not UTF-8 text "
            f"(byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None


def read_compose(path: Path) -> dict[str, Any]:
    """:func:`load_compose` of a file."""
    return load_compose(read_text(path), str(path))


def dump_compose(data: Any) -> str:
    """YAML text, key order kept, that compose and YAML 1.1 readers read back as ``data``."""
    return yaml.dump(
        data,
        Dumper=_ComposeDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=2**16,
    )
