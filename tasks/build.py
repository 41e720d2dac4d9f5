"""build.*: the Makefile's docker build targets, gated by the schema check, on BuildKit."""

from __future__ import annotations

from typing import Any

from invoke import Collection, Context, Task, task

from tasks._common import HELP, settings, task_errors

_FLAG_HELP = {
    k: HELP[k]
    for k in (
        "root",
        "registry",
        "context",
        "dry_run",
        "json",
        "builder",
        "platform",
        "no_cache",
        "push",
        "progress",
        "skip_schema_check",
    )
}


def _build(
    c: Context,
    targets: list[tuple[str, str | None]] | None,
    *,
    root: str,
    registry: str,
    context: str,
    builder: str,
    platform: str,
    no_cache: bool,
    push: bool,
    progress: str,
    dry_run: bool,
    skip_schema_check: bool,
    json: bool,
) -> None:
    from tasks.lib import build_flow
    from tasks.lib.build_plan import BuildOptions, Target, parse_platforms
    from tasks.lib.engine import EngineTarget
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import PROGRESS_MODES, Output

    out = Output(json_mode=json)
    with task_errors(out):
        if progress not in PROGRESS_MODES:
            raise ConfigError(
                f"--progress {progress!r}", hint=f"use one of {', '.join(PROGRESS_MODES)}"
            )
        s = settings(c, root=root, registry=registry, context=context, builder=builder)
        options = BuildOptions(
            platforms=parse_platforms(platform),
            no_cache=no_cache,
            push=push,
            builder=s.builder,
            docker_context=s.docker_context,
        )
        plan = build_flow.plan(
            s,
            [Target(svc, var) for svc, var in targets]
            if targets is not None
            else [Target(name) for name in s.all],
            options,
            skip_schema_check=skip_schema_check,
        )
        build_flow.execute(
            plan,
            out,
            engine=EngineTarget(context=s.docker_context),
            progress=progress,
            dry_run=dry_run,
            settings=s,
        )


def _image_task(service: str | None, doc: str) -> Task[Any]:
    """A build task for one service (or, with None, for ``meeshy.all``): one signature for
    gateway, web and all, so their flags cannot drift apart."""

    def body(
        c: Context,
        root: str = "",
        registry: str = "",
        context: str = "",
        builder: str = "",
        platform: str = "",
        no_cache: bool = False,
        push: bool = False,
        progress: str = "auto",
        dry_run: bool = False,
        skip_schema_check: bool = False,
        json: bool = False,
    ) -> None:
        _build(c, [(service, None)] if service else None, **locals_flags(locals()))

    body.__doc__ = doc
    body.__name__ = body.__qualname__ = service or "all_"
    made: Task[Any] = task(name=service or "all", help=_FLAG_HELP)(body)
    return made


gateway = _image_task("gateway", "Build the gateway image (make build-docker-gateway).")
web = _image_task("web", "Build the web image (make build-docker-web).")
all_ = _image_task(None, "Build gateway, translator (CPU) and web at once (make docker-build).")


@task(
    help={
        **_FLAG_HELP,
        "gpu": "build the gpu variant (CUDA 12.4), as make build-translator-gpu",
        "variant": "cpu (default), gpu, gpu-cu121 or gpu-cu118",
    }
)
def translator(
    c: Context,
    gpu: bool = False,
    variant: str = "",
    root: str = "",
    registry: str = "",
    context: str = "",
    builder: str = "",
    platform: str = "",
    no_cache: bool = False,
    push: bool = False,
    progress: str = "auto",
    dry_run: bool = False,
    skip_schema_check: bool = False,
    json: bool = False,
) -> None:
    """Build the translator image: --gpu or --variant V (make build-translator[-gpu])."""
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import Output

    if gpu and variant and variant != "gpu":
        with task_errors(Output()):
            raise ConfigError(f"--gpu conflicts with --variant {variant}", hint="pass one of them")
    chosen = "gpu" if gpu else (variant or None)
    flags = locals_flags(locals())
    _build(c, [("translator", chosen)], **flags)


_FLAGS = (
    "root",
    "registry",
    "context",
    "builder",
    "platform",
    "no_cache",
    "push",
    "progress",
    "dry_run",
    "skip_schema_check",
    "json",
)


def locals_flags(values: dict[str, Any]) -> dict[str, Any]:
    """The shared flags out of a task's locals(), so each task stays a one-liner."""
    return {k: values[k] for k in _FLAGS}


ns = Collection("build", gateway, translator, web, all_)
