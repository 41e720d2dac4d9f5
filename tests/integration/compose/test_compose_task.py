"""staging.compose through the real CLI: writes a valid file, never the prod one, refuses
overwrites without --force, shows a diff on --dry-run, refuses input that is not compose."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from tests.cli import run_inv

pytestmark = pytest.mark.engine  # needs the compose v2 CLI plugin

PROD = "infrastructure/docker/compose/docker-compose.prod.yml"
OUT = "infrastructure/docker/compose/docker-compose.staging.yml"


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_generates_valid_file_and_never_touches_prod(example_copy: Path) -> None:
    prod = example_copy / PROD
    before = _sha(prod)
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 0, r
    assert _sha(prod) == before
    out = example_copy / OUT
    data = yaml.safe_load(out.read_text())
    assert data["name"] == "meeshy-staging"
    assert data["services"]["gateway"]["image"] == "${GATEWAY_IMAGE:-isopen/meeshy-gateway:staging}"
    assert "Host files SHARED with prod" in r.out
    assert "./secrets/firebase-admin.json" in r.out


def test_existing_output_needs_force_and_dry_run_shows_diff(example_copy: Path) -> None:
    out = example_copy / OUT
    out.write_text("# hand-written\nservices: {}\n")
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 2, r
    assert "exists and differs: pass --force" in r.err
    assert out.read_text() == "# hand-written\nservices: {}\n"
    r = run_inv("staging.compose", "--root", str(example_copy), "--dry-run")
    assert r.code == 0, r
    assert "-# hand-written" in r.out and "+name: meeshy-staging" in r.out
    assert out.read_text() == "# hand-written\nservices: {}\n"
    r = run_inv("staging.compose", "--root", str(example_copy), "--force")
    assert r.code == 0, r
    assert "meeshy-staging" in out.read_text()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("just: [a, list]\n", "is not a compose file", id="no-services"),
        pytest.param("- 1\n- 2\n", "is not a compose file", id="a-list"),
        pytest.param("services: [unclosed\n", "is not a compose file", id="bad-yaml"),
    ],
)
def test_not_compose_is_refused(example_copy: Path, content: str, fragment: str) -> None:
    bad = example_copy / "notcompose.yml"
    bad.write_text(content)
    r = run_inv("staging.compose", "--root", str(example_copy), "--prod", "notcompose.yml")
    assert r.code == 2, r
    assert fragment in r.err
    assert not (example_copy / OUT).exists()


def test_out_equal_to_prod_is_refused(example_copy: Path) -> None:
    before = _sha(example_copy / PROD)
    r = run_inv("staging.compose", "--root", str(example_copy), "--out", PROD, "--force")
    assert r.code == 2, r
    assert "the prod file is never written" in r.err
    assert _sha(example_copy / PROD) == before


def test_port_map_flag(example_copy: Path) -> None:
    r = run_inv("staging.compose", "--root", str(example_copy), "--port", "3000:23000", "--json")
    assert r.code == 0, r
    import json

    info = json.loads(r.out)
    assert {"service": "gateway", "prod": "3000:3000", "staging": "23000:3000"} in info[
        "port_moves"
    ]


def test_rerun_while_staging_runs_keeps_its_ports(example_copy: Path) -> None:
    """Ports the existing staging file publishes are staging's own: a rerun while they are
    busy (staging running) must not move them."""
    import socket

    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 0, r
    out = example_copy / OUT
    before = out.read_text()
    assert "13000:3000" in before
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("0.0.0.0", 13000))
        held.listen(1)
        r = run_inv("staging.compose", "--root", str(example_copy), "--dry-run")
        assert r.code == 0, r
        assert "unchanged" in r.out
        # a busy port that is NOT staging's own still moves to the next free one
        out.unlink()
        r = run_inv("staging.compose", "--root", str(example_copy), "--json")
        assert r.code == 0, r
        import json

        moves = {m["prod"]: m["staging"] for m in json.loads(r.out)["port_moves"]}
        assert moves["3000:3000"] == "13001:3000"


def test_out_in_another_folder_is_refused(example_copy: Path, tmp_path: Path) -> None:
    """Relative bind mounts (the gateway's secrets file) resolve from the file's folder: a
    staging file written elsewhere would mount the wrong path."""
    elsewhere = tmp_path / "elsewhere" / "docker-compose.staging.yml"
    r = run_inv("staging.compose", "--root", str(example_copy), "--out", str(elsewhere))
    assert r.code == 2, r
    assert "is not in the prod file's folder" in r.err
    assert not elsewhere.exists()


def test_rerun_keeps_an_unquoted_port_of_the_staging_file(example_copy: Path) -> None:
    """The existing staging file's ports are staging's own: read with PyYAML's safe_load an
    unquoted ``10022:22`` was the integer 601342, the port was not recognised, and a rerun
    while staging ran moved it to 10023."""
    import json
    import socket

    prod = example_copy / PROD
    prod.write_text(
        prod.read_text().replace('      - "3000:3000"\n', '      - "3000:3000"\n      - "22:22"\n')
    )
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 0, r
    out = example_copy / OUT
    assert "- '10022:22'" in out.read_text()
    out.write_text(out.read_text().replace("- '10022:22'", "- 10022:22"))  # edited by hand
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            held.bind(("0.0.0.0", 10022))
        except OSError:
            pytest.skip("port 10022 is in use on this host")
        held.listen(1)
        r = run_inv("staging.compose", "--root", str(example_copy), "--dry-run", "--json")
    assert r.code == 0, r
    moves = {m["prod"]: m["staging"] for m in json.loads(r.out)["port_moves"]}
    assert moves["22:22"] == "10022:22"


def test_json_reports_mode_urls_and_state(example_copy: Path) -> None:
    import json

    r = run_inv("staging.compose", "--root", str(example_copy), "--json")
    assert r.code == 0, r
    info = json.loads(r.out)
    assert info["written"] is True and info["state"] == "new" and info["dry_run"] is False
    assert info["status"] == "done"
    umask = os.umask(0o022)
    os.umask(umask)
    assert info["mode"] == f"{0o666 & ~umask:04o}"
    assert "https://gate.staging.meeshy.me" in info["urls"]
    assert "content" not in info
    r = run_inv("staging.compose", "--root", str(example_copy), "--json")
    info = json.loads(r.out)
    assert info["written"] is False and info["state"] == "unchanged"
    assert info["status"] == "up to date"
    r = run_inv("staging.compose", "--root", str(example_copy), "--json", "--dry-run")
    info = json.loads(r.out)
    assert info["dry_run"] is True and info["content"].startswith("# GENERATED")
    assert info["status"] == "skipped"
    assert info["diff"] == ""


def test_separation_refusal_when_an_env_variable_gives_prod_staging_port(
    example_copy: Path,
) -> None:
    """A host port prod reads from a variable becomes staging's literal port; if the
    environment gives prod that same port, nothing is written."""
    prod = example_copy / PROD
    prod.write_text(prod.read_text().replace('"3000:3000"', '"${GATEWAY_PORT:-3000}:3000"'))
    r = run_inv("staging.compose", "--root", str(example_copy), env={"GATEWAY_PORT": "13000"})
    assert r.code == 2, r
    assert r.err.strip().startswith(
        "ERROR: the staging file would share with prod: host port 13000/tcp is published by "
        "both (prod service 'gateway', staging service 'gateway')"
    )
    assert not (example_copy / OUT).exists()


def test_a_host_folder_of_prod_writable_by_staging_is_refused(
    example_copy: Path, tmp_path: Path
) -> None:
    """A hostile review wrote prod's data from staging: a named volume bound to a host
    folder (driver_opts device) kept its folder in the staging file, which passed as
    "shares nothing with prod". Such a file is now refused, and nothing is written."""
    prod = example_copy / PROD
    data = tmp_path / "prod-data"
    prod.write_text(
        "name: meeshy\n"
        "services:\n"
        "  writer:\n"
        "    image: busybox\n"
        "    volumes: [data:/d]\n"
        "volumes:\n"
        "  data:\n"
        "    driver: local\n"
        f"    driver_opts: {{type: none, o: bind, device: {data}}}\n"
    )
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 2, r
    assert f"host path '{data}' is mounted by prod (volume 'data')" in r.err
    assert "mount it read-only (:ro) or use a named volume" in r.err
    assert not (example_copy / OUT).exists()
