"""Nox sessions. Plain ``nox`` runs what CI needs: lint, mypy, unit and integration tests.

Integration tests need a Docker engine with buildx and compose v2 (``sudo bash
.ci/install-engine.sh``); without one they skip on a laptop and fail under ``CI=true``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "mypy", "unit", "integration", "hostile"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=None, tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=None, tags=["ci"])
def mypy(session: nox.Session) -> None:
    """mypy --strict over tasks.py, tasks/, tests/ and this file."""
    _install(session)
    session.run("mypy")


@nox.session(python=None, tags=["ci"])
def unit(session: nox.Session) -> None:
    """Unit tests: plans, parsers, config; no Docker needed."""
    _install(session)
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session(python=None, tags=["ci"])
def integration(session: nox.Session) -> None:
    """Tests against the real engine, BuildKit, compose and a registry on loopback."""
    _install(session)
    session.run("pytest", "tests/integration", *session.posargs)


@nox.session(python=None, tags=["ci"])
def hostile(session: nox.Session) -> None:
    """Hostile conditions: signals, SIGKILL then a rerun, two runs at once, odd files,
    malformed config, output closed early; the engine must end as it started."""
    _install(session)
    session.run("pytest", "tests/hostile", *session.posargs)


@nox.session(python=None, default=False)
def example(session: nox.Session) -> None:
    """Build the bundled example monorepo: `inv build.all` (the README's first command)."""
    _install(session)
    session.run("inv", "build.all", *session.posargs)


@nox.session(python=None, default=False)
def bench(session: nox.Session) -> None:
    """Every row of the speed table, each side by side with its yardstick (see
    benchmarks/RESULTS.md): build.all cached and cold, staging.volumes with and without
    --checksum, small tasks and `inv --list` against the startup floor, every engine task over
    SSH against the socket. Timings are printed, never asserted."""
    _install(session)
    env = {"PYTHONDONTWRITEBYTECODE": ""}  # measure as a user runs (bytecode cached)
    session.run("python", "benchmarks/bench_build.py", *session.posargs, env=env)
    session.run("python", "benchmarks/bench_volumes.py", env=env)
    session.run("python", "benchmarks/bench_volumes.py", "--checksum", env=env)
    session.run("python", "benchmarks/bench_small.py", env=env)
    session.run("python", "benchmarks/bench_ssh.py", env=env)


@nox.session(python=None, default=False)
def bench_ssh(session: nox.Session) -> None:
    """Every engine task over SSH (a real sshd on loopback) against the same task on the
    socket, and the bytes each concurrent build uploads."""
    _install(session)
    session.run("python", "benchmarks/bench_ssh.py", *session.posargs)
