"""Pushes: the tag sets, the plan, the push streams, the temporary ``--registry-url`` tags.

* The docker SDK's push stream never raises on a failed push: every item is checked for
  ``error``/``errorDetail`` (:func:`stream_error`), and a stream that ends without a digest
  is a failure too.
* Pushes run one after another and stop at the first failure; the error names the image,
  the registry, and exactly which tags were pushed before it.
* ``--registry-url host:port`` pushes ``<host:port>/<repository>:<tag>`` (the namespace is
  kept: ``127.0.0.1:5000/isopen/meeshy-web:staging``). The ENGINE resolves and contacts that
  host (with a remote engine, ``127.0.0.1`` is the engine's machine). The temporary tags are
  recorded before they are made (:mod:`.journal`) and put back after the push, on failure
  and on a signal too; the digest references the push adds to them are removed with them.
  A killed run's temporary tags are put back by the next run through the same engine.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tasks.lib.config import Service, Settings, check_tag
from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    Interrupted,
    MissingImageError,
    TaskError,
)
from tasks.lib.images.journal import Journal, TempTag
from tasks.lib.images.refs import Ref, check_registry_url, format_tags, repository
from tasks.lib.images.signals import held_signals
from tasks.lib.images.store import (
    engine_message,
    find_images,
    index_by_ref,
    list_images,
    short_id,
)
from tasks.lib.progress import Progress, Status

if TYPE_CHECKING:
    import docker

QUIET_LAYER_STATES = frozenset({"Preparing", "Waiting"})


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PushTarget:
    service: str
    source: str  # the local ref as built/tagged
    remote: str  # what is pushed (== source without --registry-url)
    # the image the push must send (release: the one it built); "" for whatever source names
    image_id: str = ""

    @property
    def registry(self) -> str:
        return Ref.parse(self.remote).registry

    @property
    def temporary(self) -> bool:
        """The push needs a temporary local tag ``remote``."""
        return self.remote != self.source

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "ref": self.remote,
            "source": self.source,
            "registry": self.registry,
        }


def push_tags(settings: Settings, service: Service) -> list[str]:
    """The Makefile's push tag set of a service (config ``push_tags``), formatted."""
    key = f"meeshy.services.{service.name}.push_tags"
    return format_tags(service.push_tags, service.name, settings.version(service), key=key)


def plan_pushes(
    settings: Settings,
    services: Sequence[Service],
    tags: Mapping[str, Sequence[str]],
    *,
    registry_url: str = "",
) -> list[PushTarget]:
    """One target per (service, tag), in order; ``registry_url`` prefixes the repository."""
    url = check_registry_url(registry_url)
    out: list[PushTarget] = []
    for svc in services:
        repo = repository(settings, svc)
        if not url and "/" not in repo:  # no namespace (meeshy.registry empty)
            raise ConfigError(
                f"meeshy.registry is empty, so {repo} would be pushed to Docker Hub's library "
                f"of official images (docker.io/library/{repo}), which refuses it",
                hint="set meeshy.registry, DOCKER_REGISTRY or --registry (e.g. isopen, or "
                "localhost:5000/meeshy), or give --registry-url",
            )
        for tag in tags[svc.name]:
            check_tag(tag, "tag")
            source = f"{repo}:{tag}"
            if url and len(f"{url}/{repo}") > 255:
                raise ConfigError(
                    f"--registry-url {url!r} makes {url}/{repo}, longer than the 255 "
                    "characters Docker allows in a repository name",
                    hint="give a shorter registry host",
                )
            out.append(PushTarget(svc.name, source, f"{url}/{source}" if url else source))
    return out


# --------------------------------------------------------------------------- streams


def stream_error(item: Mapping[str, Any]) -> str | None:
    """The error an item of a push stream carries, or None. The SDK does not raise on these."""
    detail = item.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return str(detail["message"])
    if item.get("error"):
        return str(item["error"])
    if detail:
        return str(detail)
    return None


@dataclass
class Layer:
    id: str
    status: str = ""
    current: int = 0
    total: int = 0

    @property
    def done(self) -> bool:
        return self.status in {"Pushed", "Layer already exists"} or self.status.startswith(
            "Mounted from"
        )


@dataclass
class PushState:
    """Everything a push stream said so far, item by item."""

    ref: str
    layers: dict[str, Layer] = field(default_factory=dict)
    error: str | None = None
    digest: str | None = None
    last_status: str = ""

    def feed(self, item: Mapping[str, Any]) -> Layer | None:
        """Take one stream item; returns the layer it is about, if any."""
        err = stream_error(item)
        if err is not None:
            self.error = self.error or err
            return None
        aux = item.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        status = str(item.get("status") or "")
        layer_id = item.get("id")
        if not layer_id:
            if status:
                self.last_status = status
            return None
        layer = self.layers.setdefault(str(layer_id), Layer(str(layer_id)))
        layer.status = status or layer.status
        detail = item.get("progressDetail") or {}
        if isinstance(detail, Mapping):
            if "current" in detail:
                layer.current = int(detail.get("current") or 0)
            if detail.get("total"):
                layer.total = int(detail["total"])
        if layer.done and layer.total:
            layer.current = layer.total
        return layer

    @property
    def bytes_done(self) -> int:
        return sum(min(x.current, x.total) if x.total else 0 for x in self.layers.values())

    @property
    def bytes_total(self) -> int:
        return sum(x.total for x in self.layers.values())

    @property
    def first_error_line(self) -> str:
        text = (self.error or "").strip()
        return text.splitlines()[0] if text else "?"


def push_one(
    client: docker.DockerClient, target: PushTarget, progress: Progress, *, layers: bool = True
) -> PushState:
    """Push one ref, feeding every stream item to the state and the progress view; an error
    ends up on the state (in-band, connection, or no digest), not raised."""
    from docker.errors import DockerException

    key = target.remote
    state = PushState(key)
    progress.start(key, text=f"to {target.registry}")
    repo, tag = Ref.parse(target.remote).name_and_tag()
    seen: dict[str, str] = {}
    try:
        for item in client.images.push(repo, tag, stream=True, decode=True):
            if not isinstance(item, Mapping):
                continue
            layer = state.feed(item)
            if layer is not None and layers and seen.get(layer.id) != layer.status:
                seen[layer.id] = layer.status  # "Pushing" repeats with every chunk: once
                if layer.status not in QUIET_LAYER_STATES:
                    progress.update(key, text=f"layer {layer.id}: {layer.status}")
            if state.bytes_total:
                progress.update(key, done=state.bytes_done, total=state.bytes_total)
    except TaskError:
        raise  # a signal (Interrupted): not a push failure
    except DockerException as exc:
        state.error = state.error or str(exc).strip() or type(exc).__name__
    except Exception as exc:  # requests' connection errors and the like
        state.error = state.error or f"{type(exc).__name__}: {exc}"
    if state.error is None and state.digest is None:
        state.error = f"the stream ended without a digest (last: {state.last_status or '-'})"
    if state.error is None:
        progress.finish(key, Status.PUSHED, text=state.digest or "")
    else:
        progress.finish(key, Status.FAILED, text=state.first_error_line)
    return state


# --------------------------------------------------------------------------- temporary tags


def temporary_tags(client: docker.DockerClient, targets: Sequence[PushTarget]) -> list[TempTag]:
    """Check every source exists and decide the temporary tags, from ONE engine call (the
    sources, and the remote repositories for what their names and digests point at now)."""
    temp = [t for t in targets if t.temporary]
    patterns = [Ref.parse(t.source).familiar for t in targets]
    patterns += [Ref.parse(t.remote).familiar_repository for t in temp]
    images = list_images(client, patterns)
    by_tag = index_by_ref(images)
    missing = [t.source for t in targets if by_tag.get(Ref.parse(t.source).familiar) is None]
    if missing:
        raise MissingImageError(
            f"missing local image(s): {', '.join(dict.fromkeys(missing))}; nothing was pushed",
            hint="build or tag them first (`inv build.all`, `inv staging.tag`)",
        )
    for t in targets:
        now = by_tag[Ref.parse(t.source).familiar]
        if t.image_id and now.id != t.image_id:
            raise CommandFailed(
                f"{t.source} names {now.short_id}, not the image this run built "
                f"({short_id(t.image_id)}): another run tagged it since; nothing was pushed",
                hint="rerun once the other run has ended",
            )
    out: dict[str, TempTag] = {}
    for t in temp:
        source = by_tag[Ref.parse(t.source).familiar]
        remote = Ref.parse(t.remote)
        before = by_tag.get(remote.familiar)
        prefix = f"{remote.familiar_repository}@"
        out.setdefault(
            t.remote,
            TempTag(
                ref=t.remote,
                image_id=source.id,
                previous_id=before.id if before else None,
                digests_before=tuple(d for d in source.digests if d.startswith(prefix)),
            ),
        )
    return list(out.values())


def restore(
    client: docker.DockerClient, entries: Sequence[TempTag]
) -> tuple[list[TempTag], list[tuple[TempTag, str]]]:
    """Put each temporary tag's name back as it was, and remove the digest references the
    push added; a name that points elsewhere now (someone retagged it), or no longer
    exists, is left alone. Returns (the names changed back, those that could not be with
    why); an entry in neither list needed nothing."""
    from docker.errors import NotFound

    if not entries:
        return [], []
    repos = list(dict.fromkeys(Ref.parse(e.ref).familiar_repository for e in entries))
    images = list_images(client, repos)
    now = index_by_ref(images)
    restored: list[TempTag] = []
    failed: list[tuple[TempTag, str]] = []
    for e in entries:
        ref = Ref.parse(e.ref)
        current = now.get(ref.familiar)
        if e.tag_restored:
            continue  # only its late digest reference, below
        if current is None or current.id != e.image_id or e.previous_id == e.image_id:
            continue
        repo, tag = ref.name_and_tag()
        try:
            if e.previous_id:
                try:
                    client.api.tag(e.previous_id, repo, tag, force=True)
                except NotFound:  # the image it named before is gone
                    client.api.remove_image(e.ref, noprune=True)
            else:
                client.api.remove_image(e.ref, noprune=True)
            restored.append(e)
        except Exception as exc:
            failed.append((e, engine_message(exc)))
    for img in images:
        for digest in img.digests:
            repo = digest.partition("@")[0]
            owners = [
                e
                for e in entries
                if e.image_id == img.id and Ref.parse(e.ref).familiar_repository == repo
            ]
            if owners and all(digest not in e.digests_before for e in owners):
                try:
                    client.api.remove_image(digest, noprune=True)
                except NotFound:
                    pass  # went with its tag
                except Exception as exc:
                    failed.append((owners[0], f"{digest}: {engine_message(exc)}"))
    return restored, failed


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class PushOutcome:
    target: PushTarget
    status: Status  # PUSHED, FAILED, or SKIPPED (after an earlier failure)
    digest: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.target.to_json(),
            "status": self.status.value,
            "digest": self.digest,
            "error": self.error,
        }


@dataclass(frozen=True)
class PushResult:
    engine: str
    outcomes: tuple[PushOutcome, ...]
    seconds: float = 0.0
    cleaned: tuple[TempTag, ...] = ()  # an interrupted run's temporary tags, put back
    unrestored: tuple[tuple[TempTag, str], ...] = ()  # could not be put back (kept on record)

    @property
    def pushed(self) -> list[PushTarget]:
        return [o.target for o in self.outcomes if o.status is Status.PUSHED]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": False,
            "engine": self.engine,
            "pushes": [o.to_json() for o in self.outcomes],
            "leftovers_restored": [e.ref for e in self.cleaned],
            "not_restored": [{"ref": e.ref, "why": why} for e, why in self.unrestored],
        }

    def error(self) -> CommandFailed | None:
        failed = next((o for o in self.outcomes if o.status is Status.FAILED), None)
        if failed is None:
            return None
        t = failed.target
        first = (failed.error or "?").strip().splitlines()[0]
        return CommandFailed(
            f"push of {t.remote} to registry {t.registry} failed: {first}",
            hint=f"{pushed_summary(self.pushed)}; rerun once the registry accepts pushes "
            "(layers already there are skipped)",
            output=failed.error or "",
        )


def pushed_summary(pushed: Sequence[PushTarget]) -> str:
    if not pushed:
        return "nothing was pushed"
    return f"pushed before it: {', '.join(t.remote for t in pushed)}"


ProgressFactory = Callable[[Sequence[str]], AbstractContextManager[Progress]]


def _sent_another(client: docker.DockerClient, t: PushTarget, digest: str | None) -> str | None:
    """None when the push sent ``t``'s pinned image (the engine records the digest it pushed
    on the image it pushed); else the error: the name was moved during the push."""
    repo = Ref.parse(t.remote).familiar_repository
    sent = find_images(client, [f"{repo}@{digest}"]).get(f"{repo}@{digest}") if digest else None
    if sent is None or sent.id == t.image_id:
        return None  # no digest: push_one has said so already
    return (
        f"the registry got {sent.short_id}, not the image this run built ({short_id(t.image_id)}): "
        f"{t.source} was tagged by another run during the push; rerun once it has ended"
    )


def push_images(
    client: docker.DockerClient,
    targets: Sequence[PushTarget],
    *,
    engine: str,
    journal: Journal | None,
    progress: ProgressFactory,
    on_wait: Callable[[], None] | None = None,
    layers: bool = True,
) -> PushResult:
    """Push every target in order, stopping at the first failure (its outcome FAILED, the
    rest SKIPPED; :meth:`PushResult.error` is the error to exit with). Missing sources raise
    before anything is changed. With temporary tags, under the journal's lock: first put
    back what a killed run left, then record, tag, push, put back."""
    temp_needed = any(t.temporary for t in targets)
    if temp_needed and journal is None:
        raise ValueError("temporary tags need a journal")
    started = time.monotonic()
    # the record is used (locked) when this run makes temporary tags, or a killed run's are
    # on it: any push through the engine puts those back
    use = journal is not None and (temp_needed or journal.path.exists())
    lock = journal.locked(on_wait) if journal is not None and use else nullcontext()
    with lock:
        cleaned: list[TempTag] = []
        unrestored: list[tuple[TempTag, str]] = []
        if journal is not None and use:
            leftovers = journal.read()
            with held_signals():
                cleaned, bad = restore(client, leftovers)
                kept = {e for e, _ in bad}
                journal.discard([e for e in leftovers if e not in kept])
            unrestored += bad
        temp = temporary_tags(client, targets)
        states: list[PushState] = []
        made: list[TempTag] = []
        current: PushTarget | None = None
        cut_repo = ""  # the repository whose push a signal cut short
        try:
            with progress([t.remote for t in targets]) as view:
                for entry in temp:
                    assert journal is not None
                    journal.add(entry)  # recorded before it exists
                    made.append(entry)
                    repo, tag = Ref.parse(entry.ref).name_and_tag()
                    client.api.tag(entry.image_id, repo, tag, force=True)
                for t in targets:
                    current = t
                    state = push_one(client, t, view, layers=layers)
                    if t.image_id and state.error is None:
                        state.error = _sent_another(client, t, state.digest)
                    states.append(state)
                    if state.error is not None:
                        break
                current = None
                for t in targets[len(states) :]:
                    view.finish(t.remote, Status.SKIPPED, text="not pushed: an earlier push failed")
        except (Interrupted, KeyboardInterrupt) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            done = [t.remote for t, s in zip(targets, states, strict=False) if s.error is None]
            cut = current is not None and current.remote not in {s.ref for s in states}
            where = ""
            if current is not None and cut:
                # the engine may have sent the manifest already: the registry can have it
                where = f" while pushing {current.remote} (it may have reached the registry)"
                cut_repo = Ref.parse(current.remote).familiar_repository
            if done:
                what = f"pushed: {', '.join(done)}"
            else:
                what = "nothing before it was pushed" if where else "nothing was pushed"
            note = "; the temporary tags were put back" if made else ""
            raise Interrupted(
                signum, f"interrupted by {signal.Signals(signum).name}{where}; {what}{note}"
            ) from None
        finally:
            if made:
                assert journal is not None
                with held_signals():
                    _, bad = restore(client, made)
                    kept = {e for e, _ in bad}
                    journal.discard([e for e in made if e not in kept])
                    # the cut push may still end in the engine and add a digest reference
                    # to its repository after this: the next run removes it
                    for e in made:
                        if e not in kept and Ref.parse(e.ref).familiar_repository == cut_repo:
                            journal.add(replace(e, tag_restored=True))
                unrestored += bad
    outcomes: list[PushOutcome] = []
    for i, t in enumerate(targets):
        if i >= len(states):
            outcomes.append(PushOutcome(t, Status.SKIPPED))
        elif states[i].error is None:
            outcomes.append(PushOutcome(t, Status.PUSHED, digest=states[i].digest))
        else:
            outcomes.append(PushOutcome(t, Status.FAILED, error=states[i].error))
    return PushResult(
        engine=engine,
        outcomes=tuple(outcomes),
        seconds=time.monotonic() - started,
        cleaned=tuple(cleaned),
        unrestored=tuple(unrestored),
    )
