#!/usr/bin/env python3
"""Benchmark: ``inv staging.volumes`` against the staging plan's yardstick, side by side.

    python benchmarks/bench_volumes.py [--pairs 5] [--files 3060] [--mb 525] [--checksum]
                                       [--image alpine] [--flat]

One source volume like ``meeshy-gateway-uploads`` is made first by a helper container
(``--files`` files of random bytes, ``--mb`` MB in all, 60 directories in 12 groups, or all
in one folder with ``--flat``). Then,
``--pairs`` times, alternating which side goes first so drift hits both alike, into a fresh
target each time:

* ours: ``inv staging.volumes --volume SRC:TARGET [--checksum]`` (the whole CLI: Python start,
  preflight, copy, verification, cleanup);
* yardstick: the plan's ``docker run --rm -v SRC:/from:ro -v DST:/to alpine cp -av /from/.
  /to/`` (its listing sent to /dev/null);

each timed with ``time.perf_counter`` around the subprocess, the page cache warm for both
(the source is read once before the first pair), ``sync`` before every run so one run's
write-back does not land in the next. Targets are removed only at the end (needs 2 x pairs x
--mb of disk): deleting 500 MB has I/O of its own (discards, on this machine's file system)
that would land on whichever run comes next. Prints every pair's times and ratio, then the
medians.
Every volume it made is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

POPULATE = r"""
set -eu
cd /v
files=$1 total=$2 flat=$3
i=0 d=0
per=$((total / files))
while [ $i -lt "$files" ]; do
  if [ $((i % 51)) -eq 0 ]; then d=$((d + 1)); dir="u$((d % 12))/d$d"; fi
  [ "$flat" = 1 ] && dir=uploads
  mkdir -p "$dir"
  s=$(( (i * 7919) % (2 * per) + 1 ))
  head -c $s /dev/urandom > "$dir/f$i.bin"
  i=$((i + 1))
done
"""


WARM_IMAGE = ["alpine"]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        sys.exit(f"docker {' '.join(args[:3])} failed: {r.stderr.strip()}")
    return r


def timed(argv: list[str], **kw: object) -> float:
    # the same state before either side: a container just ran, nothing left to write back
    docker("run", "--rm", "--network", "none", WARM_IMAGE[0], "true")
    os.sync()
    t = time.perf_counter()
    r = subprocess.run(  # type: ignore[call-overload]
        argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw
    )
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv[:6])} ... failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--files", type=int, default=3060)
    ap.add_argument("--mb", type=int, default=525)
    ap.add_argument("--checksum", action="store_true", help="ours with --checksum")
    ap.add_argument("--image", default="alpine", help="helper image of both sides")
    ap.add_argument("--flat", action="store_true", help="every file in one folder (uploads/)")
    args = ap.parse_args()

    WARM_IMAGE[0] = args.image
    run = uuid.uuid4().hex[:8]
    source = f"meeshy-bench-{run}-uploads"
    made: list[str] = []
    try:
        docker("volume", "create", source)
        made.append(source)
        t = time.perf_counter()
        docker(
            "run", "--rm", "--network", "none", "-v", f"{source}:/v", args.image,
            "sh", "-c", POPULATE, "sh", str(args.files), str(args.mb * 1_000_000),
            "1" if args.flat else "0",
        )  # fmt: skip
        print(f"source {source}: {args.files} files, {args.mb} MB, made in "
              f"{time.perf_counter() - t:.1f}s")  # fmt: skip
        warm = "find /v -type f -exec cat {} + >/dev/null"
        docker("run", "--rm", "-v", f"{source}:/v:ro", args.image, "sh", "-c", warm)
        env = {**os.environ, "NO_COLOR": "1"}
        ours_t: list[float] = []
        base_t: list[float] = []
        label = "inv staging.volumes" + (" --checksum" if args.checksum else "")
        print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"{'pair':>4}  {'ours (s)':>9}  {'cp -av (s)':>10}  ratio   (ours = {label})")
        for n in range(args.pairs):
            ours_target = f"meeshy-staging-bench-{run}-{n}"
            base_target = f"meeshy-bench-{run}-cp-{n}"
            made += [ours_target, base_target]

            def ours(target: str = ours_target) -> float:
                argv = [sys.executable, "-m", "invoke", "staging.volumes"]
                argv += ["--volume", f"{source}:{target}", "--helper-image", args.image]
                argv += ["--checksum"] if args.checksum else []
                return timed(argv, cwd=PROJECT, env=env)

            def base(target: str = base_target) -> float:
                return timed([
                    "docker", "run", "--rm", "-v", f"{source}:/from:ro", "-v", f"{target}:/to",
                    args.image, "cp", "-av", "/from/.", "/to/",
                ])  # fmt: skip

            if n % 2 == 0:
                a, b = ours(), base()
            else:
                b, a = base(), ours()
            ours_t.append(a)
            base_t.append(b)
            print(f"{n + 1:>4}  {a:>9.2f}  {b:>10.2f}  {a / b:5.2f}", flush=True)

        mo, mb = statistics.median(ours_t), statistics.median(base_t)
        ratios = sorted(a / b for a, b in zip(ours_t, base_t, strict=True))
        spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
        print(f"median  {mo:>9.2f}  {mb:>10.2f}  {mo / mb:5.2f}  (median of the pair ratios: "
              f"{statistics.median(ratios):.2f}, range {spread})")  # fmt: skip
        print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        for name in made:
            docker("volume", "rm", "-f", name, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
