"""Executes a build plan on BuildKit: every image in its own ``docker buildx build``, all at
once, so one failing image never cancels the others (bake is fail-fast: docker/buildx#3297).

Each build streams BuildKit's plain progress through python-on-whales; the lines drive the one
Progress protocol (live view or plain lines) and the last ones are kept for the failure tail.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from tasks.lib import processes
from tasks.lib.build.plan import ImageBuild
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import TaskError
from tasks.lib.images.store import short_id
from tasks.lib.progress import Progress, Status

if TYPE_CHECKING:
    import docker

STEP_RE = re.compile(r"^#(\d+) \[(?:(?P<stage>[^\]\s]+) )?(?P<step>\d+/\d+)\] (?P<text>.*)$")
INTERNAL_RE = re.compile(r"^#(\d+) \[internal\] (?P<text>.*)$")
EXPORT_RE = re.compile(r"^#(\d+) (?P<text>exporting .*|naming to .*|pushing .*)$")
TAIL_LINES = 30


@dataclass
class BuildResult:
    image: ImageBuild
    status: Status = Status.QUEUED
    seconds: float = 0.0
    image_id: str | None = None  # the image this run built (tagged) or found up to date
    size: int | None = None
    error: str | None = None
    reason: str = ""  # why it was built or skipped (the input key's verdict)
    tail: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    moved: str | None = None  # an input that changed during the build: the label is not true

    @property
    def ok(self) -> bool:
        return self.status.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image.name,
            "service": self.image.service,
            "variant": self.image.variant,
            "tags": list(self.image.tags),
            "image_id": short_id(self.image_id) if self.image_id else None,
            "size": self.size,
            "seconds": round(self.seconds, 3),
            "result": self.status.value,
            "reason": self.reason,
            "error": self.error,
            "stages": self.stages,
        }


def parse_progress(line: str) -> tuple[str, str, str] | None:
    """``(stage, step, text)`` from a BuildKit plain-progress step line, else None."""
    m = STEP_RE.match(line)
    if m:
        return (m.group("stage") or "", m.group("step"), m.group("text"))
    m = EXPORT_RE.match(line)
    if m:
        return ("export", "", m.group("text"))
    return None


LogStream = Callable[[ImageBuild], Iterator[str]]
# After a build that ended well: check its inputs, tag it or fail it (sets status and error)
Land = Callable[["BuildResult"], None]


def whales_stream(target: EngineTarget) -> LogStream:
    """Run each build through python-on-whales, streaming its log lines."""
    from tasks.lib.engine import whales_client

    client = whales_client(target)

    def stream(image: ImageBuild) -> Iterator[str]:
        logs = client.buildx.build(**image.whales_kwargs())  # stream_logs=True: an iterator
        yield from cast(Iterator[str], logs)

    return stream


def _error_text(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    code = getattr(exc, "return_code", None)
    if stderr:
        lines = [ln for ln in str(stderr).strip().splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()
    if code is not None:
        return f"docker buildx build exited with {code}"
    return f"{type(exc).__name__}: {exc}"


def build_one(
    image: ImageBuild, stream: LogStream, progress: Progress, land: Land | None = None
) -> BuildResult:
    result = BuildResult(image=image, status=Status.RUNNING)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    progress.start(image.name, text="starting")
    try:
        for raw in stream(image):
            line = raw.rstrip("\n")
            tail.append(line)
            progress.update(image.name, line=line)
            parsed = parse_progress(line)
            if parsed:
                stage, step, text = parsed
                if stage and stage not in result.stages and stage != "export":
                    result.stages.append(stage)
                progress.update(image.name, stage=stage, text=f"{step} {text}".strip())
        result.status = Status.PUSHED if image.push else Status.BUILT
    except Exception as exc:  # a failed build must not stop the others
        result.status = Status.FAILED
        result.error = _error_text(exc)
        stderr = getattr(exc, "stderr", None)
        if stderr and not tail:
            tail.extend(str(stderr).splitlines()[-TAIL_LINES:])
    result.tail = list(tail)
    if processes.stopping.is_set() and result.status is not Status.PUSHED:
        # stopped by a signal (buildx may still exit 0): its image gets no tag, and
        # run_builds says "cancelled"
        result.status = Status.CANCELLED
        result.seconds = time.monotonic() - started
        return result
    if result.ok and land is not None:
        try:
            land(result)  # runs to its end even if a signal comes now: all tags or none
        except Exception as exc:  # the engine refused or went away: the others go on
            why = exc.line() if isinstance(exc, TaskError) else _error_text(exc)
            result.status = Status.FAILED
            result.error = f"built, but not tagged: {why}"
    result.seconds = time.monotonic() - started
    progress.finish(image.name, result.status, text=result.error or "")
    return result


def run_builds(
    images: Sequence[ImageBuild],
    stream: LogStream,
    progress: Progress,
    *,
    stop: Callable[[], object] | None = None,
    land: Land | None = None,
) -> list[BuildResult]:
    """Build every image concurrently; results in plan order, failures kept apart.

    A signal (``Interrupted``, KeyboardInterrupt) in the main thread calls ``stop`` (which
    ends the docker CLI processes: BuildKit cancels their solves, no tag moves), waits for
    the builds to wind down, marks the unfinished ones cancelled, and re-raises with the
    results attached, so the caller can say what was and was not built."""
    if not images:
        return []
    pool = ThreadPoolExecutor(max_workers=len(images), thread_name_prefix="build")
    processes.stopping.clear()
    futures = [pool.submit(build_one, img, stream, progress, land) for img in images]
    try:
        results = [f.result() for f in futures]
    except BaseException as exc:
        finished_before = {i for i, f in enumerate(futures) if f.done()}
        processes.stopping.set()
        if stop is not None:
            stop()
        pool.shutdown(wait=True, cancel_futures=True)
        results = []
        for i, (img, f) in enumerate(zip(images, futures, strict=True)):
            r = f.result() if f.done() and not f.cancelled() else BuildResult(image=img)
            if i not in finished_before and not r.ok:  # one tagged meanwhile stays built
                r.status = Status.CANCELLED
                r.error = None
                progress.finish(img.name, Status.CANCELLED)
            results.append(r)
        exc.results = results  # type: ignore[attr-defined]
        raise
    pool.shutdown(wait=True)
    return results


def inspect_results(results: Sequence[BuildResult], client: docker.DockerClient) -> None:
    """Fill image id and size for the images that landed in the local store (one list call)."""
    from tasks.lib.images.store import find_images

    wanted = [r.image.tags[0] for r in results if r.ok and r.image.tags]
    found = find_images(client, wanted)
    for r in results:
        img = found.get(r.image.tags[0]) if r.ok and r.image.tags else None
        if img is not None:
            r.image_id = r.image_id or img.id  # land set it for a built image: that one
            r.size = img.size
