"""The stage graph: ARG scopes, each stage's base, which stages use which, and the scope
(ARG/ENV values and working directory) in force before each instruction."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping

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


def platform_args(target: str, build: str = "") -> dict[str, str]:
    """The platform ARGs BuildKit defines for a build for ``target`` (``os/arch[/variant]``,
    as ``--platform`` takes it) on an engine of platform ``build`` (default: ``target``)."""

    def parts(spec: str) -> tuple[str, str, str]:
        os_, _, rest = spec.strip().lower().partition("/")
        arch, _, variant = rest.partition("/")
        arch = {"x86_64": "amd64", "aarch64": "arm64", "armhf": "arm"}.get(arch, arch)
        if arch == "arm64" and variant in ("v8", "8"):
            variant = ""  # BuildKit normalises linux/arm64/v8 to linux/arm64
        elif arch == "arm" and not variant:
            variant = "v7"
        return os_ or "linux", arch or "amd64", variant

    args: dict[str, str] = {}
    for prefix, spec in (("TARGET", target), ("BUILD", build or target)):
        os_, arch, variant = parts(spec)
        args |= {
            f"{prefix}PLATFORM": "/".join(p for p in (os_, arch, variant) if p),
            f"{prefix}OS": os_,
            f"{prefix}ARCH": arch,
            f"{prefix}VARIANT": variant,
        }
    return args


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


class Scope:
    """What is in force before an instruction: ARG and ENV values and the working directory.

    :func:`walk` hands out one live scope per stage and updates it in place: read it before
    the next step, copy what must outlive it.
    """

    def __init__(
        self,
        args: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str = "/",
    ) -> None:
        self.args: dict[str, str] = dict(args or {})
        self.env: dict[str, str] = dict(env or {})
        self.workdir = workdir
        self._vars: dict[str, str] = {**self.args, **self.env}

    def vars(self) -> Mapping[str, str]:
        """Values for expansion: ENV wins over ARG of the same name (a live view)."""
        return self._vars

    def set_arg(self, name: str, value: str) -> None:
        """Set ARG ``name`` (an ENV of the same name still wins)."""
        self.args[name] = value
        if name not in self.env:
            self._vars[name] = value

    def set_env(self, name: str, value: str) -> None:
        """Set ENV ``name``."""
        self.env[name] = value
        self._vars[name] = value

    def copy(self) -> Scope:
        """An independent copy."""
        return Scope(self.args, self.env, self.workdir)


def walk(
    df: Dockerfile,
    build_args: Mapping[str, str],
    parents: list[Stage | None] | None = None,
    start_env: Mapping[int, Mapping[str, str]] | None = None,
) -> Iterator[tuple[Stage, Instruction, Scope]]:
    """Each instruction of each stage with the scope in force before it (a live object).

    ENV and WORKDIR are inherited from the stage a stage is FROM; ARGs are per stage; a
    stage FROM an image starts with ``start_env`` of its index (the image's own ENV, which
    BuildKit expands in its instructions), when given.
    """
    genv = global_env(df, build_args)
    if parents is None:
        parents = base_stages(df, build_args)
    ends: list[Scope] = []
    for stage, parent in zip(df.stages, parents, strict=True):
        scope = Scope(env=(start_env or {}).get(stage.index))
        if parent is not None:
            inherited = ends[parent.index]
            scope = Scope(env=inherited.env, workdir=inherited.workdir)
        for ins in stage.instructions:
            yield stage, ins, scope
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
                    scope.set_arg(name, build_args[name])
                elif default is not None:
                    scope.set_arg(name, expand(default, scope.vars(), escape=df.escape))
                elif name in genv:
                    scope.set_arg(name, genv[name])
        elif ins.keyword == "ENV":
            values = dict(scope.vars()) if len(ins.args) > 2 else scope.vars()
            pairs = list(zip(ins.args[0::2], ins.args[1::2], strict=True))
            for key, value in pairs:
                scope.set_env(key, expand(value, values, escape=df.escape))
        elif ins.keyword == "WORKDIR" and ins.args:
            target = expand(ins.args[0], scope.vars(), escape=df.escape)
            scope.workdir = posixpath.normpath(posixpath.join(scope.workdir, target))
            if scope.workdir.startswith("//"):
                scope.workdir = "/" + scope.workdir.lstrip("/")
    except ConfigError as exc:
        raise _error(df.path, ins.line, exc.message) from None


def stage_refs(
    df: Dockerfile, build_args: Mapping[str, str], parents: list[Stage | None] | None = None
) -> list[list[tuple[Stage, int]]]:
    """For each stage, the earlier stages it uses and the line that uses each."""
    if parents is None:
        parents = base_stages(df, build_args)
    refs: list[list[tuple[Stage, int]]] = [[] for _ in df.stages]
    for stage, parent in zip(df.stages, parents, strict=True):
        if parent is not None:
            refs[stage.index].append((parent, stage.line))
    for stage, ins, scope in walk(df, build_args, parents):
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


def _final_stage(df: Dockerfile, target: str | None) -> Stage:
    if target is None:
        return df.stages[-1]
    final = find_stage(df.stages, target, len(df.stages)) if not target.isdigit() else None
    if final is None:
        known = ", ".join(s.label for s in df.stages)
        raise _error(
            df.path,
            df.stages[-1].line,
            f"target stage {target!r} not found; stages are: {known}",
        )
    return final


def _closure(refs: list[list[tuple[Stage, int]]], final: Stage) -> set[int]:
    seen: set[int] = set()
    todo = [final.index]
    while todo:
        idx = todo.pop()
        if idx in seen:
            continue
        seen.add(idx)
        todo.extend(dep.index for dep, _line in refs[idx])
    return seen


def _cycle(refs: list[list[tuple[Stage, int]]], final: Stage) -> list[tuple[Stage, int]] | None:
    """A cycle of stage uses reachable from the final stage (BuildKit refuses those:
    "circular dependency detected"), as (stage, line of the use) links; None when there is none."""
    state: dict[int, int] = {}  # 1: on the path, 2: done
    path: list[tuple[Stage, int]] = []

    def visit(idx: int) -> list[tuple[Stage, int]] | None:
        state[idx] = 1
        for dep, line in refs[idx]:
            if state.get(dep.index) == 1:
                start = next(i for i, (st, _) in enumerate(path) if st.index == dep.index)
                return [*path[start:], (dep, line)]
            if dep.index not in state:
                path.append((dep, line))
                found = visit(dep.index)
                if found:
                    return found
                path.pop()
        state[idx] = 2
        return None

    path.append((final, final.line))
    return visit(final.index)


def required_stages(
    df: Dockerfile, build_args: Mapping[str, str], target: str | None = None
) -> list[Stage]:
    """The stages the final stage (or ``target``) depends on, itself included, in file order."""
    final = _final_stage(df, target)
    seen = _closure(stage_refs(df, build_args), final)
    return [s for s in df.stages if s.index in seen]


class StageGraph:
    """The stages of one Dockerfile for one set of build args: each stage's base stage, which
    stages each one uses (and on which line), and the stages the built image needs."""

    def __init__(
        self, df: Dockerfile, build_args: Mapping[str, str], target: str | None = None
    ) -> None:
        self.df = df
        self.build_args = dict(build_args)
        self.bases = resolve_bases(df, build_args)
        self.parents: list[Stage | None] = [
            find_stage(df.stages, base, stage.index)
            for stage, base in zip(df.stages, self.bases, strict=True)
        ]
        self.final = _final_stage(df, target)
        self.refs = stage_refs(df, build_args, self.parents)
        cycle = _cycle(self.refs, self.final)
        if cycle:
            names = " -> ".join(st.label for st, _line in cycle)
            raise _error(
                df.path,
                cycle[-1][1],
                f"the stages use each other in a circle ({names}): BuildKit cannot build it "
                "(circular dependency)",
            )
        closure = _closure(self.refs, self.final)
        self.required: list[Stage] = [s for s in df.stages if s.index in closure]
        self.required_set = frozenset(closure)

    def label(self, index: int) -> str:
        """The name (or index) of stage ``index``."""
        return self.df.stages[index].label

    def chain(self, dep: int) -> list[tuple[int, int, int]]:
        """How the final stage reaches stage ``dep``: (user, used, line) links, final first."""
        previous: dict[int, tuple[int, int]] = {}
        todo = [self.final.index]
        while todo:
            idx = todo.pop(0)
            for used, line in self.refs[idx]:
                if used.index not in previous and used.index != self.final.index:
                    previous[used.index] = (idx, line)
                    todo.append(used.index)
        links: list[tuple[int, int, int]] = []
        idx = dep
        while idx in previous:
            user, line = previous[idx]
            links.append((user, idx, line))
            idx = user
        return links[::-1]
