"""Build plans: pure data, no Docker. One :class:`ImageBuild` per image, with the exact argv
that the engine runs (through python-on-whales) and that ``--dry-run`` prints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from tasks.lib.errors import ConfigError

BUILDKIT_PROGRESS = "plain"  # the engine parses plain progress to drive the live view


@dataclass(frozen=True)
class BuildOptions:
    """Flags shared by every build task."""

    platforms: tuple[str, ...] = ()
    no_cache: bool = False
    push: bool = False
    builder: str = ""
    docker_context: str = ""
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
    builder: str = ""
    docker_context: str = ""
    dockerfile_rel: str = ""
    context_rel: str = "."

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
        for t in self.tags:
            cmd += ["--tag", t]
        cmd.append(self.context)
        return cmd

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
            "tags": list(self.tags),
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
    skip_schema_check: bool = False
    notes: tuple[str, ...] = field(default=())


def _format_tags(service: Service, tags: Sequence[str], version: str, repo: str) -> tuple[str, ...]:
    out: list[str] = []
    for t in tags:
        try:
            tag = t.format(version=version, service=service.name)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"tag pattern {t!r} of {service.name} is invalid ({exc})",
                hint="use {version} and {service} only",
            ) from exc
        out.append(f"{repo}:{tag}")
    return tuple(dict.fromkeys(out))


def plan_image(
    settings: Settings,
    target: Target,
    options: BuildOptions,
    stamp: Stamp,
    *,
    schema_sha256: str | None,
) -> ImageBuild:
    service = settings.service(target.service)
    variant = service.variant(target.variant)
    version = settings.version(service)
    repo = settings.repository(service)
    dockerfile = settings.root / service.dockerfile
    if not dockerfile.is_file():
        raise ConfigError(
            f"Dockerfile {service.dockerfile} not found under {settings.root}",
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
    tag_patterns = variant.tags if variant else service.tags
    labels: list[tuple[str, str]] = []
    if schema_sha256:
        labels = [(SCHEMA_LABEL, schema_sha256), (SCHEMA_PATH_LABEL, settings.schema)]
    return ImageBuild(
        service=service.name,
        variant=variant.name if variant else None,
        version=version,
        repository=repo,
        tags=_format_tags(service, tag_patterns, version, repo),
        dockerfile=str(dockerfile),
        context=str(context),
        build_args=tuple(args.items()),
        labels=tuple(labels),
        load=(service.loads(variant) or options.load) and not options.push,
        push=options.push,
        platforms=options.platforms,
        no_cache=options.no_cache,
        builder=options.builder or settings.builder,
        docker_context=options.docker_context or settings.docker_context,
        dockerfile_rel=service.dockerfile,
        context_rel=settings.context,
    )


def plan_builds(
    settings: Settings,
    targets: Sequence[Target],
    options: BuildOptions,
    *,
    stamp: Stamp | None = None,
    schema_sha256: str | None = None,
    skip_schema_check: bool = False,
) -> BuildPlan:
    """The whole build: one ImageBuild per target, in order, all stamped alike."""
    stamp = stamp or Stamp.now(settings.root)
    images = tuple(
        plan_image(settings, t, options, stamp, schema_sha256=schema_sha256) for t in targets
    )
    return BuildPlan(
        images=images,
        schema=settings.schema,
        schema_sha256=schema_sha256,
        skip_schema_check=skip_schema_check,
    )


def parse_platforms(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def args_dict(pairs: Sequence[tuple[str, str]] | Mapping[str, str]) -> dict[str, str]:
    return dict(pairs.items() if isinstance(pairs, Mapping) else pairs)
