"""Hostile runs of ``images.validate``: a signal or SIGKILL while it reads the schema file out
of an image must leave no container behind (a leftover ``created`` container also makes
``docker.ensure`` wait for it).

The task runs as the real CLI (``python -m invoke``, ``NO_COLOR=1``, a session of its own).
To signal at an exact point, a ``sitecustomize`` on ``PYTHONPATH`` wraps the docker SDK's
``create_container``: the process signals itself right after the engine answered. The
signal, the handlers and the engine are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.images.files import READER_LABEL, remove_stale_readers
from tests.integration.registry import EXAMPLE, example_images

__all__ = ["example_images"]  # the fixture, imported explicitly

pytestmark = pytest.mark.engine
PROJECT = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = """
import os, signal
_sig = os.environ.get("T4_SIGNAL_AFTER_CREATE", "")
if _sig:
    import docker.api.container as _container

    _create = _container.ContainerApiMixin.create_container

    def create_container(self, *args, **kwargs):
        result = _create(self, *args, **kwargs)
        os.kill(os.getpid(), getattr(signal, _sig))
        return result

    _container.ContainerApiMixin.create_container = create_container
"""


def validate(registry: str, tmp_path: Path, signal_name: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT)]),
        "T4_SIGNAL_AFTER_CREATE": signal_name,
    }
    args = ["images.validate", "--service", "gateway", "--root", str(EXAMPLE)]
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args, "--registry", registry],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        check=False,
    )


def made_from(sdk: Any, ref: str) -> list[str]:
    return [str(c["Id"]) for c in sdk.api.containers(all=True, filters={"ancestor": ref})]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_right_after_the_reader_is_created_leaves_no_container(
    example_images: str, sdk: Any, tmp_path: Path, signal_name: str
) -> None:
    # found by review: the signal arrived before `containers.create` returned the container,
    # so the `finally` that removes it never knew it: a `created` container per Ctrl-C
    ref = f"{example_images}/meeshy-gateway:v1.0.40"
    before = made_from(sdk, ref)
    try:
        proc = validate(example_images, tmp_path, signal_name)
        assert proc.returncode in (130, 143), proc.stderr
        assert "interrupted by" in proc.stderr
        assert made_from(sdk, ref) == before
    finally:
        for cid in set(made_from(sdk, ref)) - set(before):
            sdk.api.remove_container(cid, force=True)


def test_a_reader_left_by_a_killed_run_is_removed_by_a_later_read(
    example_images: str, sdk: Any, tmp_path: Path
) -> None:
    ref = f"{example_images}/meeshy-gateway:v1.0.40"
    before = made_from(sdk, ref)
    try:
        proc = validate(example_images, tmp_path, "SIGKILL")
        assert proc.returncode == -9
        left = [c for c in made_from(sdk, ref) if c not in before]
        assert len(left) == 1  # what SIGKILL leaves: one reader, found by its label
        labels = sdk.api.inspect_container(left[0])["Config"]["Labels"]
        assert READER_LABEL in labels
        remove_stale_readers(sdk)  # younger than a minute: maybe another run's live reader
        assert left[0] in made_from(sdk, ref)
        remove_stale_readers(sdk, older_than=0)  # once old enough, the next read removes it
        assert made_from(sdk, ref) == before
    finally:
        for cid in set(made_from(sdk, ref)) - set(before):
            sdk.api.remove_container(cid, force=True)
