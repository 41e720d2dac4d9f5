"""Side-by-side timing for the benchmark scripts: this project (A) and its yardstick (B)
run alternately, A B A B ..., so drift of a shared machine hits both alike; each pair's ratio
A/B is computed from the two runs next to each other, then the medians are printed.

Public tools only: subprocess and time.perf_counter (whole-process wall time)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
INV = [sys.executable, "-m", "invoke"]


def run(argv: Sequence[str], *, cwd: Path = PROJECT, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one command; exits the benchmark when the command fails."""
    full = {**os.environ, "NO_COLOR": "1", **(env or {})}
    t = time.perf_counter()
    r = subprocess.run(list(argv), cwd=cwd, env=full, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(
            f"failed ({r.returncode}): {' '.join(argv)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        )
    return dt


def paired(
    name: str,
    a: Callable[[], float],
    b: Callable[[], float],
    *,
    runs: int = 5,
    before_each: Callable[[], object] | None = None,
    warmup: int = 1,
    goal: float | None = None,
    goal_diff: float | None = None,
) -> dict[str, float]:
    """Time ``a`` and ``b`` alternately ``runs`` times (after ``warmup`` unrecorded pairs);
    print a row: medians and the median of the per-pair ratios."""
    for _ in range(warmup):
        if before_each:
            before_each()
        a()
        if before_each:
            before_each()
        b()
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(runs):
        if before_each:
            before_each()
        ta.append(a())
        if before_each:
            before_each()
        tb.append(b())
    ratios = [x / y for x, y in zip(ta, tb, strict=True)]
    diffs = [x - y for x, y in zip(ta, tb, strict=True)]
    row = {
        "diff": statistics.median(diffs),
        "a": statistics.median(ta),
        "b": statistics.median(tb),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    verdict = ""
    if goal is not None:
        verdict = f"  goal <= {goal:.2f}: {'met' if row['ratio'] <= goal else 'NOT met'}"
    if goal_diff is not None:
        ok = row["diff"] <= goal_diff
        verdict += f"  difference {row['diff']:+.3f} s, goal <= +{goal_diff:.2f} s: " + (
            "met" if ok else "NOT met"
        )
    print(
        f"{name}: {row['a']:.3f} s vs {row['b']:.3f} s, ratio {row['ratio']:.2f} "
        f"(pairs {row['ratio_min']:.2f}-{row['ratio_max']:.2f}, n={runs}){verdict}",
        flush=True,
    )
    return row


class NamespaceImages:
    """Every image ID a benchmark ever saw under its namespace, removed at the end: a rebuild
    moves a tag to a new image (``--force``, the Makefile's BUILD_DATE, bake), and the old one,
    untagged, must go too, or each run leaves dangling images on the engine."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.seen: set[str] = set()

    def ids(self) -> set[str]:
        return set(
            subprocess.run(
                [
                    "docker",
                    "images",
                    "-q",
                    "--no-trunc",
                    "--filter",
                    f"reference={self.namespace}/*",
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
        )

    def track(self, seconds: float = 0.0) -> float:
        """After a run (not timed itself): remember the images it left under the namespace."""
        self.seen.update(self.ids())
        return seconds

    def remove(self) -> None:
        ids = self.ids() | self.seen
        if ids:
            subprocess.run(["docker", "rmi", "-f", *sorted(ids)], capture_output=True, check=False)
