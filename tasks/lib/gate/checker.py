"""The gate for one image: read the schema, the ignore file and the Dockerfile, map the
Dockerfile, apply the service's policy, and report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tasks.lib import fsread
from tasks.lib.errors import ConfigError, DockerfileError
from tasks.lib.gate.context import BuildContext
from tasks.lib.gate.dockerfile import parse
from tasks.lib.gate.dockerignore import IgnoreRules, ignore_file
from tasks.lib.gate.model import map_dockerfile
from tasks.lib.gate.policy import Outcome, Policies, SchemaRef
from tasks.lib.gate.report import POLICIES, Evidence, GateInput, GateReport, Verdict
from tasks.lib.gate.schema import schema_problems, schema_sha256


@dataclass
class _Collector:
    evidence: list[Evidence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    context: BuildContext | None = None  # what the gate read through, once it has one

    def take(self, outcome: Outcome) -> None:
        self.evidence.extend(e for e in outcome.evidence if e not in self.evidence)
        self.problems.extend(outcome.problems)
        self.warnings.extend(outcome.warnings)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check(inp: GateInput) -> GateReport:
    """Run the gate for ``inp``; Dockerfile and schema problems become a ``fail`` verdict."""
    out = _Collector()
    schema_file = inp.root / inp.schema
    digest = schema_sha256(schema_file) if schema_file.is_file() else None
    try:
        _check(inp, out)
    except (DockerfileError, ConfigError) as exc:
        out.problems.append(exc.line())
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(f"{inp.dockerfile}: cannot read a file the gate needs ({exc})")
    problems, warnings = out.problems, out.warnings
    if inp.policy == "none":
        verdict = Verdict.SKIP
        warnings = [*problems, *warnings]
        problems = []
    else:
        verdict = Verdict.FAIL if problems else Verdict.PASS
    return GateReport(
        service=inp.service,
        variant=inp.variant,
        policy=inp.policy,
        verdict=verdict,
        evidence=tuple(out.evidence),
        problems=tuple(problems),
        warnings=tuple(dict.fromkeys(warnings)),
        schema=inp.schema,
        schema_sha256=digest,
        read=tuple(out.context.read_stamps.items()) if out.context else (),
    )


def _ignore_rules(
    inp: GateInput, root: Path, df_path: Path, context_dir: Path, out: _Collector
) -> IgnoreRules:
    used = ignore_file(context_dir, df_path)
    service_file = df_path.parent / ".dockerignore"
    if service_file.is_file() and (used is None or service_file.resolve() != used.resolve()):
        read = _rel(used, root) if used is not None else "no .dockerignore"
        specific = df_path.parent / f"{df_path.name}.dockerignore"
        out.warnings.append(
            f"{_rel(service_file, root)} is not read by a build with context "
            f"'{inp.context}' (Docker reads {read}); move its patterns there or into "
            f"{_rel(specific, root)}"
        )
    return IgnoreRules.read(used, _rel(used, root) if used is not None else None)


def _schema_ref(inp: GateInput, context: BuildContext, rel: str, out: _Collector) -> SchemaRef:
    """The schema in the context, and a problem when the build would not send it."""
    shown = inp.schema
    link = (
        context.link_target(rel)
        if context.on_disk(rel) and os.path.islink(context.root / rel)
        else None
    )
    if context.kind(rel) is None and context.on_disk(rel):
        culprit = context.culprit(rel)
        if culprit is not None:
            out.problems.append(
                f"{context.ignore.source}:{culprit.line}: pattern '{culprit.text}' excludes "
                f"{rel} from the build context; add '!{rel}' after it or narrow the pattern"
            )
    real = context.resolve(rel)
    if link is not None and real is None:
        target = os.path.normpath(os.path.join(os.path.dirname(rel), link))
        culprit = context.culprit(target) if not target.startswith("..") else None
        if culprit is not None:
            why = (
                f"which {context.ignore.source}:{culprit.line} pattern '{culprit.text}' "
                "leaves out of the build context"
            )
        else:
            why = f"which is not in the build context '{inp.context}'"
        out.problems.append(
            f"{shown}: a symlink to {link}, {why}; a build cannot read it (BuildKit resolves "
            "symlinks inside the context): put the file itself there"
        )
    return SchemaRef(rel, real or rel, link)


def _check(inp: GateInput, out: _Collector) -> None:
    if inp.policy not in POLICIES:
        raise ConfigError(f"unknown schema policy {inp.policy!r}: use one of {', '.join(POLICIES)}")
    root = inp.root.resolve()
    schema_file = root / inp.schema
    out.problems.extend(schema_problems(schema_file, inp.schema))
    context_dir = (root / inp.context).resolve()
    df_path = root / inp.dockerfile
    schema_path = schema_file.parent.resolve() / schema_file.name
    try:
        schema_rel = schema_path.relative_to(context_dir).as_posix()
    except ValueError:
        out.problems.append(
            f"{inp.schema}: outside the build context '{inp.context}'; build from a context "
            "that holds it"
        )
        return
    rules = _ignore_rules(inp, root, df_path, context_dir, out)
    context = out.context = BuildContext(context_dir, rules)
    ref = _schema_ref(inp, context, schema_rel, out)
    if not df_path.is_file():
        out.problems.append(
            f"{inp.dockerfile}: Dockerfile not found under {root}; "
            "fix the service's dockerfile path"
        )
        return
    df = parse(fsread.read_text(df_path), inp.dockerfile)
    model = map_dockerfile(df, inp.build_args, context, inp.target)
    for stage, message in model.warnings:
        if stage in model.graph.required_set:
            out.warnings.append(message)
    if out.problems:
        return
    policies = Policies(model, ref, df.path)
    out.take(policies.generate() if inp.policy == "generate" else policies.copy())
