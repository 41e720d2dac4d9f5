"""images.*: list, validate and push the meeshy images (make docker-images, validate-images,
push-all).

Thin tasks over :mod:`tasks.lib.images`: parse flags, resolve settings, call the core, render
its results. :func:`run_push` is the push step ``staging.push`` and ``release`` share.
Nothing here exits on success or reads the command line, so ``inv build.all images.push``
runs both in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from invoke import Collection, Context

from tasks.invoke_adapter import (
    DryRunFlags,
    ImageFlags,
    RegistryUrlFlags,
    ServiceFlags,
    cli_task,
    flag,
    running,
    settings,
)

if TYPE_CHECKING:
    from tasks.lib.config import Settings
    from tasks.lib.images.push import PushTarget
    from tasks.lib.output import Output


class ValidateFlags(ServiceFlags, ImageFlags):
    service: list[str] = flag(
        default=[],
        help="validate only this service (repeatable; default: every service in meeshy.all)",
    )
    tag: str = flag(default="", help="validate this tag instead of each service's v<version>")


class PushFlags(ServiceFlags, ImageFlags, DryRunFlags, RegistryUrlFlags):
    service: list[str] = flag(
        default=[], help="push only this service (repeatable; default: every service in meeshy.all)"
    )


@cli_task(ImageFlags, name="list")
def list_(c: Context, flags: ImageFlags) -> None:
    """List the registry's meeshy images with version and schema labels (make docker-images)."""
    from tasks.lib.engine import EngineTarget, connect
    from tasks.lib.images import listing, refs, store, view
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        patterns = refs.listing_patterns(s)
        with connect(EngineTarget(context=s.docker_context)) as client:
            images = store.list_images(client, patterns)
        rows = listing.image_rows(images, patterns, s.schema_sha256)
        if out.json_mode:
            out.json([r.to_json() for r in rows])
        else:
            view.listing(out, f"meeshy images of {s.registry}", rows, versions=True)


@cli_task(ValidateFlags)
def validate(c: Context, flags: ValidateFlags) -> None:
    """Check each image's labels and the schema file inside it (make validate-images)."""
    from tasks.lib.config import check_tag, vcs_ref
    from tasks.lib.engine import EngineTarget, connect
    from tasks.lib.images import freshness, refs, view
    from tasks.lib.images import validate as checks
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        if flags.tag:
            check_tag(flags.tag, "--tag")
        services = refs.select_services(s, flags.service)
        checks.image_refs(s, services, flags.tag)  # names refused before the engine is asked
        checks.require_schema_sha256(s)
        with connect(EngineTarget(context=s.docker_context)) as client:
            # the input key is the default variant's; --tag may name another variant
            names = [] if flags.tag else [svc.name for svc in services]
            rules = freshness.default_rules(s, client, names)
            result = checks.validate_images(
                client, s, services, tag=flags.tag, expected_revision=vcs_ref(s.root), rules=rules
            )
        if out.json_mode:
            out.json(result.to_json())
        else:
            view.validation(out, result)
        view.validation_failures(out, result)
        error = result.error()
        if error is not None:
            raise error


@cli_task(PushFlags)
def push(c: Context, flags: PushFlags) -> None:
    """Push each service's tag set: v<version>, latest (+ cpu for translator) (make push-all)."""
    from tasks.lib.images import push as core
    from tasks.lib.images import refs
    from tasks.lib.output import Output

    with running(Output(json_mode=flags.json)) as out:
        s = settings(c, flags)
        services = refs.select_services(s, flags.service)
        tags = {svc.name: core.push_tags(s, svc) for svc in services}
        targets = core.plan_pushes(s, services, tags, registry_url=flags.registry_url)
        run_push(out, s, targets, dry_run=flags.dry_run, layers=True)


def run_push(
    out: Output,
    s: Settings,
    targets: Sequence[PushTarget],
    *,
    dry_run: bool,
    layers: bool,
    check_sources: bool = True,
) -> None:
    """The push step of ``images.push``, ``staging.push`` and ``release``: a dry run shows
    which engine would push what (and, when that engine answers, which sources it lacks;
    ``check_sources=False`` for release, whose build makes them); a real run pushes with
    live progress, shows the outcome and raises the first failure."""
    import os

    from tasks.lib.engine import EngineTarget, connect
    from tasks.lib.errors import EngineUnavailable
    from tasks.lib.images import push as core
    from tasks.lib.images import store, view
    from tasks.lib.images.journal import Journal

    engine = EngineTarget(context=s.docker_context)
    where = engine.describe()
    journal = Journal.for_engine(engine.identity, os.environ)
    if dry_run:
        leftovers = journal.read()
        missing: list[str] | None = []
        if check_sources:
            try:
                with connect(engine) as client:
                    found = store.find_images(client, [t.source for t in targets])
                missing = [ref for ref, img in found.items() if img is None]
            except EngineUnavailable:
                missing = None
        view.push_dry_run(out, targets, engine=where, leftovers=leftovers, missing=missing)
        if out.json_mode:
            out.json(
                {
                    "dry_run": True,
                    "engine": where,
                    "pushes": [t.to_json() for t in targets],
                    "missing": missing,
                    "leftovers": [e.ref for e in leftovers],
                }
            )
        return
    with connect(engine, timeout=600) as client:
        result = core.push_images(
            client,
            targets,
            engine=where,
            journal=journal,
            progress=lambda keys: out.progress("push", keys),
            on_wait=lambda: out.warn(
                f"another push through {where} holds its temporary tags: waiting for it"
            ),
            layers=layers,
        )
    view.push_result(out, result)
    if out.json_mode:
        out.json(result.to_json())
    error = result.error()
    if error is not None:
        raise error


ns = Collection("images", list_, validate, push)
