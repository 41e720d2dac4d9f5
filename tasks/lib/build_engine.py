"""Executes a build plan on BuildKit: every image in its own ``docker buildx build``, all at
once, so one failing image never cancels the others (bake is fail-fast: docker/buildx#3297).

Each build streams BuildKit's plain progress through python-on-whales; the lines drive a
:class:`Reporter` (live view or plain lines) and the last ones are kept for the failure tail.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

from tasks.lib.build_plan import ImageBuild
from tasks.lib.engine import EngineTarget

if TYPE_CHECKING:
    import docker

STEP_RE = re.compile(r"^#(\d+) \[(?:(?P<stage>[^\]\s]+) )?(?P<step>\d+/\d+)\] (?P<text>.*)$")
INTERNAL_RE = re.compile(r"^#(\d+) \[internal\] (?P<text>.*)$")
EXPORT_RE = re.compile(r"^#(\d+) (?P<text>exporting .*|naming to .*|pushing .*)$")
TAIL_LINES = 30


@dataclass
class BuildResult:
    image: ImageBuild
    ok: bool = False
    seconds: float = 0.0
    image_id: str | None = None
    size: int | None = None
    error: str | None = None
    tail: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.ok:
            return "failed"
        return "pushed" if self.image.push else "built"


class Reporter(Protocol):
    def started(self, image: ImageBuild) -> None: ...
    def progress(self, image: ImageBuild, stage: str, step: str, text: str) -> None: ...
    def line(self, image: ImageBuild, line: str) -> None: ...
    def finished(self, result: BuildResult) -> None: ...


class NullReporter:
    def started(self, image: ImageBuild) -> None:
        pass

    def progress(self, image: ImageBuild, stage: str, step: str, text: str) -> None:
        pass

    def line(self, image: ImageBuild, line: str) -> None:
        pass

    def finished(self, result: BuildResult) -> None:
        pass


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


def build_one(image: ImageBuild, stream: LogStream, reporter: Reporter) -> BuildResult:
    result = BuildResult(image=image)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    reporter.started(image)
    try:
        for raw in stream(image):
            line = raw.rstrip("\n")
            tail.append(line)
            reporter.line(image, line)
            parsed = parse_progress(line)
            if parsed:
                stage, step, text = parsed
                if stage and stage not in result.stages and stage != "export":
                    result.stages.append(stage)
                reporter.progress(image, stage, step, text)
        result.ok = True
    except Exception as exc:  # a failed build must not stop the others
        result.error = _error_text(exc)
        stderr = getattr(exc, "stderr", None)
        if stderr and not tail:
            tail.extend(str(stderr).splitlines()[-TAIL_LINES:])
    result.seconds = time.monotonic() - started
    result.tail = list(tail)
    reporter.finished(result)
    return result


def run_builds(
    images: Sequence[ImageBuild],
    stream: LogStream,
    reporter: Reporter,
    *,
    max_parallel: int | None = None,
) -> list[BuildResult]:
    """Build every image concurrently; results in plan order, failures kept apart."""
    if not images:
        return []
    workers = max(1, min(max_parallel or len(images), len(images)))
    lock = threading.Lock()

    class _Locked:
        def started(self, image: ImageBuild) -> None:
            with lock:
                reporter.started(image)

        def progress(self, image: ImageBuild, stage: str, step: str, text: str) -> None:
            with lock:
                reporter.progress(image, stage, step, text)

        def line(self, image: ImageBuild, line: str) -> None:
            with lock:
                reporter.line(image, line)

        def finished(self, result: BuildResult) -> None:
            with lock:
                reporter.finished(result)

    safe = _Locked()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="build") as pool:
        futures = [pool.submit(build_one, img, stream, safe) for img in images]
        return [f.result() for f in futures]


def inspect_results(results: Sequence[BuildResult], client: docker.DockerClient) -> None:
    """Fill image id and size for the images that landed in the local store."""
    from docker.errors import DockerException as SdkError

    for r in results:
        if not (r.ok and r.image.tags):
            continue
        try:
            img = client.images.get(r.image.tags[0])
        except SdkError:
            continue
        r.image_id = img.short_id.split(":", 1)[-1]
        r.size = int(img.attrs.get("Size") or 0)
