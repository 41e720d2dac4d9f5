"""release: build every image (schema-gated), then push them all (make release)."""

from __future__ import annotations

from invoke import Collection, Context, task

from tasks._common import HELP, settings, task_errors
from tasks.images import _BASE, _REGISTRY_URL, _push


@task(
    help={
        **_BASE,
        "registry_url": _REGISTRY_URL,
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
    from tasks.build import BuildFlags, build_plan, run_plan
    from tasks.lib import images
    from tasks.lib.build.plan import all_targets
    from tasks.lib.output import Output

    out = Output()
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context, builder=builder)
        images.check_registry_url(registry_url)
        svcs = images.select_services(s, [])
        tags = {svc.name: images.push_tags(s, svc) for svc in svcs}
        # load=True: with a non-docker builder, gateway/web would otherwise stay in the
        # builder's cache and the push would send whatever older image the store has.
        plan = build_plan(s, all_targets(s), BuildFlags(no_cache=no_cache), load=True)
        run_plan(out, plan, dry_run=dry_run)
        _push(
            out,
            s,
            tags,
            list(s.all),
            registry_url=registry_url,
            dry_run=dry_run,
            layers=True,
            check_sources=False,
        )


ns = Collection(release)
