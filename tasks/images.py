"""images.*: list, validate and push the meeshy images (make docker-images, validate-images,
push-all).

Thin tasks over :mod:`tasks.lib.images` (and :mod:`tasks.lib.build.flow` for ``release``).
Every task checks the engine first (except dry runs that need none), prints one clear line and
exits non-zero on bad input. ``inv build.all staging.tag`` runs both in order: nothing here
exits on success or reads the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context, task

from tasks._common import HELP, settings, task_errors

if TYPE_CHECKING:
    import docker

    from tasks.lib.config import Settings
    from tasks.lib.output import Output

_BASE = {k: HELP[k] for k in ("root", "registry", "context")}
_REGISTRY_URL = (
    "push to this registry (host:port) instead of the images' own: the images are tagged "
    "<host:port>/<repository>:<tag> for the push (default: the repository's registry)"
)


def _client(s: Settings, *, timeout: int = 60) -> docker.DockerClient:
    """Ping the engine (fail fast), then a docker SDK client for it."""
    from tasks.lib.engine import EngineTarget, sdk_client

    return sdk_client(EngineTarget(context=s.docker_context), timeout=timeout)


def _show_meeshy(out: Output, client: docker.DockerClient, s: Settings, *, title: str) -> None:
    from tasks.lib import images

    rows = images.image_rows(images.list_meeshy_images(client), s.schema_sha256, per_tag=True)
    images.render_rows(out, title, rows, versions=False)


def _push(
    out: Output,
    s: Settings,
    tags: dict[str, list[str]],
    services: list[str],
    *,
    registry_url: str,
    dry_run: bool,
    layers: bool,
    check_sources: bool = True,
) -> None:
    from tasks.lib import images

    svcs = images.select_services(s, services)
    targets = images.plan_pushes(s, svcs, tags, registry_url=registry_url)
    if dry_run:
        out.step("dry run: these tags would be pushed, one after another")
        for t in targets:
            via = f" (tagged from {t.source})" if t.remote != t.source else ""
            out.info(f"push {t.remote} -> {t.registry}{via}")
        if check_sources:  # not for release: its build step would create them
            _warn_missing_sources(out, s, [t.source for t in targets])
        if out.json_mode:
            out.json(
                {
                    "dry_run": True,
                    "pushes": [
                        {"ref": t.remote, "source": t.source, "registry": t.registry}
                        for t in targets
                    ],
                }
            )
        return
    client = _client(s, timeout=600)
    try:
        results = images.run_pushes(client, targets, out, layers=layers)
    finally:
        client.close()
    if out.json_mode:
        out.json(
            {
                "dry_run": False,
                "pushes": [
                    {
                        "ref": t.remote,
                        "source": t.source,
                        "registry": t.registry,
                        "digest": r.digest,
                    }
                    for t, r in zip(targets, results, strict=True)
                ],
            }
        )


def _warn_missing_sources(out: Output, s: Settings, refs: list[str]) -> None:
    """A dry run needs no engine; when one answers, say which sources a real run would miss."""
    from tasks.lib import images
    from tasks.lib.errors import EngineUnavailable

    try:
        client = _client(s)
    except EngineUnavailable:
        out.warn("no engine answers: the sources were not checked")
        return
    try:
        found = images.lookup(client, list(dict.fromkeys(refs)))
    finally:
        client.close()
    for ref, img in found.items():
        if img is None:
            out.warn(f"{ref} does not exist here: the real push would refuse (nothing pushed)")


# --------------------------------------------------------------------------- images


@task(name="list", help={**_BASE, "json": HELP["json"]})
def images_list(
    c: Context, json: bool = False, root: str = "", registry: str = "", context: str = ""
) -> None:
    """List local meeshy images with version and schema labels (make docker-images)."""
    from tasks.lib import images
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context)
        client = _client(s)
        try:
            rows = images.image_rows(images.list_meeshy_images(client), s.schema_sha256)
        finally:
            client.close()
        if json:
            out.json([r.as_json() for r in rows])
        else:
            images.render_rows(out, "meeshy images", rows, versions=True)


@task(
    help={
        **_BASE,
        "service": "validate only this service (repeatable; default: every service)",
        "tag": "validate this tag instead of each service's v<version>",
        "json": HELP["json"],
    },
    iterable=["service"],
)
def validate(
    c: Context,
    service: list[str] | None = None,
    tag: str = "",
    json: bool = False,
    root: str = "",
    registry: str = "",
    context: str = "",
) -> None:
    """Check each image's labels and the schema file inside it (make validate-images)."""
    from tasks.lib import images
    from tasks.lib.config import vcs_ref
    from tasks.lib.errors import TaskError
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context)
        if tag:
            images.check_tag(tag, "--tag")
        svcs = images.select_services(s, service or [])
        images.require_schema_sha256(s)
        client = _client(s)
        try:
            reports = images.validate_images(
                client, s, svcs, tag=tag, expected_revision=vcs_ref(s.root)
            )
        finally:
            client.close()
        if json:
            out.json([r.as_json() for r in reports])
        else:
            images.render_reports(out, reports)
        bad = [r for r in reports if not r.ok]
        for r in bad:
            f = r.failures()[0]
            out.error(f"{r.ref}: {f.name}: {f.detail or 'failed'}")
        if bad:
            raise TaskError(
                f"{len(bad)} of {len(reports)} image(s) failed validation: "
                + ", ".join(r.ref for r in bad),
                hint="rebuild them with `inv build.all`",
            )


@task(
    name="push",
    help={
        **_BASE,
        "service": "push only this service (repeatable; default: every service in meeshy.all)",
        "registry_url": _REGISTRY_URL,
        "dry_run": "print what would be pushed; change nothing (needs no engine)",
        "json": HELP["json"],
    },
    iterable=["service"],
)
def images_push(
    c: Context,
    service: list[str] | None = None,
    registry_url: str = "",
    dry_run: bool = False,
    root: str = "",
    registry: str = "",
    context: str = "",
    json: bool = False,
) -> None:
    """Push each service's tag set: v<version>, latest (+ cpu for translator) (make push-all)."""
    from tasks.lib import images
    from tasks.lib.output import Output

    out = Output(json_mode=json)
    with task_errors(out):
        s = settings(c, root=root, registry=registry, context=context)
        svcs = images.select_services(s, service or [])
        tags = {svc.name: images.push_tags(s, svc) for svc in svcs}
        _push(
            out,
            s,
            tags,
            [svc.name for svc in svcs],
            registry_url=registry_url,
            dry_run=dry_run,
            layers=True,
        )


ns = Collection("images", images_list, validate, images_push)
