"""Compose files on disk: ``docker compose config`` (through python-on-whales; the one wrapper,
for ``staging.compose``'s files and for the ``stack.*`` stacks), the existing file, a diff, and
the atomic write that never leaves a half-written file.

The write keeps the existing file's mode (and owner, when allowed), or gives a new file
``0666 & ~umask`` as any program creating a file would (the temporary file is opened with mode
0666 and the kernel applies the umask; ``tempfile.mkstemp`` would make it 0600).
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.lib import fsread
from tasks.lib.errors import CommandFailed, ConfigError, EngineUnavailable, TaskError

if TYPE_CHECKING:
    import python_on_whales

    from tasks.lib.engine import EngineTarget

_REQUIRED = re.compile(
    r"(?:error while interpolating (?P<where>\S+): )?required variable (?P<var>\w+) is "
    r"missing a value(?::\s*(?P<why>.*))?"
)
COMPOSE_HINT = "install Docker's compose v2 plugin (`docker compose version` must answer)"


def compose_path(path: Path) -> Path:
    """A compose file's path as ``docker compose --file`` takes it: absolute, ``..`` folded,
    but a symlink kept. Compose resolves the file's relative paths (bind mounts, ``.env``,
    ``env_file``) from the folder the path names, not from its target's: a resolved path
    moved them to another host folder (Docker creates a missing one empty)."""
    return Path(os.path.abspath(path))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def compose_settings(
    files: Sequence[Path],
    project_dir: Path | None = None,
    *,
    project: str | None = None,
    env_files: Sequence[Path] = (),
    profiles: Sequence[str] = (),
) -> dict[str, Any]:
    """python-on-whales' compose flags (``ClientConfig`` fields): ``--file`` per file,
    ``--profile``, ``--env-file``, ``--project-name``, ``--project-directory``."""
    return {
        "compose_files": list(files),
        "compose_profiles": list(profiles),
        "compose_env_files": list(env_files),
        "compose_project_name": project,
        "compose_project_directory": project_dir,
    }


def compose_client(
    files: Sequence[Path],
    project_dir: Path | None = None,
    *,
    project: str | None = None,
    env_files: Sequence[Path] = (),
    profiles: Sequence[str] = (),
    target: EngineTarget | None = None,
    link: bool = True,
) -> python_on_whales.DockerClient:
    """A python-on-whales client whose ``compose`` works on these files. ``target``: the
    engine of the task (the flags of :func:`~tasks.lib.engine.whales_client` kept as they
    are: ``--context``, or ``--host`` of the run's SSH link); None: the CLI's own default.
    ``link=False``: the engine as a person names it (``--context``), never opening an SSH
    link, for calls that need no engine (``compose config``)."""
    import dataclasses

    from python_on_whales import DockerClient
    from python_on_whales.client_config import ClientConfig

    options = compose_settings(
        files, project_dir, project=project, env_files=env_files, profiles=profiles
    )
    if target is None:
        base = ClientConfig()
    elif not link:
        base = ClientConfig(context=target.context or None)
    else:
        from tasks.lib.engine import whales_client

        base = whales_client(target).client_config
    return DockerClient(client_config=dataclasses.replace(base, **options))


def compose_config(
    files: Sequence[Path],
    project_dir: Path | None = None,
    *,
    what: str = "the compose file",
    hint: str | None = None,
    project: str | None = None,
    env_files: Sequence[Path] = (),
    profiles: Sequence[str] = (),
    target: EngineTarget | None = None,
    variables_hint: str | None = None,
) -> dict[str, Any]:
    """The normalised configuration, ``docker compose config --format json``: interpolated
    with this environment and the env files (without any: ``.env`` of the project directory,
    ``project_dir`` or the first file's folder), every object named, every port long.
    ``project``, ``env_files``, ``profiles`` and ``target`` are as :func:`compose_client`
    (a stack passes its project, env file, every profile and the task's engine).

    Raises ConfigError for an unset required variable (``${VAR:?}``) naming the variable and
    where to set it (``variables_hint``; by default the environment or ``project_dir/.env``),
    EngineUnavailable without the compose CLI or when the engine (or the SSH link to it) went
    away, CommandFailed (with ``hint``) for anything else compose refuses. Needs no engine."""
    from python_on_whales.client_config import ClientNotFoundError
    from python_on_whales.exceptions import DockerException

    from tasks.lib.engine import translate

    try:
        client = compose_client(
            files,
            project_dir,
            project=project,
            env_files=env_files,
            profiles=profiles,
            target=target,
            link=False,  # compose config needs no engine: a dry run opens no SSH link
        )
        config: dict[str, Any] = client.compose.config(return_json=True)
    except ClientNotFoundError:
        raise EngineUnavailable(
            f"cannot check {what}: the docker CLI is not installed", hint=COMPOSE_HINT
        ) from None
    except DockerException as exc:
        output = str(exc.stderr or exc.stdout or "")
        required = _REQUIRED.search(output)
        if required:
            where = f" at {required['where']}" if required["where"] else ""
            why = f" ({required['why'].strip()})" if (required["why"] or "").strip() else ""
            folder = project_dir if project_dir is not None else files[0].parent
            raise ConfigError(
                f"variable {required['var']} must be set: {what} requires it{where}{why}",
                hint=variables_hint
                or f"set it in the environment or in {folder / '.env'} "
                "(compose reads both, for prod and staging alike)",
            ) from None
        if "is not a docker command" in output:
            raise EngineUnavailable(
                f"cannot check {what}: `docker compose` is not installed", hint=COMPOSE_HINT
            ) from None
        lost = translate(exc, target)
        if isinstance(lost, EngineUnavailable):
            raise lost from exc
        bad_env = _refused_env_file(env_files, target)
        if bad_env is not None:  # compose names neither: say which file is at fault
            what, output = f"the env file {bad_env[0]}", bad_env[1]
            nameless = _nameless_line(bad_env[0])
            if nameless:
                output = f"{output.rstrip()} (line {nameless}: no variable name before '=')"
        raise CommandFailed(
            f"{what} does not pass `docker compose config`: "
            + (_last_line(output) or f"exit {exc.return_code}"),
            argv=[str(a) for a in exc.docker_command],
            return_code=exc.return_code,
            output=output,
            hint=hint,
        ) from None
    return config


def _nameless_line(env_file: Path) -> int | None:
    """The number of the first line of ``env_file`` that sets a variable without a name
    (``=1``, ``export =1``: compose's "setenv: invalid argument"); None if none does."""
    from tasks.lib.fsread import read_bytes

    try:
        # lines end at \n only (a \r before it dropped), as compose's reader splits them
        lines = read_bytes(env_file).decode("utf-8", "replace").split("\n")
    except OSError:
        return None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith("#") or "=" not in text:
            continue
        if not text.split("=", 1)[0].removeprefix("export ").strip():
            return number
    return None


def _refused_env_file(
    env_files: Sequence[Path], target: EngineTarget | None
) -> tuple[Path, str] | None:
    """The first env file compose refuses on its own (a line ``=1``: "setenv: invalid
    argument", naming no file), with compose's output; None when each passes with a one-service
    file. Asked only after compose refused the whole: one more ``compose config`` per file."""
    from python_on_whales.exceptions import DockerException

    for env_file in env_files:
        with tempfile.TemporaryDirectory(prefix="meeshy-env-") as tmp:
            probe = Path(tmp) / "compose.yaml"
            probe.write_text("services:\n  probe:\n    image: busybox\n")
            client = compose_client(
                [probe], Path(tmp), project="probe", env_files=[env_file], target=target, link=False
            )
            try:
                client.compose.config(return_json=True)
            except DockerException as exc:
                return env_file, str(exc.stderr or exc.stdout or "")
    return None


def compose_config_text(
    text: str, project_dir: Path, *, what: str, hint: str | None = None
) -> dict[str, Any]:
    """:func:`compose_config` of text not yet written (relative paths resolve from
    ``project_dir``)."""
    with tempfile.TemporaryDirectory(prefix="meeshy-compose-") as tmp:
        f = Path(tmp) / "docker-compose.yml"
        f.write_text(text, encoding="utf-8")
        return compose_config([f], project_dir, what=what, hint=hint)


def read_existing(path: Path) -> str | None:
    """The text of the file about to be replaced; None when there is none."""
    try:
        raw = fsread.read_bytes(path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory", hint="pass --out FILE") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return raw.decode("utf-8", errors="replace")


def diff(old: str, new: str, path: Path) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (current)",
            tofile=f"{path} (generated)",
        )
    )


def new_file_mode() -> int:
    """The mode a new file gets here: ``0666 & ~umask``."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, text: str) -> int:
    """Replace ``path`` with ``text`` in one step (readers see the old file or the new one,
    never a part); returns the file's mode. The existing file's mode and owner are kept; a new
    file gets ``0666 & ~umask``. On any failure the temporary file is removed and the old
    file (if any) is left as it was; the error is one line (TaskError, exit 1)."""
    data = text.encode("utf-8")
    try:
        before: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    sweep_stale_temps(path)
    tmp = path.with_name(f"{_temp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if before is not None:
                with suppress(PermissionError):
                    os.fchown(f.fileno(), before.st_uid, before.st_gid)
                os.fchmod(f.fileno(), stat.S_IMODE(before.st_mode))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    with suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return stat.S_IMODE(os.stat(path).st_mode)


STALE_TEMP_SECONDS = 600  # a write takes well under a second


def _temp_prefix(path: Path) -> str:
    """``.<name>.<host>.``: a write's temporary file is ``<prefix><pid>.<random>.tmp``."""
    return f".{path.name}.{socket.gethostname()}."


def sweep_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files that writes of ``path`` killed with SIGKILL left beside it:
    those of this host whose process no longer exists, older than
    :data:`STALE_TEMP_SECONDS` (a live writer's, or another host's on a shared folder, are
    left alone). Returns what it removed."""
    prefix = _temp_prefix(path)
    removed = []
    now = time.time()
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid_text = tmp.name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        # a writer in another pid namespace with this hostname (a container with
        # --network host) looks dead from here: only an old file is surely abandoned
        with suppress(OSError):
            if now - tmp.stat().st_mtime < STALE_TEMP_SECONDS:
                continue
        with suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def _cannot_write(path: Path, exc: OSError) -> TaskError:
    return TaskError(
        f"cannot write {path}: {exc.strerror or exc}",
        hint="nothing was written; make the file and its folder writable "
        "(read-only mount? `lsattr` shows an immutable flag)",
    )
