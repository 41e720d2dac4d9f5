"""The stage graph: ARG scopes, each stage's base, which stages use which, and the scope
(ARG/ENV values and working directory) in force before each instruction."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tasks.lib.errors import ConfigError, DockerfileError
from tasks.lib.gate.dockerfile import Dockerfile, Instruction, Stage, find_stage, mount_options
from tasks.lib.gate.expand import expand

#: Platform ARGs BuildKit defines in the global scope.
DEFAULT_PLATFORM_ARGS: Mapping[str, str] = {
    "BUILDPLATFORM": "linux/amd64",
    "BUILDOS": "linux",
    "BUILDARCH": "amd64",
    "BUILDVARIANT": "",
    "TARGETPLATFORM": "linux/amd64",
    "TARGETOS": "linux",
    "TARGETARCH": "amd64",
    "TARGETVARIANT": "",
}


def _error(path: str, line: int, message: str) -> DockerfileError:
    return DockerfileError(path, line, message)


def _arg_pairs(ins: Instruction) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for word in ins.args:
        name, eq, default = word.partition("=")
        pairs.append((name, default if eq else None))
    return pairs


def global_env(df: Dockerfile, build_args: Mapping[str, str]) -> dict[str, str]:
    """The global ARG values: defaults overridden by ``build_args``, platform ARGs included."""
    env: dict[str, str] = dict(DEFAULT_PLATFORM_ARGS)
    env.update({k: v for k, v in build_args.items() if k in DEFAULT_PLATFORM_ARGS})
    for ins in df.global_args:
        for name, default in _arg_pairs(ins):
            if name in build_args:
                env[name] = build_args[name]
            elif default is not None:
                try:
                    env[name] = expand(default, env, escape=df.escape)
                except ConfigError as exc:
                    raise _error(df.path, ins.line, exc.message) from None
    return env


def resolve_bases(df: Dockerfile, build_args: Mapping[str, str]) -> list[str]:
    """Each stage's FROM image, expanded with global ARG defaults overridden by build args."""
    env = global_env(df, build_args)
    bases: list[str] = []
    for stage in df.stages:
        try:
            base = expand(stage.base, env, escape=df.escape)
        except ConfigError as exc:
            raise _error(df.path, stage.line, exc.message) from None
        if not base.strip():
            names = ", ".join(sorted(set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", stage.base))))
            raise _error(
                df.path,
                stage.line,
                f"FROM {stage.base} resolves to an empty image name; set {names or 'the ARG'} "
                "with a global ARG default or --build-arg",
            )
        bases.append(base)
    return bases


def base_stages(df: Dockerfile, build_args: Mapping[str, str]) -> list[Stage | None]:
    """For each stage, the earlier stage its FROM names, or ``None`` for an image."""
    bases = resolve_bases(df, build_args)
    return [
        find_stage(df.stages, base, stage.index)
        for stage, base in zip(df.stages, bases, strict=True)
    ]


@dataclass
class Scope:
    """What is in force before an instruction: ARG and ENV values and the working directory."""

    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"

    def vars(self) -> dict[str, str]:
        """Values for expansion: ENV wins over ARG of the same name."""
        return {**self.args, **self.env}

    def copy(self) -> Scope:
        """An independent copy."""
        return Scope(dict(self.args), dict(self.env), self.workdir)


def walk(
    df: Dockerfile, build_args: Mapping[str, str]
) -> Iterator[tuple[Stage, Instruction, Scope]]:
    """Each instruction of each stage with the scope in force before it.

    ENV and WORKDIR are inherited from the stage a stage is FROM; ARGs are per stage.
    """
    genv = global_env(df, build_args)
    parents = base_stages(df, build_args)
    ends: list[Scope] = []
    for stage, parent in zip(df.stages, parents, strict=True):
        scope = Scope()
        if parent is not None:
            inherited = ends[parent.index]
            scope.env = dict(inherited.env)
            scope.workdir = inherited.workdir
        for ins in stage.instructions:
            yield stage, ins, scope.copy()
            _apply(df, ins, scope, genv, build_args)
        ends.append(scope)


def _apply(
    df: Dockerfile,
    ins: Instruction,
    scope: Scope,
    genv: Mapping[str, str],
    build_args: Mapping[str, str],
) -> None:
    try:
        if ins.keyword == "ARG":
            for name, default in _arg_pairs(ins):
                if name in build_args:
                    scope.args[name] = build_args[name]
                elif default is not None:
                    scope.args[name] = expand(default, scope.vars(), escape=df.escape)
                elif name in genv:
                    scope.args[name] = genv[name]
        elif ins.keyword == "ENV":
            values = scope.vars()
            pairs = list(zip(ins.args[0::2], ins.args[1::2], strict=True))
            for key, value in pairs:
                scope.env[key] = expand(value, values, escape=df.escape)
        elif ins.keyword == "WORKDIR" and ins.args:
            target = expand(ins.args[0], scope.vars(), escape=df.escape)
            scope.workdir = posixpath.normpath(posixpath.join(scope.workdir, target))
            if scope.workdir.startswith("//"):
                scope.workdir = "/" + scope.workdir.lstrip("/")
    except ConfigError as exc:
        raise _error(df.path, ins.line, exc.message) from None


def stage_refs(df: Dockerfile, build_args: Mapping[str, str]) -> list[list[tuple[Stage, int]]]:
    """For each stage, the earlier stages it uses and the line that uses each."""
    parents = base_stages(df, build_args)
    refs: list[list[tuple[Stage, int]]] = [[] for _ in df.stages]
    for stage, parent in zip(df.stages, parents, strict=True):
        if parent is not None:
            refs[stage.index].append((parent, stage.line))
    for stage, ins, scope in walk(df, build_args):
        names: list[str] = []
        if ins.keyword in ("COPY", "ADD"):
            ref = ins.flag("from")
            if ref is not None:
                names.append(ref)
        elif ins.keyword == "RUN":
            for value in ins.flag_values("mount"):
                src = mount_options(value or "").get("from")
                if src:
                    names.append(src)
        for name in names:
            try:
                ref = expand(name, scope.vars(), escape=df.escape)
            except ConfigError as exc:
                raise _error(df.path, ins.line, exc.message) from None
            target = find_stage(df.stages, ref, len(df.stages))
            if target is not None and target.index != stage.index:
                refs[stage.index].append((target, ins.line))
            elif target is None and ref.isdigit():
                raise _error(df.path, ins.line, f"--from={ref}: there is no stage {ref}")
    return refs


def required_stages(
    df: Dockerfile, build_args: Mapping[str, str], target: str | None = None
) -> list[Stage]:
    """The stages the final stage (or ``target``) depends on, itself included, in file order."""
    if target is not None:
        final = find_stage(df.stages, target, len(df.stages)) if not target.isdigit() else None
        if final is None:
            known = ", ".join(s.label for s in df.stages)
            raise _error(
                df.path,
                df.stages[-1].line,
                f"target stage {target!r} not found; stages are: {known}",
            )
    else:
        final = df.stages[-1]
    refs = stage_refs(df, build_args)
    seen: set[int] = set()
    todo = [final.index]
    while todo:
        idx = todo.pop()
        if idx in seen:
            continue
        seen.add(idx)
        todo.extend(dep.index for dep, _line in refs[idx])
    return [s for s in df.stages if s.index in seen]
