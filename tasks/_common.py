"""Helpers for the task layer only: resolve settings from Invoke's config, map errors to Exit."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke import Context, Exit

from tasks.lib.config import Settings, resolve
from tasks.lib.engine import EngineTarget
from tasks.lib.errors import TaskError
from tasks.lib.output import Output

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Help strings shared by many tasks, so every flag is documented the same way.
HELP: dict[str, str] = {
    "root": "the Meeshy monorepo (default: config meeshy.root, or $MEESHY_ROOT)",
    "registry": "image namespace (default: isopen, or $DOCKER_REGISTRY)",
    "context": "Docker context to talk to (default: $DOCKER_HOST / $DOCKER_CONTEXT / current)",
    "dry_run": "print exactly what would be done, change nothing (needs no engine)",
    "json": "machine-readable output on stdout",
    "builder": "buildx builder to use (any driver: docker, docker-container, remote, kubernetes)",
    "platform": "target platform(s), comma-separated, e.g. linux/amd64,linux/arm64",
    "no_cache": "build without BuildKit's cache",
    "push": "push the tags as they are built (buildx --push)",
    "progress": "auto (live view on a terminal, a line per step otherwise), plain (every "
    "BuildKit line), quiet (summary only)",
    "skip_schema_check": "DANGER: build without proving the image uses the shared schema",
}


def meeshy_config(c: Context) -> Mapping[str, Any]:
    raw = c.config.get("meeshy", {})
    # Invoke's DataProxy -> plain dicts (recursively) for validation.
    plain: Mapping[str, Any] = _plain(raw)
    return plain


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def settings(
    c: Context,
    *,
    root: str | None = None,
    registry: str | None = None,
    context: str | None = None,
    builder: str | None = None,
) -> Settings:
    return resolve(
        meeshy_config(c),
        env=os.environ,
        project_dir=PROJECT_DIR,
        root=root or None,
        registry=registry or None,
        docker_context=context or None,
        builder=builder or None,
    )


def engine_target(c: Context, context: str = "") -> EngineTarget:
    """The engine for tasks that need no monorepo (volumes, docker.ensure): ``--context``,
    else config ``meeshy.docker_context``, else DOCKER_HOST / DOCKER_CONTEXT / current."""
    return EngineTarget(context=context or str(meeshy_config(c).get("docker_context") or ""))


@contextmanager
def task_errors(out: Output | None = None) -> Iterator[None]:
    """Turn the core's TaskError, and any error the Docker libraries raise, into one clear
    line on stderr and an exit code: no tracebacks for the user."""
    try:
        yield
    except TaskError as exc:
        (out or Output()).error(exc.line())
        raise Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        (out or Output()).error("interrupted")
        raise Exit(code=130) from None
    except Exception as exc:
        line = _docker_error_line(exc)
        if line is None:
            raise
        (out or Output()).error(line)
        raise Exit(code=1) from None


def _docker_error_line(exc: Exception) -> str | None:
    """One line for an error from the docker SDK, python-on-whales or requests; else None."""
    module = type(exc).__module__
    if not module.startswith(("docker", "python_on_whales", "requests", "urllib3")):
        return None
    text = str(getattr(exc, "explanation", None) or getattr(exc, "stderr", None) or exc)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    detail = lines[-1] if lines else type(exc).__name__
    return f"Docker error: {detail}: check the engine (`inv docker.ensure`) and rerun"
