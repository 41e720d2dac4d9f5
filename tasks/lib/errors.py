"""Every error of the project, in one family. Each carries a one-line message that says what
is wrong and how to fix it, and the exit code of its kind:

=====  ==========================================================================
code   kind
=====  ==========================================================================
1      the work failed: a build, a push, a copy, a docker command, a missing image
2      bad input: flags, config, files, names (nothing was started)
3      the Docker engine cannot be reached, or went away while working
4      the schema: the gate refused a Dockerfile, or an image is not the current
       schema's (``staging.tag``, ``images.validate``, ``stack.up --env staging``)
70     a bug in this tool (an unexpected exception), reported in one line
130    interrupted by SIGINT (Ctrl-C); 143 by SIGTERM; 141 output closed early
=====  ==========================================================================

The engine boundary (:func:`tasks.lib.engine.boundary`) turns the docker SDK's,
python-on-whales' and requests' exceptions into these, keeping the library's own message.
"""

from __future__ import annotations

from collections.abc import Sequence


class OutputClosed(Exception):
    """Standard output was closed early (``| head``): the task stops and exits 141, quietly.

    Not a ``BrokenPipeError``: that is also what a dropped socket to the engine raises, and
    a closed pipe of ours must never read as "the engine went away"."""


class TaskError(Exception):
    """Base of every error a task turns into ``invoke.Exit``."""

    exit_code: int = 1

    def __init__(
        self, message: str, *, hint: str | None = None, exit_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def line(self) -> str:
        """The one line shown to the user."""
        return f"{self.message}: {self.hint}" if self.hint else self.message

    def __str__(self) -> str:
        return self.line()


class ConfigError(TaskError):
    """Bad configuration or flags: an unknown service, a malformed VERSION, a missing file."""

    exit_code = 2


class EngineUnavailable(TaskError):
    """The Docker engine (or buildx, or compose, or the SSH link to it) cannot be reached."""

    exit_code = 3


class DockerfileError(TaskError):
    """A Dockerfile that cannot be parsed; names the file and the line."""

    exit_code = 2

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.lineno = line


class SchemaGateError(TaskError):
    """The schema gate refused a build."""

    exit_code = 4


class StaleImageError(TaskError):
    """An image built from another schema than the current one (or not proven to be)."""

    exit_code = 4


class MissingImageError(TaskError):
    """A local image that should exist does not."""

    exit_code = 1


class CommandFailed(TaskError):
    """A docker command or API call failed; keeps the argv, the exit code and the output."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        return_code: int | None = None,
        output: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = list(argv)
        self.return_code = return_code
        self.output = output


class Interrupted(TaskError):
    """A signal stopped the task (SIGINT: 130, SIGTERM: 143, SIGHUP: 129)."""

    def __init__(self, signum: int, message: str = "") -> None:
        import signal

        name = signal.Signals(signum).name
        super().__init__(message or f"interrupted by {name}", exit_code=128 + signum)
        self.signum = signum
