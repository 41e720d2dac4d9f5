"""What an image's build reads: its build-context sources and the images it starts from.

:func:`build_inputs` reads a Dockerfile (no Docker involved) and lists, for the stages the
final image depends on, every source taken from the build context (``COPY``/``ADD`` without
``--from``, ``RUN --mount=type=bind`` without ``from=``, with their ``--exclude`` patterns)
and every image it depends on (``FROM`` images that are not stages, ``COPY --from=<image>``,
``--mount from=<image>``), ARGs resolved with the build args. :func:`context_files` turns
sources into the sorted context files Docker sends for them, after the ignore file. Together
with the Dockerfile itself they are what a content-addressed cache must hash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.lib import fsread
from tasks.lib.errors import ConfigError, DockerfileError
from tasks.lib.gate.context import BuildContext, context_rel, has_glob
from tasks.lib.gate.dockerfile import Dockerfile, Instruction, mount_options, parse
from tasks.lib.gate.dockerignore import IgnoreRules, ignore_file
from tasks.lib.gate.expand import expand
from tasks.lib.gate.report import GateInput
from tasks.lib.gate.stages import Scope, StageGraph, walk

_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")


@dataclass(frozen=True)
class ContextSource:
    """One source read from the build context."""

    stage: str
    line: int
    keyword: str  # COPY, ADD or RUN --mount=type=bind
    path: str  # context-relative, as written after ARG expansion ("" is the whole context)
    excludes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "stage": self.stage,
            "line": self.line,
            "keyword": self.keyword,
            "path": self.path,
            "excludes": list(self.excludes),
        }


@dataclass(frozen=True)
class BuildInputs:
    """The inputs of one image's build."""

    dockerfile: str
    final: str  # the stage that is built
    stages: tuple[str, ...]  # the stages it depends on, itself included, in file order
    sources: tuple[ContextSource, ...]
    images: tuple[str, ...]  # image references, in order of first use
    remote: tuple[str, ...]  # ADD of a URL or a git repository
    frontend: str | None  # the ``# syntax=`` image, if any
    # the image the final stage's filesystem starts from (the FROM at the root of its chain
    # of stages); "" for scratch: its layers are the first of the built image's
    root: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "dockerfile": self.dockerfile,
            "final": self.final,
            "stages": list(self.stages),
            "sources": [s.to_json() for s in self.sources],
            "images": list(self.images),
            "remote": list(self.remote),
            "frontend": self.frontend,
        }


def _expand(df: Dockerfile, word: str, scope: Scope, line: int) -> str:
    try:
        return expand(word, scope.vars(), escape=df.escape)
    except ConfigError as exc:
        raise DockerfileError(df.path, line, exc.message) from None


def build_inputs(inp: GateInput) -> BuildInputs:
    """The build inputs of ``inp``'s image (raises DockerfileError on a bad Dockerfile)."""
    df = parse(fsread.read_text(inp.root / inp.dockerfile), inp.dockerfile)
    graph = StageGraph(df, inp.build_args, inp.target)
    sources: list[ContextSource] = []
    images: list[str] = []
    remote: list[str] = []
    for stage, parent, base in zip(df.stages, graph.parents, graph.bases, strict=True):
        if stage.index in graph.required_set and parent is None and base != "scratch":
            images.append(base)

    def take(label: str, ins: Instruction, scope: Scope) -> None:
        if ins.keyword in ("COPY", "ADD"):
            _copy_inputs(df, label, ins, scope, sources, images, remote)
        elif ins.keyword == "RUN":
            _mount_inputs(df, label, ins, scope, sources, images)

    ends: dict[int, Scope] = {}  # each stage's scope once walked: where its children start
    start_env = {
        stage.index: inp.base_env[base]
        for stage, parent, base in zip(df.stages, graph.parents, graph.bases, strict=True)
        if parent is None and base in inp.base_env
    }
    for stage, ins, scope in walk(df, inp.build_args, graph.parents, start_env):
        ends[stage.index] = scope
        if stage.index not in graph.required_set:
            continue
        take(stage.label, ins, scope)
    # a stage FROM a stage runs that stage's ONBUILD triggers first (BuildKit does)
    for stage, parent in zip(df.stages, graph.parents, strict=True):
        if stage.index not in graph.required_set or parent is None:
            continue
        triggers = [ins.onbuild for ins in parent.instructions if ins.onbuild is not None]
        if triggers:
            start = Scope(env=ends[parent.index].env, workdir=ends[parent.index].workdir)
        for trigger in triggers:
            take(stage.label, trigger, start)
    frontend = dict(df.directives).get("syntax")
    first = graph.final
    while (up := graph.parents[first.index]) is not None:
        first = up
    root = graph.bases[first.index]
    return BuildInputs(
        dockerfile=inp.dockerfile,
        final=graph.final.label,
        stages=tuple(s.label for s in graph.required),
        sources=tuple(sources),
        images=tuple(dict.fromkeys(images)),
        remote=tuple(dict.fromkeys(remote)),
        frontend=frontend,
        root="" if root == "scratch" else root,
    )


def _copy_inputs(
    df: Dockerfile,
    label: str,
    ins: Instruction,
    scope: Scope,
    sources: list[ContextSource],
    images: list[str],
    remote: list[str],
) -> None:
    words = list(ins.args) if ins.json_form else [_expand(df, w, scope, ins.line) for w in ins.args]
    ref = ins.flag("from")
    if ref is not None:
        name = _expand(df, ref, scope, ins.line)
        if df.stage(name) is None:
            images.append(name)
        return
    heredocs = {h.name for h in ins.heredocs}
    excludes = tuple(_expand(df, v, scope, ins.line) for v in ins.flag_values("exclude") if v)
    for source in words[:-1]:
        marker = re.match(r"^\d*<<-?(.*)$", source)
        if marker and marker.group(1).strip("'\"") in heredocs and not ins.json_form:
            continue
        if _URL_RE.match(source) or source.startswith("git@"):
            remote.append(source)
            continue
        sources.append(ContextSource(label, ins.line, ins.keyword, context_rel(source), excludes))


def _mount_inputs(
    df: Dockerfile,
    label: str,
    ins: Instruction,
    scope: Scope,
    sources: list[ContextSource],
    images: list[str],
) -> None:
    for value in ins.flag_values("mount"):
        opts = {k: _expand(df, v, scope, ins.line) for k, v in mount_options(value or "").items()}
        if opts.get("type", "bind").lower() != "bind":
            continue
        ref = opts.get("from")
        if ref:
            if df.stage(ref) is None:
                images.append(ref)
            continue
        source = opts.get("source") or opts.get("src") or "."
        sources.append(ContextSource(label, ins.line, "RUN --mount=type=bind", context_rel(source)))


def context_files(
    context_root: Path,
    dockerfile: Path,
    sources: Sequence[ContextSource | str],
    *,
    apply_excludes: bool = True,
) -> list[str]:
    """The context entries (files, symlinks, folders, special files) the build reads for
    ``sources``, sorted, relative to ``context_root``: what Docker sends after the ignore
    file (``<Dockerfile>.dockerignore`` beside ``dockerfile`` wins over
    ``<context_root>/.dockerignore``), each wildcard matched,
    a source that is a symlink followed (the symlink listed too), and, with
    ``apply_excludes``, without what a source's ``--exclude`` patterns keep out of the image
    (Docker still sends those files; the image never sees them)."""
    root = context_root.resolve()
    used = ignore_file(root, dockerfile)
    context = BuildContext(root, IgnoreRules.read(used, str(used) if used else None))
    found: set[str] = set()
    for source in sources:
        item = source if isinstance(source, ContextSource) else ContextSource("", 0, "", source)
        rel = context_rel(item.path)
        matches = context.glob(rel) if has_glob(rel) else [rel]
        excludes = IgnoreRules.of(item.excludes) if apply_excludes and item.excludes else None
        for match in matches:
            if context.kind(match) == "link":
                found.add(match)
            followed = context.resolve(match)
            if followed is not None:
                found.update(context.walk(followed, excludes))
    return sorted(found)
