"""Local images: the staging tag plan, listing, validation, pushing, reading files out of images.

The core of ``staging.tag``, ``staging.push``, ``images.list``, ``images.validate``,
``images.push`` and ``release``; never imports Invoke. Pure functions decide (a tag plan, a
verdict, what a push stream says), thin engine functions act through the docker SDK.

Decisions worth knowing:

* ``staging.tag`` is all or nothing: every source is looked up and its schema label compared
  before the first tag is written; if a tag operation still fails half-way, the tags written
  so far are put back as they were.
* An image without the schema label counts as stale (it cannot be proven to be built from the
  current schema): refused by ``staging.tag`` unless ``--allow-stale``, a failed check in
  ``images.validate``.
* Revision check: the expected revision is ``vcs_ref(root)`` (``git rev-parse --short HEAD``).
  Short hashes of different lengths match when one is a prefix of the other. When the root is
  not a git checkout (``local``) there is no expected revision, so any non-empty revision label
  passes and the check says so.
* ``--registry-url host:port`` pushes ``<host:port>/<repository>:<tag>`` (the namespace is kept:
  ``127.0.0.1:5000/isopen/meeshy-web:staging``). The extra local tag is removed after the push
  when the push created it.
* The docker SDK's push stream never raises on a failed push: every item is checked for
  ``error``/``errorDetail`` (:func:`stream_error`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from tasks.lib.config import SCHEMA_LABEL, Service, Settings
from tasks.lib.errors import CommandFailed, ConfigError, TaskError

if TYPE_CHECKING:
    import docker

    from tasks.lib.output import Output

VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REGISTRY_URL_RE = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$"
)
PROJECT_WORD = "meeshy"


class StaleImageError(TaskError):
    """An image built from another schema than the current one."""

    exit_code = 4


class MissingImageError(TaskError):
    """A local image that should exist does not."""

    exit_code = 1


# --------------------------------------------------------------------------- schema


def require_schema_sha256(settings: Settings) -> str:
    sha = settings.schema_sha256
    if sha is None:
        raise ConfigError(
            f"schema {settings.schema} not found under {settings.root}",
            hint="pass --root (the monorepo) or fix meeshy.schema",
        )
    return sha


def schema_state(labels: Mapping[str, str], current: str | None) -> str:
    """``match``, ``stale`` (another schema), ``unlabelled`` or ``unknown`` (no current schema)."""
    label = labels.get(SCHEMA_LABEL, "")
    if not label:
        return "unlabelled"
    if current is None:
        return "unknown"
    return "match" if label == current else "stale"


# --------------------------------------------------------------------------- local images


@dataclass(frozen=True)
class LocalImage:
    """What ``docker image inspect`` says about one image, trimmed to what the tasks show."""

    id: str
    tags: tuple[str, ...]
    created: str
    size: int
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> LocalImage:
        config = attrs.get("Config") or {}
        return cls(
            id=str(attrs.get("Id", "")),
            tags=tuple(attrs.get("RepoTags") or ()),
            created=str(attrs.get("Created", "")),
            size=int(attrs.get("Size") or 0),
            labels=dict(config.get("Labels") or {}),
        )


def split_ref(ref: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); a ``:`` inside the registry host is not a tag."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def registry_of(ref: str) -> str:
    """The registry a reference is pushed to, by Docker's rule (``docker.io`` by default)."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def check_tag(tag: str, flag: str) -> str:
    if not TAG_RE.match(tag):
        raise ConfigError(
            f"{flag} {tag!r} is not a valid Docker tag",
            hint="use letters, digits, '_', '.' and '-' (at most 128, not starting with . or -)",
        )
    return tag


def check_registry_url(url: str) -> str:
    """``host[:port]`` for ``--registry-url``; no scheme, no path."""
    if not url:
        return ""
    if "://" in url or "/" in url or not REGISTRY_URL_RE.match(url):
        raise ConfigError(
            f"--registry-url {url!r} is not host:port",
            hint="give the registry as host:port, e.g. 127.0.0.1:5000 (no http://, no path)",
        )
    return url


def select_services(settings: Settings, names: Sequence[str]) -> list[Service]:
    """The services named (in order, once each), or ``settings.all``."""
    chosen = list(dict.fromkeys(names)) or list(settings.all)
    return [settings.service(n) for n in chosen]


def is_meeshy_ref(ref: str) -> bool:
    repo, _ = split_ref(ref)
    return PROJECT_WORD in repo


def format_created(created: str) -> str:
    """``2026-11-02T10:11:12.123Z`` -> ``2026-11-02 10:11:12`` (UTC, as the engine reports)."""
    return created[:19].replace("T", " ") if len(created) >= 19 else created or "-"


@dataclass(frozen=True)
class ImageRow:
    """One line of an image listing."""

    repository: str
    tags: tuple[str, ...]
    id: str
    created: str
    size: int
    version: str
    schema: str
    schema_state: str

    def as_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tags": list(self.tags),
            "id": self.id,
            "created": self.created,
            "size": self.size,
            "version": self.version,
            "schema_sha256": self.schema,
            "schema": self.schema_state,
        }


def image_rows(
    images: Iterable[LocalImage], current_schema: str | None, *, per_tag: bool = False
) -> list[ImageRow]:
    """Rows for every meeshy repository of every image, sorted by repository then tag.

    ``per_tag`` gives one row per ``repo:tag`` (as ``docker images``); otherwise one row per
    repository with its tags together.
    """
    rows: list[ImageRow] = []
    for img in images:
        by_repo: dict[str, list[str]] = {}
        for ref in img.tags:
            if is_meeshy_ref(ref):
                repo, tag = split_ref(ref)
                by_repo.setdefault(repo, []).append(tag)
        for repo, tags in by_repo.items():
            groups = [[t] for t in sorted(tags)] if per_tag else [sorted(tags)]
            for group in groups:
                rows.append(
                    ImageRow(
                        repository=repo,
                        tags=tuple(group),
                        id=img.short_id,
                        created=img.created,
                        size=img.size,
                        version=img.labels.get(VERSION_LABEL, ""),
                        schema=img.labels.get(SCHEMA_LABEL, ""),
                        schema_state=schema_state(img.labels, current_schema),
                    )
                )
    rows.sort(key=lambda r: (r.repository, r.tags))
    return rows


def render_rows(out: Output, title: str, rows: Sequence[ImageRow], *, versions: bool) -> None:
    from tasks.lib.output import size as human_size

    if versions:
        cols = ["repository", "tags", "id", "created", "size", "version", "schema", "matches"]
    else:
        cols = ["repository", "tag", "id", "created", "size", "schema"]
    table: list[list[str]] = []
    for r in rows:
        line = [
            r.repository,
            ", ".join(r.tags),
            r.id,
            format_created(r.created),
            human_size(r.size),
        ]
        if versions:
            line += [r.version or "-", r.schema[:12] or "-", r.schema_state]
        else:
            line.append(r.schema_state)
        table.append(line)
    out.table(title, cols, table)


def find_image(client: docker.DockerClient, ref: str) -> LocalImage | None:
    from docker.errors import ImageNotFound

    try:
        return LocalImage.from_attrs(client.images.get(ref).attrs)
    except ImageNotFound:
        return None


def lookup(client: docker.DockerClient, refs: Iterable[str]) -> dict[str, LocalImage | None]:
    return {ref: find_image(client, ref) for ref in refs}


def list_meeshy_images(client: docker.DockerClient) -> list[LocalImage]:
    """Every local image with a tag whose repository contains ``meeshy``."""
    out: list[LocalImage] = []
    for img in client.images.list():
        local = LocalImage.from_attrs(img.attrs)
        if any(is_meeshy_ref(t) for t in local.tags):
            out.append(local)
    return out


# --------------------------------------------------------------------------- staging tag plan


@dataclass(frozen=True)
class TagAction:
    service: str
    source: str
    target: str
    image_id: str
    schema_state: str


@dataclass(frozen=True)
class TagPlan:
    actions: tuple[TagAction, ...]
    stale: tuple[str, ...] = ()  # sources tagged despite their schema (--allow-stale)


def staging_refs(
    settings: Settings, services: Sequence[Service], from_tag: str, to_tag: str
) -> list[tuple[str, str, str]]:
    """(service, source ref, target ref) for each service."""
    check_tag(from_tag, "--from")
    check_tag(to_tag, "--to")
    if from_tag == to_tag:
        raise ConfigError(f"--from and --to are both {from_tag!r}", hint="tag to another name")
    out = []
    for svc in services:
        repo = settings.repository(svc)
        out.append((svc.name, f"{repo}:{from_tag}", f"{repo}:{to_tag}"))
    return out


def plan_staging_tags(
    refs: Sequence[tuple[str, str, str]],
    found: Mapping[str, LocalImage | None],
    current_schema: str | None,
    *,
    allow_stale: bool,
) -> TagPlan:
    """Decide every tag before writing any: missing sources or stale images refuse all."""
    missing = [src for _, src, _ in refs if found.get(src) is None]
    if missing:
        raise MissingImageError(
            f"missing source image(s): {', '.join(missing)}; no tag was changed",
            hint="build them first (`inv build.all`), or choose another --from tag",
        )
    if current_schema is None and not allow_stale:
        raise ConfigError(
            "cannot compare the images' schema: the shared schema file is missing",
            hint="pass --root (the monorepo), or --allow-stale to tag without the check",
        )
    actions: list[TagAction] = []
    bad: list[str] = []
    for svc, src, dst in refs:
        img = found[src]
        assert img is not None
        state = schema_state(img.labels, current_schema)
        if state != "match":
            label = img.labels.get(SCHEMA_LABEL, "")
            why = f"schema {label[:12]}" if label else "no schema label"
            bad.append(f"{src} ({why})")
        actions.append(TagAction(svc, src, dst, img.id, state))
    if bad and not allow_stale:
        cur = (current_schema or "?")[:12]
        raise StaleImageError(
            f"not built from the current schema ({cur}): {', '.join(bad)}; no tag was changed",
            hint="`inv build.all` rebuilds them from it, or pass --allow-stale",
        )
    stale = tuple(a.source for a in actions if a.schema_state != "match")
    return TagPlan(actions=tuple(actions), stale=stale)


def apply_tags(client: docker.DockerClient, plan: TagPlan) -> None:
    """Write every tag; if one fails, put the ones written back as they were."""
    from docker.errors import APIError

    previous: dict[str, str | None] = {}
    for a in plan.actions:
        prev = find_image(client, a.target)
        previous[a.target] = prev.id if prev else None
    done: list[TagAction] = []
    try:
        for a in plan.actions:
            repo, tag = split_ref(a.target)
            if not client.api.tag(a.image_id, repo, tag, force=True):
                raise CommandFailed(f"the engine refused to tag {a.source} as {a.target}")
            done.append(a)
    except BaseException as exc:  # engine errors, lost connections, Ctrl-C: never half-tagged
        for a in done:
            repo, tag = split_ref(a.target)
            try:
                before = previous[a.target]
                if before:
                    client.api.tag(before, repo, tag, force=True)
                else:
                    client.api.remove_image(a.target, noprune=True)
            except APIError:
                pass
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise CommandFailed(
            f"tagging failed ({exc}); the tags already written were restored",
            hint="check the engine and rerun",
        ) from exc


# --------------------------------------------------------------------------- reading files


def read_image_files(
    client: docker.DockerClient, ref: str, paths: Sequence[str]
) -> dict[str, bytes | None]:
    """Read files out of an image without running it: create a container, ``get_archive``
    each path, remove the container. A missing path maps to None; symlinks are followed."""
    from docker.errors import NotFound

    out: dict[str, bytes | None] = {}
    if not paths:
        return out
    container = client.containers.create(ref, command=["true"], entrypoint=[])
    try:
        for path in paths:
            current = path
            data: bytes | None = None
            for _ in range(8):  # symlink hops
                try:
                    stream, _stat = container.get_archive(current)
                except NotFound:
                    data = None
                    break
                member_data, link = _first_member(b"".join(stream))
                if link is None:
                    data = member_data
                    break
                current = (
                    str(PurePosixPath(current).parent / link) if not link.startswith("/") else link
                )
            out[path] = data
    finally:
        container.remove(force=True)
    return out


def _first_member(tar_bytes: bytes) -> tuple[bytes | None, str | None]:
    """(content, None) for a regular file, (None, target) for a symlink, (None, None) else."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar:
            if member.issym():
                return None, member.linkname
            if member.isfile():
                f = tar.extractfile(member)
                return (f.read() if f else None), None
            return None, None
    return None, None


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Check:
    name: str
    expected: str
    actual: str
    verdict: str  # pass | fail
    detail: str = ""


@dataclass(frozen=True)
class ImageReport:
    service: str
    ref: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.verdict == "pass" for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.verdict != "pass"]

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "image": self.ref,
            "ok": self.ok,
            "checks": [
                {
                    "check": c.name,
                    "expected": c.expected,
                    "actual": c.actual,
                    "verdict": c.verdict,
                    "detail": c.detail,
                }
                for c in self.checks
            ],
        }


def revision_matches(expected: str, actual: str) -> tuple[bool, str]:
    """Compare a revision label with ``vcs_ref``; ``local`` accepts any non-empty revision."""
    if not actual:
        return False, "the label is missing or empty"
    if expected == "local":
        return True, "root is not a git checkout: any revision accepted"
    short = min(len(expected), len(actual))
    if short >= 4 and expected[:short] == actual[:short]:
        return True, ""
    return False, f"built from revision {actual}, the checkout is at {expected}"


def judge_image(
    service: str,
    ref: str,
    image: LocalImage | None,
    *,
    expected_version: str,
    expected_revision: str,
    schema_sha: str,
    files: Mapping[str, bytes | None],
) -> ImageReport:
    """The verdict on one image, from its labels and the schema files read out of it."""
    if image is None:
        return ImageReport(
            service,
            ref,
            (Check("exists", ref, "missing", "fail", f"no local image {ref}; build it first"),),
        )
    checks = [Check("exists", ref, image.short_id, "pass")]
    version = image.labels.get(VERSION_LABEL, "")
    checks.append(
        Check(
            VERSION_LABEL,
            expected_version,
            version or "-",
            "pass" if version == expected_version else "fail",
            ""
            if version == expected_version
            else ("the label is missing" if not version else "another version"),
        )
    )
    revision = image.labels.get(REVISION_LABEL, "")
    ok, why = revision_matches(expected_revision, revision)
    checks.append(
        Check(REVISION_LABEL, expected_revision, revision or "-", "pass" if ok else "fail", why)
    )
    label = image.labels.get(SCHEMA_LABEL, "")
    checks.append(
        Check(
            SCHEMA_LABEL,
            schema_sha[:12],
            label[:12] or "-",
            "pass" if label == schema_sha else "fail",
            ""
            if label == schema_sha
            else ("the label is missing" if not label else "built from another schema"),
        )
    )
    for path, data in files.items():
        if data is None:
            checks.append(
                Check(
                    f"file {path}",
                    schema_sha[:12],
                    "missing",
                    "fail",
                    "the schema file is not in the image",
                )
            )
            continue
        got = hashlib.sha256(data).hexdigest()
        checks.append(
            Check(
                f"file {path}",
                schema_sha[:12],
                got[:12],
                "pass" if got == schema_sha else "fail",
                ""
                if got == schema_sha
                else "the file in the image differs from the current schema",
            )
        )
    return ImageReport(service, ref, tuple(checks))


def validate_images(
    client: docker.DockerClient,
    settings: Settings,
    services: Sequence[Service],
    *,
    tag: str,
    expected_revision: str,
) -> list[ImageReport]:
    """One report per service: ``v<version>`` (or ``tag``) of each, checked."""
    from docker.errors import DockerException

    schema_sha = require_schema_sha256(settings)
    reports = []
    for svc in services:
        version = settings.version(svc)
        ref = f"{settings.repository(svc)}:{tag or 'v' + version}"
        image = find_image(client, ref)
        try:
            files = read_image_files(client, ref, svc.schema_paths) if image else {}
        except DockerException as exc:
            raise CommandFailed(
                f"cannot read {', '.join(svc.schema_paths)} out of {ref}: {exc}",
                hint="check the engine (a container is created, never started, then removed)",
            ) from exc
        reports.append(
            judge_image(
                svc.name,
                ref,
                image,
                expected_version=version,
                expected_revision=expected_revision,
                schema_sha=schema_sha,
                files=files,
            )
        )
    return reports


def render_reports(out: Output, reports: Sequence[ImageReport]) -> None:
    rows = []
    for r in reports:
        for i, c in enumerate(r.checks):
            rows.append(
                [r.ref if i == 0 else "", c.name, c.expected, c.actual, c.verdict, c.detail]
            )
    out.table(
        "Image validation", ["image", "check", "expected", "actual", "verdict", "detail"], rows
    )


# --------------------------------------------------------------------------- push


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


@dataclass(frozen=True)
class PushTarget:
    service: str
    source: str  # the local ref as built/tagged
    remote: str  # what is pushed (== source without --registry-url)

    @property
    def registry(self) -> str:
        return registry_of(self.remote)


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
        repo = settings.repository(svc)
        for tag in tags[svc.name]:
            check_tag(tag, "tag")
            source = f"{repo}:{tag}"
            out.append(PushTarget(svc.name, source, f"{url}/{source}" if url else source))
    return out


def push_tags(settings: Settings, service: Service) -> list[str]:
    """The Makefile's push tag set of a service (config ``push_tags``), formatted."""
    version = settings.version(service)
    out = []
    for pattern in service.push_tags:
        try:
            out.append(pattern.format(version=version, service=service.name))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"push tag pattern {pattern!r} of {service.name} is invalid ({exc})",
                hint="use {version} and {service} only",
            ) from exc
    return list(dict.fromkeys(out))


class PushReporter(Protocol):
    def start(self, target: PushTarget) -> None: ...
    def update(self, target: PushTarget, state: PushState, layer: Layer | None) -> None: ...
    def finish(self, target: PushTarget, state: PushState) -> None: ...


class PlainPushReporter:
    """A line when a push starts, a line per layer state change, a line at the end."""

    def __init__(self, out: Output, *, layers: bool = True) -> None:
        self.out = out
        self.layers = layers
        self._seen: dict[tuple[str, str], str] = {}

    def start(self, target: PushTarget) -> None:
        self.out.info(f"push {target.remote} -> {target.registry}")

    def update(self, target: PushTarget, state: PushState, layer: Layer | None) -> None:
        if layer is None or not self.layers:
            return
        key = (target.remote, layer.id)
        if self._seen.get(key) == layer.status:
            return  # "Pushing" repeats with every chunk: one line when it starts
        self._seen[key] = layer.status
        if layer.status not in {"Preparing", "Waiting"}:
            self.out.info(f"  {target.remote} layer {layer.id}: {layer.status}")

    def finish(self, target: PushTarget, state: PushState) -> None:
        if state.error is None:
            self.out.info(f"pushed {target.remote} {state.digest or ''}".rstrip())


class LivePushReporter:
    """A rich Progress: one bar per image (bytes over all layers), one line per layer."""

    def __init__(self, out: Output, *, layers: bool = True) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.layers = layers
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=out.out,
            transient=False,
        )
        self._images: dict[str, Any] = {}
        self._layers: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> LivePushReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def start(self, target: PushTarget) -> None:
        self._images[target.remote] = self.progress.add_task(
            target.remote, total=None, status="starting"
        )

    def update(self, target: PushTarget, state: PushState, layer: Layer | None) -> None:
        task = self._images[target.remote]
        self.progress.update(
            task, completed=state.bytes_done, total=state.bytes_total or None, status="pushing"
        )
        if layer is None or not self.layers:
            return
        key = (target.remote, layer.id)
        if key not in self._layers:
            self._layers[key] = self.progress.add_task(f"  └ {layer.id}", total=None, status="")
        self.progress.update(
            self._layers[key],
            completed=layer.current,
            total=layer.total or None,
            status=layer.status,
        )

    def finish(self, target: PushTarget, state: PushState) -> None:
        task = self._images[target.remote]
        total = state.bytes_total or 1
        if state.error is None:
            self.progress.update(
                task, completed=total, total=total, status=f"pushed {(state.digest or '')[:19]}"
            )
        else:
            self.progress.update(task, status="FAILED")


def push_one(client: docker.DockerClient, target: PushTarget, reporter: PushReporter) -> PushState:
    """Push one ref, feeding every stream item to the state; error on the state, not raised."""
    from docker.errors import DockerException

    state = PushState(target.remote)
    reporter.start(target)
    repo, tag = split_ref(target.remote)
    try:
        for item in client.images.push(repo, tag, stream=True, decode=True):
            if not isinstance(item, Mapping):
                continue
            layer = state.feed(item)
            reporter.update(target, state, layer)
    except DockerException as exc:
        state.error = state.error or str(exc).strip() or type(exc).__name__
    except Exception as exc:  # requests' connection errors and the like
        state.error = state.error or f"{type(exc).__name__}: {exc}"
    if state.error is None and state.digest is None:
        state.error = f"the stream ended without a digest (last: {state.last_status or '-'})"
    reporter.finish(target, state)
    return state


def push_all(
    client: docker.DockerClient, targets: Sequence[PushTarget], reporter: PushReporter
) -> list[PushState]:
    """Check every source exists, retag for ``--registry-url``, push one by one, stop at the
    first failure with one line naming the image and the registry. Temporary tags are removed."""
    from docker.errors import APIError

    found = lookup(client, dict.fromkeys(t.source for t in targets))
    missing = [ref for ref, img in found.items() if img is None]
    if missing:
        raise MissingImageError(
            f"missing local image(s): {', '.join(missing)}; nothing was pushed",
            hint="build or tag them first (`inv build.all`, `inv staging.tag`)",
        )
    # Registry-qualified tags point at the source image for the push, even when a tag of that
    # name already exists locally (a leftover could be another image); put them back after.
    retagged: dict[str, str | None] = {}
    results: list[PushState] = []
    try:
        for t in targets:
            if t.remote != t.source:
                img = found[t.source]
                assert img is not None
                before = find_image(client, t.remote)
                retagged[t.remote] = before.id if before is not None else None
                repo, tag = split_ref(t.remote)
                client.api.tag(img.id, repo, tag, force=True)
        for t in targets:
            state = push_one(client, t, reporter)
            results.append(state)
            if state.error is not None:
                first_line = state.error.strip().splitlines()[0] if state.error.strip() else "?"
                raise CommandFailed(
                    f"push of {t.remote} to registry {t.registry} failed: {first_line}",
                    hint="the images before it were pushed; rerun once the registry accepts "
                    "pushes (layers already there are skipped)",
                    output=state.error,
                )
    finally:
        for ref, before_id in retagged.items():
            with contextlib.suppress(APIError):
                if before_id is None:
                    client.api.remove_image(ref, noprune=True)
                else:
                    repo, tag = split_ref(ref)
                    client.api.tag(before_id, repo, tag, force=True)
    return results


def run_pushes(
    client: docker.DockerClient,
    targets: Sequence[PushTarget],
    out: Output,
    *,
    layers: bool = True,
) -> list[PushState]:
    """:func:`push_all` with live progress on a terminal, plain lines otherwise."""
    started = time.monotonic()
    if out.plain or out.json_mode:
        results = push_all(client, targets, PlainPushReporter(out, layers=layers))
    else:
        with LivePushReporter(out, layers=layers) as live:
            results = push_all(client, targets, live)
    out.step(f"pushed {len(results)} tag(s) in {time.monotonic() - started:.1f}s")
    return results
