"""build.*: the Makefile's docker build targets, gated by the schema check, on BuildKit;
images whose inputs have not changed since their last build are not rebuilt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context

from tasks.invoke_adapter import DryRunFlags, ImageFlags, cli_task, flag, running, settings

if TYPE_CHECKING:
    from tasks.lib.build.plan import BuildPlan, Target
    from tasks.lib.config import Settings
    from tasks.lib.output import Output


class BuildFlags(ImageFlags, DryRunFlags):
    """The flags of every build task, declared once."""

    builder: str = flag(
        default="",
        help="buildx builder to use (any driver: docker, docker-container, remote, kubernetes)",
    )
    platform: str = flag(
        default="", help="target platform(s), comma-separated, e.g. linux/amd64,linux/arm64"
    )
    no_cache: bool = flag(default=False, help="build without BuildKit's cache (implies --force)")
    pull: bool = flag(default=False, help="always pull base images (implies --force)")
    force: bool = flag(default=False, help="build even the images whose inputs have not changed")
    push: bool = flag(default=False, help="push the tags as they are built (buildx --push)")
    progress: str = flag(
        default="auto",
        help="auto (live view on a terminal, a line per step otherwise), plain (every BuildKit "
        "line), quiet (summary only)",
    )
    skip_schema_check: bool = flag(
        default=False, help="DANGER: build without proving the image uses the shared schema"
    )


class TranslatorFlags(BuildFlags):
    gpu: bool = flag(
        default=False, help="build the gpu variant (CUDA 12.4), as make build-translator-gpu"
    )
    variant: str = flag(default="", help="cpu (default), gpu, gpu-cu121 or gpu-cu118")


def build_plan(
    s: Settings, targets: list[Target], flags: BuildFlags, *, load: bool = False
) -> BuildPlan:
    from tasks.lib.build import flow
    from tasks.lib.build.plan import BuildOptions

    options = BuildOptions(
        platforms=tuple(p.strip() for p in flags.platform.split(",") if p.strip()),
        no_cache=flags.no_cache,
        pull=flags.pull,
        push=flags.push,
        force=flags.force,
        load=load,
    )
    return flow.plan(s, targets, options, skip_schema_check=flags.skip_schema_check)


def run_plan(out: Output, plan: BuildPlan, *, dry_run: bool) -> dict[str, str]:
    """Gate, keys, then the dry run or the builds; renders as it goes. Returns each tag ->
    the image ID it names as this run built it or found it up to date (empty for a dry run):
    ``release`` pushes those images and no other."""
    from tasks.lib.build import flow, view
    from tasks.lib.engine import connect
    from tasks.lib.errors import EngineUnavailable

    plan.engine.describe()  # an unknown --context is a clear error, dry run or not
    for warning in plan.warnings:
        out.warn(warning)
    if plan.skip_schema_check:
        out.warn(
            "--skip-schema-check: these images are NOT proven to be built from "
            f"{plan.schema}; do not release them"
        )
    else:
        reports = flow.gate(plan)
        refused = flow.refusal(reports)
        (view.gate_table if refused else view.gate_brief)(out, reports)
        if refused:
            raise refused
        plan = flow.with_gate_reads(plan, reports)
    if dry_run:
        try:
            with connect(plan.engine, timeout=10) as client:
                fresh = flow.freshness(plan, client)
        except EngineUnavailable as exc:
            out.warn(f"{exc.message}: up-to-date images not checked")
            fresh = flow.freshness(plan, None)
        view.dry_run(out, flow.labelled(plan, fresh), fresh)
        return {}
    with connect(plan.engine, timeout=10) as client:  # preflight: fails before any build
        fresh = flow.freshness(plan, client)
        plan = flow.labelled(plan, fresh)
        todo = [i.name for i in plan.images if i.name not in fresh.skipped()]
        if todo:
            out.step(f"building {len(todo)} image(s) on BuildKit: {', '.join(todo)}")
        with out.progress("Building", [i.name for i in plan.images]) as progress:
            run = flow.execute(plan, fresh, progress, client)
    view.summary(out, run)
    view.failures(out, run)
    failed = flow.failure(run)
    if failed:
        raise failed
    return {t: r.image_id for r in run.results if r.image_id for t in r.image.tags}


def _build(c: Context, flags: BuildFlags, targets: list[Target] | None) -> None:
    from tasks.lib.build.plan import all_targets
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import PROGRESS_MODES, Output

    with running(Output(json_mode=flags.json, progress=flags.progress)) as out:
        if flags.progress not in PROGRESS_MODES:
            raise ConfigError(
                f"--progress {flags.progress!r}", hint=f"use one of {', '.join(PROGRESS_MODES)}"
            )
        s = settings(c, flags)
        plan = build_plan(s, targets if targets is not None else all_targets(s), flags)
        run_plan(out, plan, dry_run=flags.dry_run)


@cli_task(BuildFlags, name="gateway")
def gateway(c: Context, flags: BuildFlags) -> None:
    """Build the gateway image (make build-docker-gateway)."""
    from tasks.lib.build.plan import Target

    _build(c, flags, [Target("gateway")])


@cli_task(BuildFlags, name="web")
def web(c: Context, flags: BuildFlags) -> None:
    """Build the web image (make build-docker-web)."""
    from tasks.lib.build.plan import Target

    _build(c, flags, [Target("web")])


@cli_task(BuildFlags, name="all")
def all_(c: Context, flags: BuildFlags) -> None:
    """Build gateway, translator (CPU) and web at once (make docker-build)."""
    _build(c, flags, None)


@cli_task(TranslatorFlags, name="translator")
def translator(c: Context, flags: TranslatorFlags) -> None:
    """Build the translator image: --gpu or --variant V (make build-translator[-gpu])."""
    from tasks.lib.build.plan import Target
    from tasks.lib.errors import ConfigError
    from tasks.lib.output import Output

    if flags.gpu and flags.variant and flags.variant != "gpu":
        with running(Output()):
            raise ConfigError(f"--gpu conflicts with --variant {flags.variant}", hint="pass one")
    chosen = "gpu" if flags.gpu else (flags.variant or None)
    _build(c, flags, [Target("translator", chosen)])


ns = Collection("build", gateway, translator, web, all_)
