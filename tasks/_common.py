"""Helpers for the task layer only: resolve settings from Invoke's config, map errors to Exit."""

from __future__ import annotations

import os
from pathlib import Path

from invoke import Context

from tasks.lib.config import Settings, resolve

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


# Transitional: the adapter lives in tasks/invoke_adapter.py; these names go with the last user.
from tasks.invoke_adapter import engine_target, meeshy_config, running  # noqa: E402


def settings(
    c: Context,
    *,
    root: str | None = None,
    registry: str | None = None,
    context: str | None = None,
    builder: str | None = None,
) -> Settings:
    from tasks.lib.engine import use_ssh_options

    s = resolve(
        meeshy_config(c),
        env=os.environ,
        project_dir=PROJECT_DIR,
        root=root or None,
        registry=registry or None,
        docker_context=context or None,
        builder=builder or None,
    )
    use_ssh_options(s.ssh)  # as tasks.invoke_adapter.settings does
    return s


task_errors = running
__all__ = ["HELP", "engine_target", "settings", "task_errors"]
