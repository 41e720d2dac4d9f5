"""The one ``docker compose`` wrapper (:mod:`tasks.lib.compose.files`): the flags each caller's
client carries, read from python-on-whales' own command line (nothing runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.lib.compose.files import compose_client
from tasks.lib.engine import EngineTarget
from tasks.lib.stack import compose
from tasks.lib.stack.plan import ALL_PROFILES, Stack

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")


def _argv(cmd: list[object]) -> list[str]:
    return [str(a) for a in cmd[1:]]  # without the docker binary's path


def test_staging_compose_files_with_their_project_directory(tmp_path: Path) -> None:
    """staging.compose: the files and the project directory (whose .env compose reads), the
    CLI's default engine."""
    prod = tmp_path / "prod.yml"
    client = compose_client([prod], tmp_path)
    assert _argv(client.client_config.docker_compose_cmd) == [
        "compose", "--file", str(prod), "--project-directory", str(tmp_path),
    ]  # fmt: skip


def test_a_stack_with_its_env_file_profiles_project_and_engine(tmp_path: Path) -> None:
    """stack.*: the stack's file, every profile, its env file and project, on the task's
    engine (named by DOCKER_HOST here: the CLI reads it itself, no engine flag)."""
    stack = Stack("dev", tmp_path / "dev.yml", "meeshy-dev", tmp_path / ".env.example")
    target = EngineTarget(env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    cmd = compose.client(stack, target, ALL_PROFILES).client_config.docker_compose_cmd
    assert _argv(cmd) == [
        "compose", "--file", str(tmp_path / "dev.yml"), "--profile", "*",
        "--env-file", str(tmp_path / ".env.example"), "--project-name", "meeshy-dev",
    ]  # fmt: skip
