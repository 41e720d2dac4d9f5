"""Carry out a :class:`~tasks.lib.volumes.plan.CopyPlan` on an engine: one helper container
per pair does the whole job (scan, copy, both manifests), every pair at once.

How a copy stays honest:

* preflight before anything is written, for every pair: leftovers of a killed run are found
  by label and removed; the helper container is created under the target's one name (the
  lock: a second run cannot create it); the helpers report the target's state and the
  source's manifest; a populated target needs ``--force``, a target a running container uses
  is refused, and one refusal stops every pair (nothing is copied);
* the marker volume is created before the helper may write, and removed only after the
  target's manifest (and checksums) equal the source's: an interrupted or failed copy stays
  *incomplete*, and a rerun redoes it without ``--force``;
* the helper's stdin is this process: if it dies (even SIGKILL) the engine closes that stdin
  and the helper kills its work at once; it is created with AutoRemove, so nothing is left;
  on SIGINT/SIGTERM the task kills the helpers itself.
"""

from __future__ import annotations

import io
import queue
import signal
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tasks.lib.errors import (
    CommandFailed,
    ConfigError,
    EngineUnavailable,
    Interrupted,
    TaskError,
)
from tasks.lib.progress import Progress, Status
from tasks.lib.volumes import manifest as mf
from tasks.lib.volumes.plan import (
    COPY_OF_LABEL,
    HELPER_KIND,
    HELPER_LABEL,
    MARKER_LABEL,
    STALE_CREATED,
    TARGET_LABEL,
    CopyPlan,
    HelperSpec,
    VolumePair,
    marker_name,
)

if TYPE_CHECKING:
    import docker

    from tasks.lib.engine import EngineTarget

REMOVAL_WAIT = 10  # seconds to wait for the engine to remove an exited helper (AutoRemove)


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyResult:
    """What became of one pair."""

    source: str
    target: str
    status: Status
    before: str = ""
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    seconds: float = 0.0
    verified: str = ""
    kinds: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # what the helper could not keep (said before copying)
    error: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "status": self.status.value,
            "files": self.files,
            "dirs": self.dirs,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.mb_per_s, 2),
            "verified": self.verified,
            "target_before": self.before,
            "kinds": dict(self.kinds),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "error": self.error,
        }


@dataclass(frozen=True)
class CopyRun:
    results: tuple[CopyResult, ...]
    cleaned: tuple[str, ...] = ()  # leftover helper containers removed first

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.results]


def failure(run: CopyRun) -> CommandFailed | None:
    """One error for the pairs that did not copy (after the table is shown), else None."""
    bad = [r for r in run.results if r.status != Status.COPIED]
    if not bad:
        return None
    done = [r.target for r in run.results if r.status == Status.COPIED]
    return CommandFailed(
        "not copied: " + "; ".join(f"{r.target}: {r.error or r.status.value}" for r in bad),
        hint=(f"copied and verified: {', '.join(done)}; " if done else "")
        + "the failed targets stay marked incomplete; rerun to redo them (stop the source's "
        "writers if it changed during the copy)",
    )


def run_error(run: CopyRun, client: docker.DockerClient, target: EngineTarget) -> TaskError | None:
    """:func:`failure`, unless the helpers "stopped" because the engine (or the SSH link to
    it) went away: then that (exit 3), with the targets left marked incomplete."""
    from tasks.lib.engine import answers, unreachable

    failed = failure(run)
    if failed is None or answers(client):
        return failed
    gone = unreachable(target, ConnectionError("no answer after the copy"), lost=True)
    return EngineUnavailable(
        f"{gone.message}; {failed.message}",
        hint=(gone.hint + "; " if gone.hint else "")
        + "the failed targets stay marked incomplete until a rerun copies them",
    )


# -- engine helpers -----------------------------------------------------------------------------


def volumes(client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    """Every volume on the engine, by name: its record (driver options...), one call."""
    return {str(v["Name"]): v for v in client.api.volumes().get("Volumes") or []}


def volume_names(client: docker.DockerClient) -> set[str]:
    """Every volume name on the engine (one call)."""
    return set(volumes(client))


def ensure_helper_image(client: docker.DockerClient, image: str) -> None:
    """The helper image is local, or pulled; else ConfigError before anything starts."""
    from docker.errors import APIError, ImageNotFound
    from docker.utils import parse_repository_tag

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    repo, tag = parse_repository_tag(image)
    try:
        client.api.pull(repo, tag=tag or "latest")
    except APIError as exc:
        raise ConfigError(
            f"helper image {image!r} is not available locally and cannot be pulled",
            hint="`docker pull` it, or pass --helper-image IMAGE (any image with sh, cp, find, "
            "tar, stat, xargs, md5sum, truncate, dd, du: busybox, alpine, debian)",
        ) from exc


def _tar(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _manifest(files: Mapping[str, bytes], side: str, *, sums: bool) -> mf.Manifest:
    what = "source" if side == "src" else "target"
    try:
        m = mf.parse(
            files[f"{side}.names"], files[f"{side}.meta"], files[f"{side}.links"], what=what
        )
    except KeyError as exc:
        raise CommandFailed(f"the helper wrote no listing of the {what} ({exc})") from exc
    if not sums:
        return m
    digests: dict[bytes, str] = {}
    for name in sorted(files):
        if name.startswith(f"{side}.") and name.endswith(".sumnames"):
            stem = name.removesuffix(".sumnames")
            digests.update(mf.parse_sums(files[name], files.get(f"{stem}.sums", b""), what=what))
    return mf.Manifest(m.entries, digests)


def _within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or inside it (both normalised, absolute)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# -- one pair in flight -------------------------------------------------------------------------


@dataclass
class _Job:
    pair: VolumePair
    spec: HelperSpec
    created_target: bool = False
    container: str = ""
    sock: Any = None
    running: bool = False  # started: AutoRemove removes it once it exits
    ready: bool = False
    ended: bool = False
    went: bool = False  # told to copy: the target may be written from now on
    said_done: bool = False
    state: str = ""
    caps: dict[str, str] = field(default_factory=dict)
    before: str = ""
    source: mf.Manifest | None = None
    work: mf.Work | None = None
    notes: list[str] = field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0
    error: str = ""
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    files: dict[str, bytes] = field(default_factory=dict)  # the blobs it sent
    verify: str = "md5"  # --checksum by "diff" (byte for byte) or "md5" (both sides)
    content: str = ""  # "same" / "differ" when compared by diff
    result: CopyResult | None = None

    @property
    def key(self) -> str:
        return self.pair.target

    @property
    def precision(self) -> mf.Precision:
        nscp = self.caps.get("nscp") == "1"
        return mf.Precision(ns_files=nscp or self.caps.get("nstouch") == "1", ns_links=nscp)

    def why(self) -> str:
        """The helper's own reason, else its last stderr line."""
        return self.error or (self.stderr[-1] if self.stderr else "") or "the helper stopped"


Event = tuple[int, str, str, bytes]  # job index, "out" | "err" | "blob" | "eof", text, data


def _reader(index: int, sock: Any, events: queue.Queue[Event]) -> None:
    """Demultiplex one attach stream (a thread per helper): stdout into lines and blobs
    (``blob NAME SIZE`` then SIZE raw bytes), stderr into lines."""
    from docker.utils.socket import next_frame_header, read_exactly

    out = b""
    err = b""
    blob: tuple[str, int] | None = None
    try:
        while True:
            stream, size = next_frame_header(sock)
            if stream < 0:
                break
            data = read_exactly(sock, size)
            if stream != 1:
                *lines, err = (err + data).split(b"\n")
                for line in lines:
                    events.put((index, "err", line.decode("utf-8", "replace"), b""))
                continue
            out += data
            while True:
                if blob is not None:
                    name, want = blob
                    if len(out) < want:
                        break
                    events.put((index, "blob", name, out[:want]))
                    out, blob = out[want:], None
                    continue
                line, nl, rest = out.partition(b"\n")
                if not nl:
                    break
                out = rest
                text = line.decode("utf-8", "replace")
                word, _, args = text.partition(" ")
                if word == "blob":
                    name, _, count = args.rpartition(" ")
                    blob = (name.strip(), int(count))
                else:
                    events.put((index, "out", text, b""))
    except Exception:  # the socket closed under us: the end of this stream either way
        pass
    events.put((index, "eof", "", b""))


def _send(sock: Any, text: str) -> None:
    """A line to the helper's stdin (gone already: its end is on the way as an event)."""
    _send_bytes(sock, text.encode() + b"\n")


def _send_bytes(sock: Any, data: bytes) -> None:
    raw = getattr(sock, "_sock", sock)
    with suppress(OSError):
        raw.sendall(data)


def _close(sock: Any) -> None:
    """Close an attach socket: the SDK's SocketIO wrapper and the socket under it."""
    for part in (sock, getattr(sock, "_sock", None)):
        if part is not None:
            with suppress(Exception):
                part.close()


# -- the session --------------------------------------------------------------------------------


class CopySession:
    """``with CopySession(client, plan, existing) as s: notes = s.prepare(); s.run(progress)``
    (``existing``: :func:`volumes`, the engine's volumes when the plan was made).

    Leaving the block by an exception kills every helper at once (the copies they had begun
    stay marked incomplete); leaving it by a signal re-raises :class:`Interrupted` with the
    volumes that were done and those that were not."""

    def __init__(
        self,
        client: docker.DockerClient,
        plan: CopyPlan,
        existing: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.client = client
        self.plan = plan
        self.existing = dict(existing)
        self.jobs = [_Job(pair, plan.helper(pair)) for pair in plan.pairs]
        self.events: queue.Queue[Event] = queue.Queue()
        self.cleaned: list[str] = []
        self.progress: Progress | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> CopySession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop_all(kill=exc is not None)
        if isinstance(exc, KeyboardInterrupt | Interrupted):
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            raise Interrupted(signum, self._interrupted_line(signum)) from None

    def _interrupted_line(self, signum: int) -> str:
        done = [j.key for j in self.jobs if j.result and j.result.status == Status.COPIED]
        marked = [j.key for j in self.jobs if j.went and j.key not in done]
        untouched = [j.key for j in self.jobs if not j.went]
        parts = [f"interrupted by {signal.Signals(signum).name}"]
        parts.append("copied and verified: " + (", ".join(done) or "none"))
        if marked:
            parts.append("NOT done, marked incomplete (a rerun redoes them): " + ", ".join(marked))
        if untouched:
            parts.append("not started: " + ", ".join(untouched))
        return "; ".join(parts)

    def _stop_all(self, *, kill: bool) -> None:
        """Kill (or just let go) every helper, wait until the engine removed it, and drop
        target volumes this run created but never wrote. Cleanup never masks the error that
        brought us here, so it swallows the engine's complaints."""
        api = self.client.api
        for job in self.jobs:
            if not job.container:
                continue
            if not job.running:
                with suppress(Exception):
                    api.remove_container(job.container, force=True)
            elif kill and not job.ended:
                with suppress(Exception):
                    api.kill(job.container)
            _close(job.sock)
        for job in self.jobs:
            if job.container and job.running:
                with suppress(Exception):
                    api.wait(job.container, timeout=REMOVAL_WAIT, condition="removed")
            if job.created_target and not job.went:
                with suppress(Exception):
                    api.remove_volume(job.pair.target)

    # -- preflight ------------------------------------------------------------------------------

    def prepare(self) -> list[str]:
        """Every refusal before anything is written; the helpers left ready. Returns the
        warnings to show once before copying (what this helper cannot keep)."""
        self._clear_leftovers()
        bound = self._bound_to_a_source()
        if bound:
            raise ConfigError("refused, nothing copied: " + "; ".join(bound))
        ensure_helper_image(self.client, self.plan.helper_image)
        for job in self.jobs:
            if job.pair.target not in self.existing:
                self.client.api.create_volume(
                    job.pair.target, labels={COPY_OF_LABEL: job.pair.source}
                )
                job.created_target = True
        refused = [line for job in self.jobs if (line := self._create(job))]
        if refused:
            raise ConfigError("refused, nothing copied: " + "; ".join(refused))
        self._start_all()
        self._pump(lambda: all(j.ready or j.ended for j in self.jobs))
        stopped = [j for j in self.jobs if not j.ready]
        if stopped:
            raise CommandFailed(
                "helper stopped before it was ready: "
                + "; ".join(f"{j.key}: {j.why()}" for j in stopped),
                output="\n".join(line for j in stopped for line in j.stderr),
            )
        for job in self.jobs:
            self._preflight(job)
        problems = [p for job in self.jobs for p in self._refusals(job)]
        if problems:
            for job in self.jobs:
                _send(job.sock, "stop")
            self._pump(lambda: all(j.ended for j in self.jobs))
            raise ConfigError("refused, nothing copied: " + "; ".join(problems))
        return [f"{job.key}: {n[1:]}" for job in self.jobs for n in job.notes if n[0] == "!"]

    def _bound_to_a_source(self) -> list[str]:
        """Targets bound (``driver_opts: o=bind, device=...``) to a source's host folder, one
        inside it or one holding it, by the folders the volume records name: across the pairs
        of the run (staging-web bound into prod gateway's folder), before anything is
        created. Each helper checks its own pair, by device and inode (any driver)."""
        import posixpath

        def folder(v: Mapping[str, Any] | None) -> str | None:
            opts = (v or {}).get("Options") or {}
            if "bind" not in str(opts.get("o", "")).split(",") or not opts.get("device"):
                return None
            return posixpath.normpath(str(opts["device"]))

        vols = self.existing
        sources = [(j.pair.source, f) for j in self.jobs if (f := folder(vols.get(j.pair.source)))]
        out = []
        for job in self.jobs:
            t = folder(vols.get(job.pair.target))
            hit = next(
                (
                    (source, f)
                    for source, f in sources
                    if t and source != job.pair.source and (_within(t, f) or _within(f, t))
                ),
                None,
            )
            if hit:
                out.append(
                    f"{job.key}: is bound to {t}, the host folder of {hit[0]} ({hit[1]}), one "
                    "inside it or holding it: a copy would write that source; give the target "
                    "a folder of its own (`docker volume inspect` both)"
                )
        return out

    def _clear_leftovers(self) -> None:
        """Helpers of a run that was killed (exited, or created and never started) are
        removed; a live one means another copy is running: refused."""
        from docker.errors import APIError

        targets = set(self.plan.targets)
        busy: list[str] = []
        now = time.time()
        for c in self.client.api.containers(
            all=True, filters={"label": f"{HELPER_LABEL}={HELPER_KIND}"}
        ):
            labels = c.get("Labels") or {}
            name = ",".join(n.lstrip("/") for n in c.get("Names") or []) or c["Id"][:12]
            target = labels.get(TARGET_LABEL)
            live = c.get("State") in ("running", "restarting", "paused") or (
                c.get("State") == "created" and now - float(c.get("Created", 0)) < STALE_CREATED
            )
            if live:
                if target in targets:
                    busy.append(f"{target}: another copy is running (container {name})")
                continue
            with suppress(APIError):
                self.client.api.remove_container(c["Id"], force=True)
                self.cleaned.append(name)
        if busy:
            raise ConfigError("refused, nothing copied: " + "; ".join(busy))

    def _create(self, job: _Job) -> str:
        """Create the helper under its lock name; a refusal line when another run holds it."""
        from docker.errors import APIError
        from docker.types import Mount

        spec = job.spec
        host = self.client.api.create_host_config(
            auto_remove=True,
            network_mode="none",
            mounts=[
                Mount(m.path, m.volume, type="volume", read_only=m.read_only) for m in spec.mounts
            ],
        )
        try:
            made = self.client.api.create_container(
                spec.image,
                list(spec.command),
                name=spec.name,
                labels=dict(spec.labels),
                stdin_open=True,  # and StdinOnce: the stdin closes when this process goes
                host_config=host,
            )
        except APIError as exc:
            if exc.status_code == 409:
                return f"{job.key}: another copy is running (container {spec.name})"
            raise
        job.container = str(made["Id"])
        return ""

    def _start_all(self) -> None:
        """Attach to every helper, then start them all at once (a start takes ~0.2 s)."""
        for index, job in enumerate(self.jobs):
            job.sock = self.client.api.attach_socket(
                job.container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            threading.Thread(
                target=_reader, args=(index, job.sock, self.events), daemon=True
            ).start()
        errors: list[BaseException] = []

        def start(job: _Job) -> None:
            try:
                self.client.api.start(job.container)
                job.running = True
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(job,)) for job in self.jobs[1:]]
        for t in threads:
            t.start()
        start(self.jobs[0])
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _preflight(self, job: _Job) -> None:
        job.source = _manifest(job.files, "src", sums=False)
        if job.created_target:
            job.before = "absent"
        elif marker_name(job.key) in self.existing or job.state == "legacy-incomplete":
            job.before = "incomplete"
        else:
            job.before = job.state
        rebuild = job.caps.get("sparsecp") != "1"
        workers = max(1, min(int(job.caps.get("cpus", "1") or 1), 4))
        job.work = mf.partition(job.source, workers, rebuild_sparse=rebuild)
        # diff -rq would follow symlinks: byte comparison only for a source without any
        if not any(e.kind == "symlink" for e in job.source.entries.values()):
            job.verify = "diff"
        job.notes = _notes(job.source, job.work, job.precision)

    def _refusals(self, job: _Job) -> Iterator[str]:
        if job.state == "overlaps":
            yield (
                f"{job.key}: is the same host folder as {job.pair.source}, or one inside it or "
                "holding it (volumes bound to a host device): a copy would write the source; "
                "give the target a folder of its own (`docker volume inspect` both)"
            )
            return
        if job.before == "populated" and not self.plan.force:
            yield f"{job.key}: target is not empty (pass --force to replace its content)"
        users = [
            ",".join(n.lstrip("/") for n in c.get("Names") or [])
            for c in self.client.api.containers(filters={"volume": job.key})
            if c["Id"] != job.container
        ]
        if users:
            yield (
                f"{job.key}: in use by running container(s) {', '.join(sorted(users))}; "
                "stop the staging stack first"
            )

    # -- the copy -------------------------------------------------------------------------------

    def run(self, progress: Progress) -> CopyRun:
        """Copy every pair at once; each ends copied (verified) or failed."""
        self.progress = progress
        for job in self.jobs:
            assert job.source is not None and job.work is not None
            self.client.api.create_volume(
                marker_name(job.key), labels={MARKER_LABEL: job.key, COPY_OF_LABEL: job.pair.source}
            )
            if not job.work.whole:
                tar = _tar(job.work.files())
                _send_bytes(job.sock, f"put {len(tar)}\n".encode() + tar)
            job.started = time.monotonic()
            job.went = True
            progress.start(job.key, text=f"from {job.pair.source}", total=job.source.bytes)
            mode = "whole" if job.work.whole else "split"
            _send(job.sock, f"go {job.work.workers} {mode} {job.verify}")
        self._pump(lambda: all(j.ended for j in self.jobs))
        return CopyRun(tuple(j.result or self._failed(j) for j in self.jobs), tuple(self.cleaned))

    def _pump(self, until: Callable[[], bool]) -> None:
        while not until():
            try:
                index, kind, text, data = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            job = self.jobs[index]
            if kind == "blob":
                job.files[text] = data
            elif kind == "err":
                if text.strip():
                    job.stderr.append(text.strip())
            elif kind == "eof":
                self._ended(job)
            else:
                self._line(job, text)

    def _line(self, job: _Job, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "ready":
            state, *caps = rest.split()
            job.state = state
            job.caps = dict(c.partition("=")[::2] for c in caps)
            job.ready = True
        elif word == "progress" and self.progress is not None and rest.isdigit():
            self.progress.update(job.key, done=int(rest))
        elif word == "stage" and self.progress is not None:
            self.progress.update(job.key, stage=rest, text=_STAGES.get(rest, rest))
        elif word == "failed":
            job.error = rest
        elif word == "content":
            job.content = rest
        elif word == "verify":
            try:
                self._verify(job)
            except TaskError as exc:  # an unreadable listing fails this pair, not the others
                job.error = exc.message
                _send(job.sock, "fail")

    def _verify(self, job: _Job) -> None:
        from docker.errors import APIError

        assert job.source is not None
        files = job.files
        sums = self.plan.checksum and job.verify == "md5"
        source = mf.Manifest(
            job.source.entries, _manifest(files, "src", sums=True).sums if sums else None
        )
        target = _manifest(files, "dst", sums=sums)
        problems = mf.compare(source, target, precision=job.precision)
        if self.plan.checksum and job.verify == "diff" and job.content != "same":
            first = files.get("differences", b"").decode("utf-8", "backslashreplace")
            problems.append(f"content differs ({first.splitlines()[0] if first else 'diff'})")
        if problems:
            job.error = f"does not match {job.pair.source}: " + "; ".join(problems)
            _send(job.sock, "fail")
            return
        job.seconds = time.monotonic() - job.started
        _send(job.sock, "done")  # the helper exits while the marker goes
        try:
            self.client.api.remove_volume(marker_name(job.key))
        except APIError as exc:
            job.error = f"verified, but its marker volume stays: {exc.explanation or exc}"
            return
        job.said_done = True
        job.result = CopyResult(
            job.pair.source,
            job.key,
            Status.COPIED,
            job.before,
            source.files,
            source.dirs,
            source.bytes,
            job.seconds,
            _verified(self.plan.checksum, job.verify),
            source.kinds(),
            *_split_notes(job.notes),
        )

    def _ended(self, job: _Job) -> None:
        job.ended = True
        if self.progress is None:
            return
        if job.said_done and job.result is not None:
            r = job.result
            self.progress.finish(
                job.key,
                Status.COPIED,
                text=f"{r.files} files, {r.bytes} bytes, {r.verified} verified",
            )
        else:
            job.result = self._failed(job)
            self.progress.finish(job.key, Status.FAILED, text=job.result.error)

    def _failed(self, job: _Job) -> CopyResult:
        return CopyResult(
            job.pair.source,
            job.key,
            Status.FAILED if job.went else Status.CANCELLED,
            job.before,
            error=job.why(),
            notes=_split_notes(job.notes)[0],
            warnings=_split_notes(job.notes)[1],
        )


def _verified(checksum: bool, verify: str) -> str:
    """How the content was checked: ``content`` (byte for byte), ``md5``, or ``metadata``."""
    if not checksum:
        return "metadata"
    return "content" if verify == "diff" else "md5"


_STAGES = {
    "copy": "cp -a",
    "times": "directory owners, modes and times",
    "manifest": "listing the target",
    "checksum": "md5 of both sides",
    "compare": "every file compared byte for byte",
}


def _split_notes(notes: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(notes, warnings): a warning starts with ``!``."""
    return (
        tuple(n for n in notes if not n.startswith("!")),
        tuple(n[1:] for n in notes if n.startswith("!")),
    )


def _notes(m: mf.Manifest, work: mf.Work, precision: mf.Precision) -> list[str]:
    """What to say about a pair before copying; ``!`` first: a warning (something this
    helper cannot keep), else a note for the report."""
    notes: list[str] = []
    second = 1_000_000_000
    if not precision.ns_files:
        n = sum(1 for e in m.entries.values() if e.kind != "symlink" and e.mtime_ns % second)
        if n:
            notes.append(
                f"!the sub-second part of {n} modification times is cut (this "
                "helper's cp -a and touch -r keep whole seconds; try --helper-image debian)"
            )
    if not precision.ns_links:
        n = sum(1 for e in m.entries.values() if e.kind == "symlink" and e.mtime_ns % second)
        if n:
            notes.append(
                f"!{n} symlink(s) keep their own time to the second only (this "
                "helper's touch -h sets whole seconds)"
            )
    if work.sparse_in_full:
        notes.append(
            f"!{len(work.sparse_in_full)} sparse file(s) are written out in full: "
            "the volume has hard links, which only one cp -a of the whole volume keeps"
        )
    rebuilt = sum(len(s) for s in work.sparse)
    if rebuilt:
        notes.append(f"{rebuilt} sparse file(s) rebuilt with their holes (1 MiB chunks)")
    return notes
