"""Which stack, and which compose commands: pure data that a dry run prints and a real run
hands to python-on-whales (:mod:`tasks.lib.stack.compose`), so the two cannot differ.

A stack is a compose file, a project name and an env file from config (``meeshy.stacks``;
defaults as the Makefile: ``docker-compose.{dev,local,prod}.yml``, projects ``meeshy-<env>``,
env file ``infrastructure/envs/.env.example``; plus ``staging``, the file ``staging.compose``
writes). A configured env file that is missing stops the tasks that change something
(:func:`env_file_check`). The env names ``prod`` and ``staging`` carry meaning: ``prod`` is
the stack whose containers and volumes other stacks must never touch, ``staging`` is checked
against it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.lib.compose.files import compose_path
from tasks.lib.config import Settings
from tasks.lib.errors import ConfigError

PROD = "prod"
STAGING = "staging"
DEFAULT_ENV = "dev"  # the Makefile's COMPOSE_FILE
ALL_PROFILES = ("*",)  # compose >= 2.20: every profile (down, config, logs see every service)


@dataclass(frozen=True)
class Stack:
    """A stack resolved against the monorepo root. ``env_file`` is None when none is
    configured or the configured one is missing (``env_file_missing`` then names it)."""

    name: str
    file: Path
    project: str
    env_file: Path | None
    env_file_missing: str = ""

    @property
    def is_prod(self) -> bool:
        return self.name == PROD

    def to_json(self) -> dict[str, str | None]:
        return {
            "env": self.name,
            "file": str(self.file),
            "project": self.project,
            "env_file": str(self.env_file) if self.env_file else None,
        }


def resolve_stack(
    settings: Settings, name: str, *, must_exist: bool = True, missing_hint: str = ""
) -> Stack:
    """The stack ``--env name``; ConfigError (unknown env, with did-you-mean, or a missing
    compose file) before anything runs."""
    cfg = settings.stack(name)
    file = compose_path(settings.root / cfg.file)
    if must_exist and not file.is_file():
        hint = missing_hint or (
            "generate it first: `inv staging.compose` (after `inv build.all staging.tag`)"
            if name == STAGING
            else f"set meeshy.stacks.{name}.file in invoke.yaml, or pass --root"
        )
        raise ConfigError(
            f"stack {name}: no compose file {cfg.file} under {settings.root}", hint=hint
        )
    env_file: Path | None = None
    missing = ""
    if cfg.env_file:
        candidate = (settings.root / cfg.env_file).resolve()
        if candidate.is_file():
            env_file = candidate
        else:
            missing = cfg.env_file
    return Stack(name, file, cfg.project, env_file, missing)


def env_file_check(stack: Stack, root: Path, *, task: str = "", dry_run: bool = False) -> str:
    """The rule for a configured env file that does not exist (the Makefile passes
    ``--env-file infrastructure/envs/.env.example`` to ``up``, and compose refuses a missing
    one). ``task`` names a run that changes something with what the file's variables decide
    (``stack.up``, ``stack.pull``, ``stack.down --volumes``): it is refused (ConfigError)
    before anything runs. A read-only task (``task`` empty) or a dry run gets the warning line
    back and goes on without ``--env-file``; "" when the file is there or none is set."""
    missing = stack.env_file_missing
    if not missing:
        return ""
    where = f"env file {missing} not found under {root}"
    unset = f'set meeshy.stacks.{stack.name}.env_file to "" in invoke.yaml to run without one'
    if task and not dry_run:
        raise ConfigError(
            f"refused, nothing done: env file {missing} of stack {stack.name} not found "
            f"under {root} (`{task}` needs its variables)",
            hint=f"create it, or {unset}",
        )
    if task:
        return f"{where}: without --dry-run `{task}` refuses (create it, or {unset})"
    return f"{where}: running compose without --env-file (variables fall back to their defaults)"


def down_hint(settings: Settings, name: str) -> str:
    """What ``stack.down`` says when the stack's file is missing: compose finds a project's
    containers by its label, without the file."""
    project = settings.stack(name).project
    return (
        f"without its file, `docker compose -p {project} down` takes the project down "
        "(by its labels)"
    )


def open_stack(
    settings: Settings,
    name: str,
    *,
    missing_hint: str = "",
    changes: str = "",
    dry_run: bool = False,
) -> tuple[Stack, str]:
    """The stack ``--env name`` (:func:`resolve_stack`) and the warning line of
    :func:`env_file_check` ("" when none). ``changes``: the task's words when this run changes
    something with what the env file decides (a missing env file refuses it)."""
    stack = resolve_stack(settings, name, missing_hint=missing_hint)
    return stack, env_file_check(stack, settings.root, task=changes, dry_run=dry_run)


@dataclass(frozen=True)
class ComposeCall:
    """One ``docker compose`` subcommand: ``op`` names the python-on-whales method, ``args`` is
    exactly what that method appends after the client's global compose flags, and
    ``profiles`` are the ``--profile`` flags the client carries."""

    op: str
    args: tuple[str, ...]
    profiles: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    @property
    def operands(self) -> list[str]:
        """The service names as the argv's last words: after ``--``, since compose accepts a
        service named ``--volumes`` or ``-q``, which would otherwise be read as a flag."""
        return operands(self.services)


def operands(services: Sequence[str]) -> list[str]:
    return ["--", *services] if services else []


def up_call(services: Sequence[str] = (), profiles: Sequence[str] = ()) -> ComposeCall:
    """``up --detach [SERVICE...]`` (the Makefile's ``up -d``)."""
    args = ("up", "--detach", *operands(services))
    return ComposeCall("up", args, tuple(profiles), tuple(services))


def down_call(*, volumes: bool) -> ComposeCall:
    """``down --remove-orphans [--volumes]`` over every profile (the Makefile's docker-stop
    passes ``--profile full``: without it, profiled containers are left running)."""
    args = ("down", "--remove-orphans", *(("--volumes",) if volumes else ()))
    return ComposeCall("down", args, ALL_PROFILES)


def logs_call(
    services: Sequence[str] = (),
    *,
    follow: bool = False,
    since: str = "",
    tail: str = "",
    prefix: bool = True,
) -> ComposeCall:
    args = ["logs", "--no-color"]
    if tail:
        args += ["--tail", tail]
    if follow:
        args.append("--follow")
    if not prefix:
        args.append("--no-log-prefix")
    if since:
        args += ["--since", since]
    return ComposeCall("logs", (*args, *operands(services)), ALL_PROFILES, tuple(services))


def pull_call(service: str) -> ComposeCall:
    return ComposeCall("pull", ("pull", *operands([service])), ALL_PROFILES, (service,))


_SINCE = re.compile(
    r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+"  # a duration, as Go writes one (10m, 1h30m)
    r"|\d+(?:\.\d+)?"  # a unix time
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)


def check_since(value: str) -> str:
    """``--since`` as ``docker compose logs`` takes it, else one line (compose would print
    its own error and exit 1 after the stack was read)."""
    if value and not _SINCE.fullmatch(value):
        raise ConfigError(
            f"--since {value!r} is not a time",
            hint="a duration (10m, 1h30m), a date (2026-11-24, 2026-11-24T10:00:00Z) or a unix "
            "time",
        )
    return value


def check_tail(value: str) -> str:
    if value and value != "all" and not value.isdigit():
        raise ConfigError(f"--tail {value!r}", hint="a number of lines, or all")
    return value
