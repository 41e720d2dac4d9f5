"""What the gate is asked (:class:`GateInput`) and what it answers (:class:`GateReport`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from tasks.lib.stamps import FileStamp

Policy = Literal["generate", "copy", "none"]
POLICIES: tuple[Policy, ...] = ("generate", "copy", "none")


class Verdict(StrEnum):
    """The gate's answer for one image. ``SKIP`` is the ``none`` policy: reported, never refused."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class GateInput:
    """What the gate checks: one service (and variant) built from one Dockerfile."""

    service: str
    variant: str | None
    policy: Policy
    root: Path
    dockerfile: str
    context: str = "."
    build_args: Mapping[str, str] = field(default_factory=dict)
    schema: str = "packages/shared/prisma/schema.prisma"
    target: str | None = None
    # image reference -> its ENV, for stages FROM it (the input key's reading; the gate
    # itself reads the Dockerfile alone)
    base_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """One step of the proof: a stage, a Dockerfile line and what it does with the schema."""

    stage: str
    line: int
    text: str

    def to_json(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"stage": self.stage, "line": self.line, "text": self.text}


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict for one service/variant. Every message is one plain line of text."""

    service: str
    variant: str | None
    policy: Policy
    verdict: Verdict
    evidence: tuple[Evidence, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    schema: str
    schema_sha256: str | None
    # (path, stamp taken just before the read) of each context file the gate read beyond
    # the Dockerfile and the schema (a package.json's build script): not part of the verdict
    read: tuple[tuple[str, FileStamp], ...] = field(default=(), compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """False only when the verdict is ``fail``."""
        return self.verdict is not Verdict.FAIL

    def to_json(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "service": self.service,
            "variant": self.variant,
            "policy": self.policy,
            "verdict": self.verdict.value,
            "ok": self.ok,
            "evidence": [e.to_json() for e in self.evidence],
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "schema": self.schema,
            "schema_sha256": self.schema_sha256,
        }
