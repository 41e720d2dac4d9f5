"""release: build every image (schema-gated), then push them all (make release)."""

from __future__ import annotations

from invoke import Collection, Context, task

from tasks._common import HELP, settings, task_errors
from tasks.images import REGISTRY_URL_HELP, run_push

_BASE = {k: HELP[k] for k in ("root", "registry", "context")}


@task(
    help={
        **_BASE,
        "registry_url": REGISTRY_URL_HELP,
        "builder": HELP["builder"],
        "no_cache": HELP["no_cache"],
        "dry_run": "print the build commands and the pushes; build and push nothing",
    },
)
def release(
    c: Context,
    registry_url: str = "",
    builder: str = "",
    no_cache: bool = False,
    dry_run: bool = False,
    root: str = "",
    registry: str = "",
    context: str = "",
) -> None:
    """Build every image (schema-gated), then push them all; no push if anything failed."""
    from tasks.lib import build_flow
    from tasks.lib.build_plan import BuildOptions, Target
    from tasks.lib.engine import EngineTarget
    from tasks.lib.images import push as push_core
    from tasks.lib.images import refs
    from tasks.lib.output import Output

    out = Output()
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context, builder=builder)
        svcs = refs.select_services(s, [])
        tags = {svc.name: push_core.push_tags(s, svc) for svc in svcs}
        # every name and the --registry-url checked before anything is built
        targets = push_core.plan_pushes(s, svcs, tags, registry_url=registry_url)
        # load=True: with a non-docker builder, gateway/web would otherwise stay in the
        # builder's cache and the push would send whatever older image the store has.
        options = BuildOptions(
            no_cache=no_cache, builder=s.builder, docker_context=s.docker_context, load=True
        )
        plan = build_flow.plan(s, [Target(n) for n in s.all], options)
        build_flow.execute(
            plan, out, engine=EngineTarget(context=s.docker_context), dry_run=dry_run, settings=s
        )
        run_push(out, s, targets, dry_run=dry_run, layers=True, check_sources=False)


ns = Collection(release)
