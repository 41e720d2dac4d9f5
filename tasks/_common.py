"""Helpers for the task layer only: resolve settings from Invoke's config, map errors to Exit."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke import Context, Exit

from tasks.lib.config import Settings, resolve
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


@contextmanager
def task_errors(out: Output | None = None) -> Iterator[None]:
    """Turn the core's TaskError into one clear line on stderr and its exit code."""
    try:
        yield
    except TaskError as exc:
        (out or Output()).error(exc.line())
        raise Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        (out or Output()).error("interrupted")
        raise Exit(code=130) from None
