"""The gate stays linear: a 10,000-line Dockerfile of any common shape is checked in at most
0.5 s of CPU time (issue 13, item 13). CPU time, best of three: the machine may be shared."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.lib.gate import GateInput, check

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
GATEWAY = "services/gateway/Dockerfile"
LINES = 10_000
BUDGET = 0.5


def _builder_body(make: Callable[[int], str]) -> str:
    """The example gateway with ``make(k)`` lines added at the end of its builder stage."""
    lines = (EXAMPLE / GATEWAY).read_text(encoding="utf-8").splitlines()
    at = lines.index("FROM base AS runner")
    extra = [make(k) for k in range(LINES - len(lines))]
    return "\n".join([*lines[:at], *extra, *lines[at:]]) + "\n"


def _stages() -> str:
    text = (EXAMPLE / GATEWAY).read_text(encoding="utf-8")
    count = (LINES - text.count("\n")) // 2
    return text + "".join(
        f"FROM base AS s{k}\nCOPY --from=builder /app/dist ./d{k}\n" for k in range(count)
    )


def _heredoc() -> str:
    body = "\n".join(f"echo step {k} && mkdir -p /tmp/s{k}" for k in range(LINES - 40))
    return _builder_body(lambda k: "").replace(
        "FROM base AS runner", f"RUN <<EOF\nset -e\n{body}\nEOF\n\nFROM base AS runner", 1
    )


SHAPES: dict[str, Callable[[], str]] = {
    "run-lines": lambda: _builder_body(lambda k: f"RUN echo step {k} && mkdir -p /tmp/s{k}"),
    "copy-lines-into-one-folder": lambda: _builder_body(
        lambda k: f"COPY services/gateway/src ./src{k % 7}/"
    ),
    "copies-and-package-scripts": lambda: _builder_body(
        lambda k: (
            "COPY services/gateway/src ./" if k % 2 else "RUN cd packages/shared && bun run build"
        )
    ),
    "env-and-runs": lambda: _builder_body(
        lambda k: f"ENV V{k}=x{k}" if k % 2 else f"RUN echo $V{k - 1} > /tmp/v{k}"
    ),
    "file-operations": lambda: _builder_body(
        lambda k: f"RUN cp -r packages/shared /tmp/c{k} && rm -rf /tmp/c{k}/node_modules"
    ),
    "bind-mounts": lambda: _builder_body(
        lambda k: f"RUN --mount=type=bind,source=packages/shared,target=/m{k} ls /m{k}"
    ),
    "stages": _stages,
    "one-long-continuation": lambda: _builder_body(lambda k: "").replace(
        "FROM base AS runner",
        "RUN true \\\n" + "".join(f"  && echo {k} \\\n" for k in range(LINES - 40)) + "  && true\n"
        "FROM base AS runner",
        1,
    ),
    "heredoc-script": _heredoc,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_ten_thousand_lines_within_budget(tmp_path: Path, shape: str) -> None:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    text = SHAPES[shape]()
    assert text.count("\n") >= LINES - 50
    (root / GATEWAY).write_text(text, encoding="utf-8")
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        report = check(GateInput("gateway", None, "generate", root, GATEWAY))
        best = min(best, time.process_time() - start)
    assert (report.verdict, report.problems) == ("pass", ())
    assert best <= BUDGET, f"{shape}: {best:.2f} s of CPU for {LINES} lines"
