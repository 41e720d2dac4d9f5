"""Build plans: pure data, no Docker. One :class:`ImageBuild` per image, with the exact argv
that the engine runs (through python-on-whales) and that ``--dry-run`` prints, the input the
schema gate checks and the engine it is built on: everything later steps need, resolved once
from Settings (the schema is hashed once per run, in Settings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tasks.lib.config import (
    SCHEMA_LABEL,
    SCHEMA_PATH_LABEL,
    Service,
    Settings,
    build_date,
    vcs_ref,
)
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import ConfigError
from tasks.lib.fsread import kind_of
from tasks.lib.gate import GateInput
from tasks.lib.images.refs import format_tags, repository
from tasks.lib.stamps import FileStamp, build_files, file_stamp

INPUTS_LABEL = "me.meeshy.inputs.sha256"
INPUTS_PARTS_LABEL = "me.meeshy.inputs.parts"
# One value per build: how the image is found once built, untagged (the tags come after the
# inputs are checked again: see tasks/lib/build/flow.land)
BUILD_RUN_LABEL = "me.meeshy.build.run"
BUILDKIT_PROGRESS = "plain"  # the engine parses plain progress to drive the live view


@dataclass(frozen=True)
class BuildOptions:
    """What the build flags ask beyond Settings (which already holds builder and context)."""

    platforms: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    push: bool = False
    force: bool = False  # build even when the image is up to date
    load: bool = False  # --load every image (release), beyond the Makefile's translator


@dataclass(frozen=True)
class Stamp:
    """Values the Makefile derives once per run."""

    build_date: str
    vcs_ref: str

    @classmethod
    def now(cls, root: Path) -> Stamp:
        return cls(build_date=build_date(), vcs_ref=vcs_ref(root))


@dataclass(frozen=True)
class ImageBuild:
    service: str
    variant: str | None
    version: str
    repository: str
    tags: tuple[str, ...]
    dockerfile: str  # absolute
    context: str  # absolute
    build_args: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    load: bool
    push: bool
    platforms: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    builder: str = ""
    engine: EngineTarget = field(default_factory=EngineTarget)
    dockerfile_rel: str = ""
    context_rel: str = "."
    gate: GateInput | None = None  # None: --skip-schema-check
    # the Dockerfile's reading the input key takes its sources and base images from: the
    # gate's input, kept with --skip-schema-check too (a base image retagged is then seen)
    reads: GateInput | None = None
    force: bool = False
    # (path, stamp) of the Dockerfile, the ignore files and the schema when the plan began,
    # before the gate or the schema's hash read them (see tasks/lib/build/inputs.py)
    early_stamps: tuple[tuple[str, FileStamp], ...] = ()

    @property
    def docker_context(self) -> str:
        return self.engine.context

    @property
    def name(self) -> str:
        """Display name: ``gateway`` or ``translator:gpu``."""
        return f"{self.service}:{self.variant}" if self.variant else self.service

    def argv(self) -> list[str]:
        """The exact command; flag order follows python-on-whales' ``buildx.build``."""
        cmd = ["docker"]
        if self.docker_context:
            cmd += ["--context", self.docker_context]
        cmd += ["buildx", "build", "--progress", BUILDKIT_PROGRESS]
        for k, v in self.build_args:
            cmd += ["--build-arg", f"{k}={v}"]
        if self.builder:
            cmd += ["--builder", self.builder]
        for k, v in self.labels:
            cmd += ["--label", f"{k}={v}"]
        if self.push:
            cmd.append("--push")
        if self.load:
            cmd.append("--load")
        cmd += ["--file", self.dockerfile]
        if self.platforms:
            cmd += ["--platform", ",".join(self.platforms)]
        if self.no_cache:
            cmd.append("--no-cache")
        if self.pull:
            cmd.append("--pull")
        for t in self.build_tags:
            cmd += ["--tag", t]
        cmd.append(self.context)
        return cmd

    @property
    def build_tags(self) -> tuple[str, ...]:
        """The tags buildx itself writes: only a push needs them (the registry's names). A
        local image is built untagged and tagged once its inputs are checked again, so no
        tag ever names an image whose inputs moved during its build."""
        return self.tags if self.push else ()

    def whales_kwargs(self) -> dict[str, Any]:
        """Arguments for ``python_on_whales.DockerClient.buildx.build`` giving :meth:`argv`."""
        return {
            "context_path": self.context,
            "build_args": dict(self.build_args),
            "builder": self.builder or None,
            "labels": dict(self.labels),
            "push": self.push,
            "load": self.load,
            "file": self.dockerfile,
            "platforms": list(self.platforms) or None,
            "cache": not self.no_cache,
            "pull": self.pull,
            "tags": list(self.build_tags),
            "progress": BUILDKIT_PROGRESS,
            "stream_logs": True,
        }


@dataclass(frozen=True)
class Target:
    """One image to build: a service and, for services with variants, a variant name."""

    service: str
    variant: str | None = None


@dataclass(frozen=True)
class BuildPlan:
    images: tuple[ImageBuild, ...]
    schema: str
    schema_sha256: str | None
    engine: EngineTarget = field(default_factory=EngineTarget)
    skip_schema_check: bool = False
    warnings: tuple[str, ...] = ()  # said before anything runs, dry run or not

    def with_labels(self, extra: dict[str, tuple[tuple[str, str], ...]]) -> BuildPlan:
        """The plan with more labels on some images (by name): the input keys."""
        images = tuple(replace(i, labels=i.labels + extra.get(i.name, ())) for i in self.images)
        return replace(self, images=images)


def gate_input(settings: Settings, service: Service, variant_name: str | None) -> GateInput:
    """What the schema gate checks for one service (and variant): its Dockerfile, policy and
    the build args that select stages (``TORCH_BACKEND``)."""
    variant = service.variant(variant_name)
    args = dict(variant.build_args) if variant else {}
    args.update(service.build_args)
    return GateInput(
        service=service.name,
        variant=variant.name if variant else None,
        policy=service.schema_policy,
        root=settings.root,
        dockerfile=service.dockerfile,
        context=settings.context,
        build_args=args,
        schema=settings.schema,
    )


def plan_image(
    settings: Settings,
    target: Target,
    options: BuildOptions,
    stamp: Stamp,
    *,
    skip_schema_check: bool = False,
) -> ImageBuild:
    service = settings.service(target.service)
    variant = service.variant(target.variant)
    version = settings.version(service)
    repo = repository(settings, service)  # refused when Docker would not take it
    dockerfile = settings.root / service.dockerfile
    if not dockerfile.is_file():
        found = (
            f"is {kind_of(dockerfile.stat().st_mode)}, not a file,"
            if dockerfile.exists()
            else "not found"
        )
        raise ConfigError(
            f"Dockerfile {service.dockerfile} {found} under {settings.root}",
            hint=f"fix meeshy.services.{service.name}.dockerfile or pass --root",
        )
    context = (settings.root / settings.context).resolve()
    if not context.is_dir():
        raise ConfigError(
            f"build context {settings.context} is not a directory under {settings.root}"
        )
    # Makefile order: variant args (TORCH_BACKEND) first, then BUILD_DATE, VCS_REF, VERSION,
    # then the service's own (PACKAGE_MANAGER).
    args: dict[str, str] = {}
    if variant:
        args.update(variant.build_args)
    args.update({"BUILD_DATE": stamp.build_date, "VCS_REF": stamp.vcs_ref, "VERSION": version})
    args.update(service.build_args)
    key = f"meeshy.services.{service.name}" + (f".variants.{variant.name}" if variant else "")
    patterns = variant.tags if variant else service.tags
    tags = format_tags(patterns, service.name, version, key=f"{key}.tags")
    if not tags:  # an image with no tag is never found again (and "up to date" for nothing)
        raise ConfigError(f"{key}.tags is empty", hint="give the image at least one tag")
    # An image built without the gate gets no schema label: the label is a claim the gate
    # proved, so staging.tag and images.validate then treat the image as unproven.
    sha = None if skip_schema_check else settings.schema_sha256
    labels = [(SCHEMA_LABEL, sha), (SCHEMA_PATH_LABEL, settings.schema)] if sha else []
    reads = gate_input(settings, service, target.variant)
    return ImageBuild(
        service=service.name,
        variant=variant.name if variant else None,
        version=version,
        repository=repo,
        tags=tuple(f"{repo}:{t}" for t in tags),
        dockerfile=str(dockerfile),
        context=str(context),
        build_args=tuple(args.items()),
        labels=tuple(labels),
        load=(service.loads(variant) or options.load) and not options.push,
        push=options.push,
        platforms=options.platforms,
        no_cache=options.no_cache,
        pull=options.pull,
        builder=settings.builder,
        engine=EngineTarget(context=settings.docker_context),
        dockerfile_rel=service.dockerfile,
        context_rel=settings.context,
        gate=None if skip_schema_check else reads,
        reads=reads,
        force=options.force or options.no_cache or options.pull,
    )


def plan_builds(
    settings: Settings,
    targets: Sequence[Target],
    options: BuildOptions,
    *,
    stamp: Stamp | None = None,
    skip_schema_check: bool = False,
) -> BuildPlan:
    """The whole build: one ImageBuild per target, in order, all stamped alike."""
    early = [_early_stamps(settings, t) for t in targets]  # before anything is read
    stamp = stamp or Stamp.now(settings.root)
    images = tuple(
        replace(
            plan_image(settings, t, options, stamp, skip_schema_check=skip_schema_check),
            early_stamps=e,
        )
        for t, e in zip(targets, early, strict=True)
    )
    fallbacks = (settings.version_fallback(settings.service(t.service)) for t in targets)
    return BuildPlan(
        images=images,
        schema=settings.schema,
        schema_sha256=None if skip_schema_check else settings.schema_sha256,
        engine=EngineTarget(context=settings.docker_context),
        skip_schema_check=skip_schema_check,
        warnings=tuple(dict.fromkeys(w for w in fallbacks if w)),
    )


def _early_stamps(settings: Settings, target: Target) -> tuple[tuple[str, FileStamp], ...]:
    """The stamps of what the gate and the schema's hash read, by the paths the input key
    stamps them under; an unknown service stamps nothing (plan_image refuses it)."""
    try:
        service = settings.service(target.service)
    except ConfigError:
        return ()
    dockerfile = settings.root / service.dockerfile
    context = (settings.root / settings.context).resolve()
    paths = (*build_files(dockerfile, context), settings.root / settings.schema)
    return tuple((str(p), file_stamp(p)) for p in paths)


def all_targets(settings: Settings) -> list[Target]:
    """What ``build.all`` builds: ``meeshy.all``, each service's default variant."""
    return [Target(name) for name in settings.all]


def every_variant(settings: Settings, names: Sequence[str], variant: str = "") -> list[Target]:
    """Targets for ``schema.check``: each named service (default all) in the given variant,
    or in every variant it has."""
    out: list[Target] = []
    for name in names or [svc.name for svc in settings.services]:
        svc = settings.service(name)
        if variant:
            svc.variant(variant)  # validates
            out.append(Target(name, variant))
        elif svc.variants:
            out.extend(Target(name, v.name) for v in svc.variants)
        else:
            out.append(Target(name))
    return out


def parse_platforms(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())
