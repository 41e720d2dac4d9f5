"""Run a stack task in-process with a given ``meeshy`` config: (exit code, stdout, stderr)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _no_color() -> Iterator[None]:
    old = os.environ.get("NO_COLOR")
    os.environ["NO_COLOR"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("NO_COLOR", None)
        else:
            os.environ["NO_COLOR"] = old


def run_task(config: dict[str, Any], task: Any, **flags: Any) -> tuple[int, str, str]:
    """Call ``task`` as Invoke would, with ``config`` as ``c.config.meeshy``, capturing what
    it prints (plain output, as in CI)."""
    from invoke import Config, Context, Exit

    ctx = Context(config=Config(overrides={"meeshy": config}))
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _no_color(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            task(ctx, **flags)
        except Exit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()
