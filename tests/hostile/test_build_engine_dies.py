"""The engine dies in the middle of build.all: exit 3 (the engine went away, not "a command
failed"), one line naming what was built and what was not, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.engine.second_engine import SecondEngine, require_second_engine

pytestmark = pytest.mark.engine

PROJECT = Path(__file__).resolve().parents[2]


def test_the_engine_going_away_mid_build_is_exit_3_with_an_account(example_copy: Path) -> None:
    require_second_engine()
    df = example_copy / "apps/web/Dockerfile"
    df.write_text(
        df.read_text().replace(
            "FROM base AS builder\n",
            f"FROM base AS builder\nRUN echo {uuid.uuid4().hex} && sleep 60\n",
            1,
        )
    )
    with SecondEngine() as engine:
        env = {**os.environ, "NO_COLOR": "1", "DOCKER_HOST": engine.host}
        env.pop("DOCKER_CONTEXT", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "invoke",
                "build.all",
                "--root",
                str(example_copy),
                "--registry",
                "t10die",
            ],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 90
            client = engine.client()
            try:
                while time.monotonic() < deadline:  # until gateway and translator are built
                    tags = {t for i in client.images.list() for t in i.tags}
                    if {"t10die/meeshy-gateway:latest", "t10die/meeshy-translator:latest"} <= tags:
                        break
                    time.sleep(0.5)
                else:
                    raise AssertionError("gateway and translator were never built")
            finally:
                client.close()
            time.sleep(2)  # web is in its long step
            engine.stop()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 3, (out, err)
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("ERROR:")][-1]
    assert "went away" in line, line
    assert "built: gateway, translator:cpu" in line and "not built: web" in line, line
