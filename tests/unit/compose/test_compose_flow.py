"""staging.compose's preflight: paths and flags refused before anything is generated."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tasks.lib.compose.flow import DEFAULT_PROD, STAGING_NAME, resolve_job
from tasks.lib.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "example"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / Path(DEFAULT_PROD).parent
    folder.mkdir(parents=True)
    shutil.copy(EXAMPLE / DEFAULT_PROD, folder)
    return tmp_path


def job_error(root: Path, out: str = "", prod: str = DEFAULT_PROD, offset: int = 10000) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_job(root, prod, out, port_offset=offset, ports={}, probe_ports=False)
    assert info.value.exit_code == 2
    return info.value.line()


def test_default_job(root: Path) -> None:
    job = resolve_job(
        root, DEFAULT_PROD, "", port_offset=10000, ports={80: 8080}, probe_ports=False
    )
    assert job.prod == (root / DEFAULT_PROD).resolve()
    assert job.out == job.prod.parent / STAGING_NAME
    assert job.options.port_map == {80: 8080}


def test_missing_prod(root: Path) -> None:
    assert "prod compose file nope.yml not found" in job_error(root, prod="nope.yml")


def test_prod_directory(root: Path) -> None:
    assert "is not a regular file" in job_error(root, prod="infrastructure")


def test_staging_path_is_a_directory(root: Path) -> None:
    (root / DEFAULT_PROD).with_name(STAGING_NAME).mkdir()
    line = job_error(root)
    assert line.endswith(
        f"{STAGING_NAME} is a directory: remove it, or write elsewhere with --out FILE"
    )


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_staging_path_linked_to_prod_is_refused(root: Path, link: str) -> None:
    prod = root / DEFAULT_PROD
    staging = prod.with_name(STAGING_NAME)
    if link == "symlink":
        staging.symlink_to(prod.name)
    else:
        os.link(prod, staging)
    assert job_error(root).endswith("is the prod compose file: the prod file is never written")


def test_out_is_prod(root: Path) -> None:
    assert job_error(root, out=DEFAULT_PROD).startswith(f"--out {DEFAULT_PROD} is the prod")


def test_fifo_is_refused(root: Path) -> None:
    os.mkfifo((root / DEFAULT_PROD).with_name(STAGING_NAME))
    assert "is not a regular file" in job_error(root)


def test_symlink_out_of_the_folder_is_refused(root: Path, tmp_path: Path) -> None:
    (root / DEFAULT_PROD).with_name(STAGING_NAME).symlink_to(tmp_path / "elsewhere.yml")
    assert "is not in the prod file's folder" in job_error(root)


@pytest.mark.parametrize("offset", [0, -1, 65535, 70000])
def test_offset_out_of_range(root: Path, offset: int) -> None:
    assert f"--port-offset {offset} is out of range" in job_error(root, offset=offset)
