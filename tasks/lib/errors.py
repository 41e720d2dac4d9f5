"""One exception family. Every error carries a one-line message that says what is wrong and
how to fix it, and the exit code the task should end with."""

from __future__ import annotations

from collections.abc import Sequence


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
    """The Docker engine (or buildx, or compose) cannot be reached."""

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


class CommandFailed(TaskError):
    """A docker command failed; keeps the argv, the exit code and the output tail."""

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
