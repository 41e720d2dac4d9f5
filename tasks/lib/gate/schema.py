"""The schema file itself: its hash, the blocks it must have, and where its generators write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tasks.lib import fsread
from tasks.lib.config import file_sha256

_BLOCK_RE = re.compile(r"(?ms)^\s*generator\s+(\w+)\s*\{(.*?)^\s*\}")
_FIELD_RE = re.compile(r'(?m)^\s*(provider|output)\s*=\s*"([^"]*)"')


def schema_sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path`` (through a symlink: of its target)."""
    return file_sha256(path)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def schema_problems(path: Path, shown: str) -> list[str]:
    """What is wrong with the schema file itself (missing, no datasource, no generator)."""
    if not path.is_file():
        if path.is_dir():
            return [
                f"{shown}: a directory, not the schema file; put schema.prisma there or fix "
                "the schema path (meeshy.schema)"
            ]
        if path.exists():
            kind = fsread.kind_of(path.stat().st_mode)
            return [f"{shown}: {kind}, not the schema file; put the schema file there"]
        if path.is_symlink():
            return [f"{shown}: a symlink whose target does not exist; point it at the schema"]
        return [f"{shown}: schema file not found; restore it or fix the service's schema path"]
    try:
        text = _strip_comments(fsread.read_text(path))
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{shown}: cannot read the schema ({exc})"]
    out: list[str] = []
    if not re.search(r"(?m)^\s*datasource\s+\w+\s*\{", text):
        out.append(f"{shown}: no datasource block; add datasource db {{ provider = ... }}")
    if not re.search(r"(?m)^\s*generator\s+\w+\s*\{", text):
        out.append(f"{shown}: no generator block; add generator client {{ provider = ... }}")
    return out


@dataclass(frozen=True)
class Generator:
    """A ``generator`` block: name, provider and ``output`` (relative to the schema's folder)."""

    name: str
    provider: str
    output: str | None


def parse_generators(text: str) -> list[Generator]:
    """The generator blocks of schema ``text``."""
    out: list[Generator] = []
    for match in _BLOCK_RE.finditer(_strip_comments(text)):
        fields = dict(_FIELD_RE.findall(match.group(2)))
        out.append(Generator(match.group(1), fields.get("provider", ""), fields.get("output")))
    return out
