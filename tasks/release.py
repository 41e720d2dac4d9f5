"""release: build every image (schema-gated), then push them all (make release)."""

from __future__ import annotations

from invoke import Collection, Context

from tasks.build import BuildFlags
from tasks.images import run_push
from tasks.invoke_adapter import RegistryUrlFlags, cli_task, running, settings


class ReleaseFlags(BuildFlags, RegistryUrlFlags):
    # it never skips the gate, pushes after building, and has no --json (it would interleave
    # build and push documents): those build flags are not on its command line
    not_on_cli = frozenset({"skip_schema_check", "push", "json"})


@cli_task(ReleaseFlags, name="release")
def release(c: Context, flags: ReleaseFlags) -> None:
    """Build every image (schema-gated), then push them all; no push if anything failed."""
    from dataclasses import replace

    from tasks.build import build_plan, run_plan
    from tasks.lib.build.plan import all_targets
    from tasks.lib.images import push as push_core
    from tasks.lib.images import refs
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json, progress=flags.progress)) as out:
        s = settings(c, flags)
        svcs = refs.select_services(s, [])
        tags = {svc.name: push_core.push_tags(s, svc) for svc in svcs}
        # every name and the --registry-url checked before anything is built
        targets = push_core.plan_pushes(s, svcs, tags, registry_url=flags.registry_url)
        # load=True: with a non-docker builder, gateway/web would otherwise stay in the
        # builder's cache and the push would send whatever older image the store has.
        plan = build_plan(s, all_targets(s), flags, load=True)
        built = run_plan(out, plan, dry_run=flags.dry_run)
        # each push is of the image this run built: another run's retag is refused, not sent
        targets = [replace(t, image_id=built.get(t.source, "")) for t in targets]
        run_push(out, s, targets, dry_run=flags.dry_run, layers=True, check_sources=False)


ns = Collection(release)
