#!/usr/bin/env python3
"""Small tasks against the startup floor (issue 8, rows "staging.tag" and "inv --list"):
the floor is Invoke listing a one-task tasks.py, the least any Invoke task can cost.

* ``inv --list`` vs the floor: ratio, goal <= 1.1;
* ``inv staging.tag`` (3 images), ``staging.push --dry-run``, ``images.list``,
  ``volumes.size``, ``docker.ensure`` vs the floor: difference, goal <= +0.15 s;
* ``inv staging.tag`` vs three ``docker tag``, for reference.

    python benchmarks/bench_small.py [--runs 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pairs import INV, PROJECT, paired, run

NS = f"benchsmall{uuid.uuid4().hex[:6]}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    floor_dir = Path(tempfile.mkdtemp(prefix="meeshy-floor-"))
    (floor_dir / "tasks.py").write_text(
        "from invoke import task\n\n\n@task\ndef hello(c):\n    '''Say hello.'''\n"
    )

    def floor() -> float:
        return run([*INV, "--list"], cwd=floor_dir)

    root = ["--root", str(PROJECT / "example"), "--registry", NS]
    try:
        run([*INV, "build.all", *root, "--progress", "quiet"])  # images to tag
        paired(
            "inv --list vs the floor", lambda: run([*INV, "--list"]), floor, runs=a.runs, goal=1.1
        )
        for name, argv in (
            ("staging.tag (3 images)", ["staging.tag", *root]),
            ("staging.push --dry-run", ["staging.push", "--dry-run", *root]),
            ("images.list", ["images.list", *root]),
            ("volumes.size", ["volumes.size"]),
            ("docker.ensure", ["docker.ensure"]),
        ):
            paired(
                f"{name} vs the floor",
                lambda argv=argv: run([*INV, *argv]),  # type: ignore[misc]
                floor,
                runs=a.runs,
                goal_diff=0.15,
            )
        repo = f"{NS}/meeshy-"
        paired(
            "staging.tag vs three docker tag",
            lambda: run([*INV, "staging.tag", *root]),
            lambda: sum(
                run(["docker", "tag", f"{repo}{s}:latest", f"{repo}{s}:staging"])
                for s in ("gateway", "translator", "web")
            ),
            runs=a.runs,
        )
    finally:
        ids = subprocess.run(
            ["docker", "images", "-q", "--filter", f"reference={NS}/*"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rmi", "-f", *set(ids)], capture_output=True, check=False)


if __name__ == "__main__":
    main()
