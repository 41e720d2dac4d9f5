#!/usr/bin/env python3
"""Benchmark: ``inv build.all`` (concurrent BuildKit builds) against the Makefile's way
(``make docker-build``: the same three docker builds, one after another), cold and cached,
side by side in one run, alternating A B A B so machine drift hits both alike.

    python benchmarks/build_all.py [--runs 3] [--heavy SECONDS_OF_CPU] [--root example]

Cold = build cache pruned and the images removed before each run; cached = nothing changed
since the previous run. Prints per-run wall times, medians, and the ratio inv/make per pair.
The baseline commands are taken from ``inv build.all --dry-run --json``, so both sides build
exactly the same images with the same arguments. ``--heavy N`` works on a copy of the example
with a CPU-bound step of about N seconds added to each Dockerfile, to stand for real compile
and dependency-install work (the bundled example's steps are tiny).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
NS = "benchreg"


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def inv_argv(root: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "invoke",
        "build.all",
        "--root",
        str(root),
        "--registry",
        NS,
        "--progress",
        "quiet",
        *extra,
    ]


def baseline_commands(root: Path) -> list[list[str]]:
    r = sh(inv_argv(root, "--dry-run", "--json"), cwd=PROJECT, env={**os.environ, "NO_COLOR": "1"})
    if r.returncode != 0:
        sys.exit(f"dry run failed: {r.stderr}")
    start = r.stdout.index("[")
    return [item["argv"] for item in json.loads(r.stdout[start:])]


def reset_cold() -> None:
    sh(["docker", "builder", "prune", "-af"])
    ids = sh(["docker", "images", "--filter", f"reference={NS}/*", "-q"]).stdout.split()
    if ids:
        sh(["docker", "rmi", "-f", *sorted(set(ids))])


def run_inv(root: Path) -> float:
    t = time.perf_counter()
    r = sh(inv_argv(root), cwd=PROJECT, env={**os.environ, "NO_COLOR": "1"})
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"inv build.all failed:\n{r.stdout}\n{r.stderr}")
    return dt


def run_make_way(cmds: list[list[str]]) -> float:
    t = time.perf_counter()
    for argv in cmds:
        r = sh(argv)
        if r.returncode != 0:
            sys.exit(f"{argv} failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def heavy_copy(root: Path, seconds: int) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="meeshy-bench-")) / "meeshy"
    shutil.copytree(root, dest)
    # About `seconds` of single-core CPU work (hashing zeros), busybox only.
    step = (
        f"RUN --mount=type=cache,target=/tmp/cache timeout {seconds} sh -c "
        "'while :; do head -c 50000000 /dev/zero | sha256sum >/dev/null; done' || true\n"
    )
    for df in (
        "services/gateway/Dockerfile",
        "services/translator/Dockerfile",
        "apps/web/Dockerfile",
    ):
        p = dest / df
        lines = p.read_text().splitlines(keepends=True)
        # after the first WORKDIR, so the work happens in an early stage every variant needs
        i = next(k for k, ln in enumerate(lines) if ln.startswith("WORKDIR"))
        lines.insert(i + 1, step)
        p.write_text("".join(lines))
    return dest


def report(label: str, a: list[float], b: list[float]) -> None:
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    print(f"\n{label}")
    print(
        f"  inv build.all (concurrent) : {' '.join(f'{x:6.2f}s' for x in a)}"
        f"   median {statistics.median(a):6.2f}s"
    )
    print(
        f"  make way (sequential)      : {' '.join(f'{x:6.2f}s' for x in b)}"
        f"   median {statistics.median(b):6.2f}s"
    )
    print(
        f"  ratio inv/make per pair    : {' '.join(f'{r:6.2f}' for r in ratios)}"
        f"   median {statistics.median(ratios):.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heavy", type=int, default=0, help="add ~N s of CPU work per image")
    ap.add_argument("--root", default=str(PROJECT / "example"))
    args = ap.parse_args()
    root = Path(args.root).resolve()
    if args.heavy:
        root = heavy_copy(root, args.heavy)
    cmds = baseline_commands(root)
    print(f"root: {root}\nimages: {len(cmds)}; runs per side: {args.runs}; cpus: {os.cpu_count()}")
    cold_a, cold_b, warm_a, warm_b = [], [], [], []
    for _ in range(args.runs):
        reset_cold()
        cold_a.append(run_inv(root))
        warm_a.append(run_inv(root))
        reset_cold()
        cold_b.append(run_make_way(cmds))
        warm_b.append(run_make_way(cmds))
    report("cold (cache pruned, images removed)", cold_a, cold_b)
    report("cached (nothing changed)", warm_a, warm_b)
    reset_cold()


if __name__ == "__main__":
    main()
