"""The build pipeline, one way: plan (config resolved once) -> schema gate -> input keys and
what is up to date -> concurrent builds -> results. Used by every ``build.*`` task and by
``release``; never imports Invoke and never prints: the task renders through
:mod:`tasks.lib.build.view`."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tasks.lib.build.inputs import (
    Freshness,
    InputKey,
    Sources,
    as_named,
    compute,
    judge,
    label,
    moved,
)
from tasks.lib.build.plan import (
    BUILD_RUN_LABEL,
    INPUTS_LABEL,
    BuildOptions,
    BuildPlan,
    ImageBuild,
    Target,
    plan_builds,
)
from tasks.lib.build.runner import BuildResult, LogStream
from tasks.lib.config import Settings
from tasks.lib.errors import (
    CommandFailed,
    DockerfileError,
    EngineUnavailable,
    Interrupted,
    SchemaGateError,
    TaskError,
)
from tasks.lib.gate import GateInput, GateReport, build_inputs, check
from tasks.lib.gate.stages import platform_args
from tasks.lib.images.store import LocalImage, find_images
from tasks.lib.processes import stop_children
from tasks.lib.progress import Progress, Status

if TYPE_CHECKING:
    import docker


def plan(
    settings: Settings,
    targets: Sequence[Target],
    options: BuildOptions,
    *,
    skip_schema_check: bool = False,
) -> BuildPlan:
    return plan_builds(settings, targets, options, skip_schema_check=skip_schema_check)


def run_gate(inputs: Sequence[GateInput]) -> list[GateReport]:
    return [check(i) for i in inputs]


def gate(plan_: BuildPlan) -> list[GateReport]:
    """The schema gate over every image of the plan (none with --skip-schema-check)."""
    return run_gate([i.gate for i in plan_.images if i.gate is not None])


def with_gate_reads(plan_: BuildPlan, reports: Sequence[GateReport]) -> BuildPlan:
    """The plan whose images also keep the stamps of the files their gate read (taken just
    before each read): a file the gate judged and then saved before the key read it is seen
    by the check after the build, like the Dockerfile (:attr:`ImageBuild.early_stamps`)."""
    by_image = {(r.service, r.variant): r for r in reports}
    images = []
    for img in plan_.images:
        report = by_image.get((img.service, img.variant)) if img.gate is not None else None
        known = {p for p, _ in img.early_stamps}
        more = tuple((p, st) for p, st in report.read if p not in known) if report else ()
        images.append(replace(img, early_stamps=img.early_stamps + more) if more else img)
    return replace(plan_, images=tuple(images))


def refusal(reports: Sequence[GateReport]) -> SchemaGateError | None:
    """The error naming the first refused image, or None when every image passed."""
    failed = [r for r in reports if r.verdict == "fail"]
    if not failed:
        return None
    first = failed[0]
    name = first.service + (f":{first.variant}" if first.variant else "")
    problem = first.problems[0] if first.problems else "schema gate failed"
    return SchemaGateError(
        f"schema gate refused {name}: {problem}",
        hint="nothing was built; fix it, or (never for a release) pass --skip-schema-check",
    )


# -- up to date ---------------------------------------------------------------------------------


def sources_of(
    image: ImageBuild,
    engine_platform: str = "",
    base_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Sources:
    """What the image takes from the context and which external images, from the gate's
    reading of the Dockerfile (read so with --skip-schema-check too), for each
    platform it is built for (``--platform``, else the engine's: ``engine_platform``, as
    ``os/arch``), with the platform ARGs BuildKit gives that build (``COPY bin/$TARGETARCH``
    copies another folder on an arm64 engine or with ``--platform linux/arm64``), and with
    ``base_env`` (image reference -> its ENV) in the stages FROM those images."""
    gate = image.gate or image.reads
    if gate is None:
        return Sources()
    try:
        reads = [
            build_inputs(
                replace(
                    gate,
                    build_args={**platform_args(p, engine_platform), **gate.build_args},
                    base_env=base_env or {},
                )
            )
            for p in image.platforms or (engine_platform or DEFAULT_PLATFORM,)
        ]
    except DockerfileError as exc:
        if image.gate is not None:  # the gate read it first and refused it: not reached
            raise
        # --skip-schema-check on a file our reader refuses: BuildKit may take it; built
        return Sources(unread=exc.message)
    return Sources(
        paths=tuple(dict.fromkeys(s for bi in reads for s in bi.sources)),
        images=tuple(dict.fromkeys(i for bi in reads for i in bi.images)),
        root=reads[0].root if len(reads) == 1 else "",
    )


DEFAULT_PLATFORM = "linux/amd64"  # what the gate assumes when no engine says otherwise
# a platform no engine has, differing from the default in every part: reading a Dockerfile
# with its ARGs tells whether the platform built for changes what the image takes
_PROBE = "probe-os/probe-arch/probe-variant"


def engine_platform(client: docker.DockerClient | None) -> str:
    """The engine's own platform (``os/arch``): what BuildKit builds for without
    ``--platform``; empty when no engine answers."""
    if client is None:
        return ""
    with contextlib.suppress(Exception):
        version = client.version()
        return f"{version.get('Os') or 'linux'}/{version.get('Arch') or 'amd64'}"
    return ""


@dataclass(frozen=True)
class Freshnesses:
    keys: dict[str, InputKey] = field(default_factory=dict)
    verdicts: dict[str, Freshness] = field(default_factory=dict)
    # what the keys were made from, to make them again after the builds
    sources: dict[str, Sources] = field(default_factory=dict)
    local_ids: dict[str, str | None] = field(default_factory=dict)
    schema_sha256: str | None = None
    # each base image's layers, read with its ID: a built image must start with them
    base_layers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def skipped(self) -> set[str]:
        return {n for n, f in self.verdicts.items() if f.up_to_date}

    def inputs_moved(
        self, image: ImageBuild, on_engine: Mapping[str, LocalImage | None] | None = None
    ) -> str | None:
        """What changed since ``image``'s key was made (a path, or a base image), or None:
        the key is made again and compared, content and stamps; ``on_engine`` (the base
        images as the engine has them now) checks the bases too."""
        before = self.keys.get(image.name)
        if before is None:
            return None
        sources = self.sources[image.name]
        if on_engine is not None:
            for ref in sources.images:
                now_id = base.id if (base := on_engine.get(ref)) else None
                if now_id != self.local_ids.get(ref):
                    return f"base image {ref}"  # retagged: BuildKit may have used either
        try:
            now = compute(
                image, sources, local_ids=self.local_ids, schema_sha256=self.schema_sha256
            )
        except (OSError, TaskError) as exc:  # an input gone or unreadable since
            return as_named(getattr(exc, "filename", None) or "an input", image.context)
        path = moved(before, now)
        return None if path is None else as_named(path, image.context)


def freshness(plan_: BuildPlan, client: docker.DockerClient | None) -> Freshnesses:
    """Input keys of every image and, when an engine answers, which are up to date.

    With ``--push`` the local store says nothing about the registry: nothing is skipped."""
    platform = ""
    sources = {i.name: sources_of(i) for i in plan_.images}
    # the engine's platform (its /version: ~5 ms) is asked only when it changes what an image
    # takes: when another platform's ARGs read other sources or base images
    if client is not None and any(sources_of(i, _PROBE) != sources[i.name] for i in plan_.images):
        platform = engine_platform(client)
        sources = {i.name: sources_of(i, platform) for i in plan_.images}
    refs = sorted({r for s in sources.values() for r in s.images})
    tags = sorted({t for i in plan_.images for t in i.tags})
    # one list call answers both: base image IDs and the input keys the tags carry
    on_engine = find_images(client, [*refs, *tags]) if client is not None else {}
    ids = {r: (base.id if (base := on_engine.get(r)) else None) for r in refs}
    # each base image's config (None: not readable): its ENV is expanded in the stages FROM
    # it (`COPY ${DIR}/` copies the folder the base names), and its ONBUILD triggers run in
    # this build and may read any of the context
    inspected = {r: _inspect(client, i) for r, i in ids.items() if i and client is not None}
    configs = {
        r: (dict(found.get("Config") or {}) if found else None) for r, found in inspected.items()
    }
    envs = {r: _env(c) for r, c in configs.items() if c and c.get("Env")}
    if envs:  # the files read with them; the base images stay those the ids were found for
        sources = {
            i.name: replace(sources[i.name], paths=sources_of(i, platform, envs).paths)
            for i in plan_.images
        }
    triggered = {r for r, c in configs.items() if c is None or c.get("OnBuild")}
    sources = {
        n: replace(s, paths=(*s.paths, "")) if triggered & set(s.images) else s
        for n, s in sources.items()
    }
    keys: dict[str, InputKey] = {}
    verdicts: dict[str, Freshness] = {}
    for img in plan_.images:
        key = compute(
            img,
            sources[img.name],
            local_ids=ids,
            schema_sha256=plan_.schema_sha256,
            early=img.early_stamps,
        )
        keys[img.name] = key
        if client is None:
            verdicts[img.name] = Freshness(img.name, False, "no engine answered: not checked")
        elif img.push:
            verdicts[img.name] = Freshness(img.name, False, "--push: built and pushed")
        elif unread := sources[img.name].unread:
            verdicts[img.name] = Freshness(
                img.name, False, f"its inputs cannot be read from the Dockerfile ({unread})"
            )
        else:
            labels: Mapping[str, Mapping[str, str] | None] = {
                t: (found.labels if (found := on_engine.get(t)) else None) for t in img.tags
            }
            verdicts[img.name] = judge(img, key, labels)
    return Freshnesses(
        keys=keys,
        verdicts=verdicts,
        sources=sources,
        local_ids=ids,
        schema_sha256=plan_.schema_sha256,
        base_layers={
            r: tuple((found.get("RootFS") or {}).get("Layers") or ())
            for r, found in inspected.items()
            if found
        },
    )


def _inspect(client: docker.DockerClient, image_id: str) -> dict[str, Any] | None:
    """The image's inspect (its config: ``ENV``, ``ONBUILD``; its layers); None when it
    cannot be inspected (its triggers are then unknown: the whole context is an input, which
    can only cost a rebuild)."""
    try:
        return dict(client.api.inspect_image(image_id))  # type: ignore[no-untyped-call]
    except Exception:  # gone or unreadable: assume the worst
        return None


def _env(config: Mapping[str, Any]) -> dict[str, str]:
    """A config's ``Env`` (``["K=V", ...]``) as a mapping."""
    pairs = (str(e).partition("=") for e in config.get("Env") or ())
    return {k: v for k, _, v in pairs if k}


def expected_keys(
    settings: Settings, services: Sequence[str], client: docker.DockerClient
) -> dict[str, InputKey]:
    """Service -> the input key the checkout would build now (its default variant): what
    ``staging.tag`` and ``images.validate`` judge freshness by."""
    plan_ = plan(settings, [Target(s) for s in services], BuildOptions())
    return {
        i.service: k
        for i, k in zip(plan_.images, freshness(plan_, client).keys.values(), strict=True)
    }


def labelled(plan_: BuildPlan, fresh: Freshnesses) -> BuildPlan:
    """The plan with each image's input key as a label (the claim a later run checks), and
    a value of this build's own to find the image by before it has a tag."""
    import uuid

    return plan_.with_labels(
        {n: (*label(k), (BUILD_RUN_LABEL, uuid.uuid4().hex)) for n, k in fresh.keys.items()}
    )


# -- execute ------------------------------------------------------------------------------------


@dataclass
class BuildRun:
    results: list[BuildResult]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.results]

    def names(self, *statuses: Status) -> list[str]:
        return [r.image.name for r in self.results if r.status in statuses]


def execute(
    plan_: BuildPlan,
    fresh: Freshnesses,
    progress: Progress,
    client: docker.DockerClient,
    stream: LogStream | None = None,
) -> BuildRun:
    """Build every image that is not up to date, all at once. Raises CommandFailed when one
    failed, EngineUnavailable when the engine went away, Interrupted on a signal; each
    names what was built and what was not."""
    from tasks.lib.build.runner import inspect_results, run_builds, whales_stream
    from tasks.lib.engine import answers

    skipped = fresh.skipped()
    to_build = [i for i in plan_.images if i.name not in skipped]
    by_name: dict[str, BuildResult] = {}
    for img in plan_.images:
        if img.name in skipped:
            r = BuildResult(image=img, status=Status.UP_TO_DATE)
            r.reason = fresh.verdicts[img.name].reason
            by_name[img.name] = r
            progress.finish(img.name, Status.UP_TO_DATE)
    try:
        built = (
            run_builds(
                to_build,
                stream or whales_stream(plan_.engine),
                progress,
                stop=stop_children,
                land=lambda r: land(r, fresh, client),
            )
            if to_build
            else []
        )
    except (Interrupted, KeyboardInterrupt) as exc:
        partial: list[BuildResult] = getattr(exc, "results", [])
        by_name.update({r.image.name: r for r in partial})
        run = BuildRun([by_name.get(i.name, BuildResult(image=i)) for i in plan_.images])
        signum = exc.signum if isinstance(exc, Interrupted) else 2
        raise Interrupted(signum, _interrupted_line(run, signum)) from None
    for r in built:
        v = fresh.verdicts.get(r.image.name)
        r.reason = v.reason if v else ""
        by_name[r.image.name] = r
    run = BuildRun([by_name[i.name] for i in plan_.images])
    if not answers(client):
        raise EngineUnavailable(
            "the Docker engine went away during the build: "
            + _what_happened(run, failed_word="not built"),
            hint="start it (`inv docker.ensure`) and rerun: finished images are skipped",
        )
    inspect_results(run.results, client)
    return run


def land(r: BuildResult, fresh: Freshnesses, client: docker.DockerClient) -> None:
    """After a build that ended well (in its own thread, as soon as it ends): make the key
    again; if every input is as it was, write the image's tags (all or nothing), else leave
    them as they are and fail it. The image was built untagged, so until this point no tag
    names it: nothing another run, ``staging.tag`` or a signal sees is ever a mislabelled
    image. A pushed build has its tags in the registry already: when its inputs moved, the
    local tags buildx also wrote go back (those still naming its image)."""
    from tasks.lib.images.tags import TagAction, TagPlan, apply_tags, rollback

    image = r.image
    # one call: the base images (retagged meanwhile?) and what the tags name now
    now = find_images(client, [*fresh.sources[image.name].images, *image.tags])
    r.moved = fresh.inputs_moved(image, now)
    if image.push:
        if r.moved is not None:
            r.status = Status.FAILED
            claim = fresh.keys[image.name].sha256
            undo = [
                TagAction(image.service, t, t, "", previous_id=None)
                for t in image.tags
                if (img := now.get(t)) is not None and img.label(INPUTS_LABEL) == claim
            ]
            rollback(client, undo)  # untag: the local tags are not a claim worth keeping
            r.error = (
                f"{_changed(r.moved)}; it was pushed: rerun with --force once the files are settled"
            )
        return
    run_id = dict(image.labels).get(BUILD_RUN_LABEL, "")
    built = client.api.images(filters={"label": f"{BUILD_RUN_LABEL}={run_id}"}) if run_id else []
    image_id = str(built[0]["Id"]) if built else ""
    if r.moved is None and image_id:
        r.moved = _other_root(client, image, image_id, fresh)
    if r.moved is not None:
        r.status = Status.FAILED
        if image_id:
            with contextlib.suppress(Exception):  # untagged and unused: nothing else has it
                client.api.remove_image(image_id, noprune=True)
        r.error = f"{_changed(r.moved)}: no tag was written; rerun once the files are settled"
        return
    if not image_id:
        if image.load or any("writing image sha256:" in line for line in r.tail):
            # it was in the image store (untagged, so prunable) and is gone
            r.status = Status.FAILED
            r.error = (
                "the image it built was removed before it could be tagged (a `docker image "
                "prune` meanwhile?): no tag was written; rerun"
            )
        return  # else built into the builder's cache only (another builder, no --load)
    actions = tuple(
        TagAction(
            image.service,
            image_id,
            t,
            image_id,
            previous_id=found.id if (found := now.get(t)) else None,
        )
        for t in image.tags
    )
    try:
        apply_tags(client, TagPlan(actions))
    except TaskError as exc:
        r.status = Status.FAILED
        r.error = exc.line()
    else:
        r.image_id = image_id


def _changed(what: str) -> str:
    return f"{what} changed during the build, so the image may not be what its input key says"


def _other_root(
    client: docker.DockerClient, image: ImageBuild, image_id: str, fresh: Freshnesses
) -> str | None:
    """``base image X`` when the built image does not start with the layers of the base its
    key names (read with its ID when the key was made): X was retagged to another image and
    back while BuildKit built (the tag names the key's image again when the build ends, so
    only the layers tell). The engine's own builder only: another builder resolves bases
    from its registry, not from this store."""
    ref = fresh.sources[image.name].root
    base = fresh.base_layers.get(ref) if ref else None
    if not base or image.builder not in ("", "default"):
        return None
    try:
        built = client.api.inspect_image(image_id)["RootFS"]["Layers"]  # type: ignore[no-untyped-call]
    except Exception:  # gone meanwhile: the tag check above has seen it
        return None
    return None if tuple(built[: len(base)]) == base else f"base image {ref}"


def _what_happened(run: BuildRun, *, failed_word: str = "failed") -> str:
    done = run.names(Status.BUILT, Status.PUSHED)
    fresh = run.names(Status.UP_TO_DATE)
    bad = [r.image.name for r in run.results if not r.ok]
    parts = [f"built: {', '.join(done)}" if done else "nothing was built"]
    if fresh:
        parts.append(f"up to date: {', '.join(fresh)}")
    if bad:
        parts.append(f"{failed_word}: {', '.join(bad)}")
    return "; ".join(parts)


def _interrupted_line(run: BuildRun, signum: int) -> str:
    import signal

    return f"interrupted by {signal.Signals(signum).name}: " + _what_happened(
        run, failed_word="not built (stopped, tags unchanged)"
    )


def failure(run: BuildRun) -> CommandFailed | None:
    failed = [r for r in run.results if r.status is Status.FAILED]
    if not failed:
        return None
    names = ", ".join(r.image.name for r in failed)
    return CommandFailed(
        f"{len(failed)} of {len(run.results)} image(s) failed: {names}",
        hint="see the log tail above; " + _what_happened(run),
    )
