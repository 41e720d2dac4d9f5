#!/usr/bin/env python3
"""Benchmark: ``inv build.all`` (concurrent BuildKit builds) against the Makefile's way
(``make docker-build``: the same three docker builds, one after another), cold and cached,
side by side in one run, alternating A B A B so machine drift hits both alike.

    python benchmarks/build_all.py [--runs 3] [--cpu-mb N] [--wait-seconds S] [--root example]

Cold = build cache pruned and the images removed before each run; cached = nothing changed
since the previous run. Prints per-run wall times, medians, and the ratio inv/make per pair.
The baseline commands are taken from ``inv build.all --dry-run --json``, so both sides build
exactly the same images with the same arguments. The bundled example's steps are tiny, so two
options work on a copy of it with one more step in each Dockerfile: ``--cpu-mb N`` hashes N MB
(a fixed amount of CPU work, standing for compiling), ``--wait-seconds S`` sleeps S seconds
(standing for downloads such as ``pip install torch``, which wait on the network, not the CPU).
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


def heavy_copy(root: Path, cpu_mb: int, wait_seconds: int) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="meeshy-bench-")) / "meeshy"
    shutil.copytree(root, dest)
    for df in (
        "services/gateway/Dockerfile",
        "services/translator/Dockerfile",
        "apps/web/Dockerfile",
    ):
        # Each step names its image, so BuildKit cannot share one step between two images
        # (real images have different heavy steps). The hashing is single-threaded: one core.
        steps = []
        if cpu_mb:
            rounds = max(1, cpu_mb // 100)
            steps.append(
                f"RUN : {df} && head -c 100000000 /dev/zero > z && "
                f"for i in $(seq {rounds}); do sha256sum z >/dev/null; done && rm z\n"
            )
        if wait_seconds:
            steps.append(f"RUN : {df} && sleep {wait_seconds}\n")
        p = dest / df
        lines = p.read_text().splitlines(keepends=True)
        # after the first WORKDIR: an early stage that every variant needs
        i = next(k for k, ln in enumerate(lines) if ln.startswith("WORKDIR"))
        lines[i + 1 : i + 1] = steps
        p.write_text("".join(lines))
    return dest


def bake_file(cmds: list[list[str]], dest: Path) -> Path:
    """The same builds as one ``docker buildx bake`` file (for the bake-vs-builds comparison)."""
    targets: dict[str, dict[str, object]] = {}
    for n, argv in enumerate(cmds):
        t: dict[str, object] = {"context": argv[-1], "tags": [], "args": {}, "labels": {}}
        it = iter(argv[3:-1])
        for a in it:
            if a == "--file":
                t["dockerfile"] = next(it)
            elif a == "--tag":
                t["tags"].append(next(it))  # type: ignore[attr-defined]
            elif a in ("--build-arg", "--label"):
                k, _, v = next(it).partition("=")
                t["args" if a == "--build-arg" else "labels"][k] = v  # type: ignore[index]
            elif a == "--progress":
                next(it)
        targets[f"t{n}"] = t
    dest.write_text(
        json.dumps({"group": {"default": {"targets": list(targets)}}, "target": targets})
    )
    return dest


def run_bake(bake: Path) -> float:
    t = time.perf_counter()
    r = sh(["docker", "buildx", "bake", "--progress", "plain", "--load", "-f", str(bake)])
    if r.returncode != 0:
        sys.exit(f"bake failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def report(
    label: str,
    a: list[float],
    b: list[float],
    names: tuple[str, str] = ("inv build.all (concurrent)", "make way (sequential)"),
) -> None:
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    print(f"\n{label}")
    print(
        f"  {names[0]:<27}: {' '.join(f'{x:6.2f}s' for x in a)}"
        f"   median {statistics.median(a):6.2f}s"
    )
    print(
        f"  {names[1]:<27}: {' '.join(f'{x:6.2f}s' for x in b)}"
        f"   median {statistics.median(b):6.2f}s"
    )
    print(
        f"  ratio per pair (1st/2nd)   : {' '.join(f'{r:6.2f}' for r in ratios)}"
        f"   median {statistics.median(ratios):.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu-mb", type=int, default=0, help="add hashing N MB per image")
    ap.add_argument("--wait-seconds", type=int, default=0, help="add a S-second wait per image")
    ap.add_argument("--root", default=str(PROJECT / "example"))
    ap.add_argument("--bake", action="store_true", help="also time the same builds as one bake")
    args = ap.parse_args()
    root = Path(args.root).resolve()
    if args.cpu_mb or args.wait_seconds:
        root = heavy_copy(root, args.cpu_mb, args.wait_seconds)
    cmds = baseline_commands(root)
    print(f"root: {root}\nimages: {len(cmds)}; runs per side: {args.runs}; cpus: {os.cpu_count()}")
    bake = bake_file(cmds, Path(tempfile.mkdtemp(prefix="meeshy-bake-")) / "bake.json")
    cold_a: list[float] = []
    cold_b: list[float] = []
    cold_c: list[float] = []
    warm_a: list[float] = []
    warm_b: list[float] = []
    for _ in range(args.runs):
        reset_cold()
        cold_a.append(run_inv(root))
        warm_a.append(run_inv(root))
        reset_cold()
        cold_b.append(run_make_way(cmds))
        warm_b.append(run_make_way(cmds))
        if args.bake:
            reset_cold()
            cold_c.append(run_bake(bake))
    report("cold (cache pruned, images removed)", cold_a, cold_b)
    report("cached (nothing changed)", warm_a, warm_b)
    if args.bake:
        report(
            "cold: concurrent builds vs bake",
            cold_a,
            cold_c,
            ("inv build.all (concurrent)", "docker buildx bake"),
        )
    reset_cold()


if __name__ == "__main__":
    main()
