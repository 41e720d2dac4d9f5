"""staging.compose against odd files, closed output, unset secrets, bad flags: one line and an
exit code each time, never a traceback, never a half-written file, never the prod file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import PROJECT, run_inv

pytestmark = pytest.mark.engine  # the compose v2 CLI validates every generated file

PROD = "infrastructure/docker/compose/docker-compose.prod.yml"
OUT = "infrastructure/docker/compose/docker-compose.staging.yml"


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _inv(*args: str, umask: int = -1, stdout_closed: bool = False) -> tuple[int, str, str]:
    """The real CLI; with ``stdout_closed`` its stdout is a pipe nobody reads (closed at
    once, as ``| head`` ends up)."""
    with subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        umask=umask,
    ) as proc:
        if stdout_closed:
            assert proc.stdout is not None
            proc.stdout.close()
            proc.stdout = None
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"inv {' '.join(args)} still ran after 60 s (blocked?)")
    return proc.returncode, (out or b"").decode(), err.decode()


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- the file's mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_staging_file_gets_0666_minus_umask(example_copy: Path, umask: int) -> None:
    code, _out, err = _inv("staging.compose", "--root", str(example_copy), umask=umask)
    assert code == 0, err
    assert _mode(example_copy / OUT) == 0o666 & ~umask


def test_force_keeps_the_existing_mode(example_copy: Path) -> None:
    out = example_copy / OUT
    out.write_text("# hand-written\nservices: {}\n")
    out.chmod(0o644)
    code, stdout, err = _inv("staging.compose", "--root", str(example_copy), "--force")
    assert code == 0, err
    assert "meeshy-staging" in out.read_text()
    assert _mode(out) == 0o644
    assert "mode 0644" in stdout


# --- output closed early -----------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--dry-run",), ("--json",)], ids=["write", "dry", "json"])
def test_closed_stdout_is_quiet_141(example_copy: Path, flags: tuple[str, ...]) -> None:
    prod = example_copy / PROD
    before = _sha(prod)
    code, _out, err = _inv(
        "staging.compose", "--root", str(example_copy), *flags, stdout_closed=True
    )
    assert code == 141, err
    assert err == ""
    assert _sha(prod) == before
    if not flags or flags == ("--json",):
        assert "name: meeshy-staging" in (example_copy / OUT).read_text()  # written in full
    _no_leftovers(prod.parent)


# --- odd files -----------------------------------------------------------------------------------


def test_binary_prod_file(example_copy: Path) -> None:
    (example_copy / "prod.yml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    code, _out, err = _inv("staging.compose", "--root", str(example_copy), "--prod", "prod.yml")
    assert code == 2
    assert _one_line(err) == (
        f"ERROR: {example_copy}/prod.yml is not a compose file: not UTF-8 text "
        "(byte 0x89 at offset 0)"
    )


@pytest.mark.parametrize(
    ("service", "reason"),
    [
        pytest.param("ports: 5", "services.a.ports must be a list", id="ports-scalar"),
        pytest.param("labels: 7", "services.a.labels must be a mapping", id="labels-scalar"),
        pytest.param(
            "environment: [1, 2]", "services.a.environment.[0]: unexpected type int", id="env"
        ),
    ],
)
def test_prod_file_compose_refuses_is_bad_input(
    example_copy: Path, service: str, reason: str
) -> None:
    """Wrong types our reader passes on and compose refuses were exit 1 ("the work
    failed") without a hint, where the same file is exit 2 for stack.* and for our reader's
    own refusals (`service 'a' is not a mapping`). Now one line, exit 2, nothing written."""
    (example_copy / "prod.yml").write_text(f"services:\n  a:\n    image: busybox\n    {service}\n")
    for flags in ((), ("--dry-run",)):
        args = ("staging.compose", "--root", str(example_copy), "--prod", "prod.yml", *flags)
        code, _out, err = _inv(*args)
        assert code == 2, err
        line = _one_line(err)
        assert line.startswith(
            f"ERROR: the prod file {example_copy}/prod.yml does not pass `docker compose config`"
        ), line
        assert line.endswith(f"{reason}: fix it; nothing was written"), line
    assert not (example_copy / "docker-compose.staging.yml").exists()


@pytest.mark.parametrize("flags", [(), ("--dry-run",), ("--force",)], ids=["write", "dry", "force"])
def test_staging_path_is_a_directory(example_copy: Path, flags: tuple[str, ...]) -> None:
    (example_copy / OUT).mkdir()
    code, _out, err = _inv("staging.compose", "--root", str(example_copy), *flags)
    assert code == 2
    assert _one_line(err) == (
        f"ERROR: {example_copy / OUT} is a directory: remove it, or write elsewhere with --out FILE"
    )
    assert (example_copy / OUT).is_dir()


def test_staging_path_is_a_fifo(example_copy: Path) -> None:
    """Reading a FIFO would block for ever."""
    os.mkfifo(example_copy / OUT)
    code, _out, err = _inv("staging.compose", "--root", str(example_copy), "--dry-run")
    assert code == 2
    assert _one_line(err).endswith("is not a regular file: remove it, or pass --out FILE")


def test_staging_path_linked_to_prod_is_refused_even_with_force(example_copy: Path) -> None:
    prod = example_copy / PROD
    before = _sha(prod)
    (example_copy / OUT).symlink_to(prod.name)
    code, _out, err = _inv("staging.compose", "--root", str(example_copy), "--force")
    assert code == 2
    assert _one_line(err).endswith("is the prod compose file: the prod file is never written")
    assert _sha(prod) == before
    assert (example_copy / OUT).is_symlink()


def test_symlinked_prod_file_gets_its_staging_twin_beside_the_link(example_copy: Path) -> None:
    """A prod file that is a symlink (a deploy folder linking the checkout's file): compose
    resolves its relative paths from the link's folder, but staging.compose resolved the
    link, wrote the staging file beside the target and read prod's binds from there; then
    `stack.up --env staging` found no staging file and said to generate it."""
    prod = example_copy / PROD
    target = example_copy / "deploy/prod.yml"
    target.parent.mkdir()
    prod.rename(target)
    prod.symlink_to(os.path.relpath(target, prod.parent))
    code, out, err = _inv("staging.compose", "--root", str(example_copy))
    assert code == 0, err
    assert (example_copy / OUT).is_file()
    assert not (target.parent / "docker-compose.staging.yml").exists()
    code, out, err = _inv("stack.up", "--env", "staging", "--root", str(example_copy), "--dry-run")
    assert "no compose file" not in err, err
    assert f"--file {example_copy / OUT} " in out, out


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    r = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return r.returncode == 0


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Paths to make immutable (chattr +i); made mutable again afterwards, also on failure."""
    paths: list[Path] = []
    yield paths
    for p in paths:
        _chattr("-i", p)


def test_immutable_staging_file(example_copy: Path, immutable: list[Path]) -> None:
    out = example_copy / OUT
    out.write_text("# hand-written\nservices: {}\n")
    if not _chattr("+i", out):
        pytest.skip("chattr +i is not available on this filesystem")
    immutable.append(out)
    prod = example_copy / PROD
    before = _sha(prod)
    code, _out, err = _inv("staging.compose", "--root", str(example_copy), "--force")
    assert code == 1
    line = _one_line(err)
    assert line.startswith(f"ERROR: cannot write {out}: Operation not permitted: nothing was")
    assert out.read_text() == "# hand-written\nservices: {}\n"
    assert _sha(prod) == before
    _no_leftovers(out.parent)


def test_immutable_folder(example_copy: Path, immutable: list[Path]) -> None:
    folder = (example_copy / OUT).parent
    if not _chattr("+i", folder):
        pytest.skip("chattr +i is not available on this filesystem")
    immutable.append(folder)
    code, _out, err = _inv("staging.compose", "--root", str(example_copy))
    assert code == 1
    assert _one_line(err).startswith(f"ERROR: cannot write {example_copy / OUT}: ")
    assert not (example_copy / OUT).exists()


def test_read_only_folder(example_copy: Path) -> None:
    """A read-only mount (root ignores a folder's mode bits): bind-mounted read-only in a
    private mount namespace of the task's process only."""
    folder = (example_copy / OUT).parent
    probe = (
        subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("no mount namespaces here")
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "sh",
            "-c",
            'mount --bind -o ro "$1" "$1" && shift && exec "$@"',
            "sh",
            str(folder),
            sys.executable,
            "-m",
            "invoke",
            "staging.compose",
            "--root",
            str(example_copy),
        ],
        cwd=PROJECT,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert _one_line(proc.stderr).startswith(
        f"ERROR: cannot write {example_copy / OUT}: Read-only file system: nothing was written"
    )
    assert not (example_copy / OUT).exists()


# --- compose's own refusals ----------------------------------------------------------------------


def test_unset_required_variable_names_it_and_where(example_copy: Path) -> None:
    prod = example_copy / PROD
    text = prod.read_text().replace(
        "      NODE_ENV: production\n",
        "      NODE_ENV: production\n      JWT_SECRET: ${MEESHY_HOSTILE_SECRET:?}\n",
    )
    prod.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "MEESHY_HOSTILE_SECRET"}
    r = run_inv("staging.compose", "--root", str(example_copy), env=env)
    assert r.code == 2, r
    assert _one_line(r.err) == (
        "ERROR: variable MEESHY_HOSTILE_SECRET must be set: the prod file "
        f"{prod} requires it at services.gateway.environment.JWT_SECRET: set it in the "
        f"environment or in {prod.parent}/.env (compose reads both, for prod and staging alike)"
    )
    assert "report this" not in r.err
    (prod.parent / ".env").write_text("MEESHY_HOSTILE_SECRET=x\n")
    r = run_inv("staging.compose", "--root", str(example_copy), env=env)
    assert r.code == 0, r
    assert "${MEESHY_HOSTILE_SECRET:?}" in (example_copy / OUT).read_text()


def test_external_objects_must_exist_is_said(example_copy: Path) -> None:
    prod = example_copy / PROD
    text = prod.read_text().replace(
        "  meeshy-network:\n    name: meeshy-network\n    driver: bridge\n",
        "  meeshy-network:\n    name: meeshy-network\n    external: true\n",
    )
    prod.write_text(text)
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 0, r
    warnings = [ln for ln in r.err.splitlines() if "external" in ln]
    assert warnings == [
        "WARNING: external network meeshy-staging-network (staging's twin of meeshy-network) "
        "is not created by compose: create it before `docker compose up` "
        "(docker network create meeshy-staging-network)"
    ]
    r = run_inv("staging.compose", "--root", str(example_copy), "--json")
    assert json.loads(r.out)["must_exist"] == [
        {
            "kind": "network",
            "prod": "meeshy-network",
            "staging": "meeshy-staging-network",
            "create": ["docker", "network", "create", "meeshy-staging-network"],
        }
    ]


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "1.5", ""])
def test_port_offset_not_a_number(value: str) -> None:
    r = run_inv("staging.compose", "--port-offset", value, "--dry-run")
    assert r.code == 2, r
    assert _one_line(r.err) == (
        f"ERROR: --port-offset {value!r} is not a whole number: e.g. --port-offset 10000"
    )


# --- text from files is never markup -------------------------------------------------------------


def test_markup_in_paths_prints_as_written(example_copy: Path) -> None:
    """Guard (it held before): a bind source like ``./[red]conf:x:`` is shown literally."""
    prod = example_copy / PROD
    text = prod.read_text().replace(
        "      - ./secrets/firebase-admin.json:/app/secrets/firebase-admin.json:ro\n",
        "      - ./secrets/firebase-admin.json:/app/secrets/firebase-admin.json:ro\n"
        "      - type: bind\n        source: './[bold red]conf:x:'\n        target: /etc/[red]x\n"
        "        read_only: true\n",
    )
    prod.write_text(text)
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 0, r
    assert "./[bold red]conf:x:" in r.out
    assert "/etc/[red]x" in r.out
    # writable, the same folder is refused (staging would write prod's files): still literal
    prod.write_text(text.replace("        read_only: true\n", ""))
    r = run_inv("staging.compose", "--root", str(example_copy))
    assert r.code == 2, r
    assert "[bold red]conf:x:' is mounted by prod" in r.err


# --- two runs at once ----------------------------------------------------------------------------


def test_two_runs_at_once_leave_one_whole_file(example_copy: Path) -> None:
    argv = [sys.executable, "-m", "invoke", "staging.compose", "--root", str(example_copy)]
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [*argv, "--force"], cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for p in procs:
        with p:
            _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    r = run_inv("staging.compose", "--root", str(example_copy), "--dry-run")
    assert r.code == 0, r
    assert "unchanged" in r.out
    _no_leftovers((example_copy / OUT).parent)
