"""Ctrl-C while Python is still importing (the task modules, or the heavy libraries a task
loads): one line, exit 130, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
AID = Path(__file__).resolve().parent / "sigint_on_import"


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        # staging.py imports tasks.images by name while tasks.py loads the task modules
        pytest.param("tasks.images", ["--list"], id="loading-the-task-modules"),
        pytest.param(
            "tasks.lib.config", ["build.all", "--dry-run"], id="loading-the-config-defaults"
        ),
        pytest.param("docker", ["images.list"], id="a-task-importing-the-docker-sdk"),
        pytest.param("rich", ["staging.compose", "--dry-run"], id="a-task-importing-rich"),
    ],
)
def test_ctrl_c_during_imports_is_one_line(module: str, argv: list[str]) -> None:
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": str(AID),
        "MEESHY_TEST_SIGINT_ON_IMPORT": module,
    }
    env.pop("MEESHY_DEBUG", None)
    r = subprocess.run(
        [sys.executable, "-m", "invoke", *argv],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 130, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: interrupted"), r.stderr
