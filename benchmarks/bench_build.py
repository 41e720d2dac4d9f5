#!/usr/bin/env python3
"""Rows 1 and 2 of the speed table (issue 8), side by side in one run:

1. ``inv build.all`` with nothing changed vs the Makefile's three cached ``docker buildx
   build`` (the same argv, taken from ``inv build.all --dry-run --json``, one after another);
2. ``inv build.all`` cold, on a heavier copy of the example (each image gets its own 2 s
   step), vs one ``docker buildx bake`` of the same targets (a bake file written from the
   same argv). Cold: the build cache pruned and the images removed before every run.

With ``--front-end``, the cold row is followed by the same three ``docker buildx build``
started at once with no Python in front, against the same bake: how much of the cold ratio
is BuildKit's work and how much this project's start-up before the first buildx.

With ``--pow-floor``, the cold row is followed by the floor of any front end that builds
through python-on-whales, as the project's libraries ask: Python, python-on-whales' import and
one bake streamed through it (``docker.buildx.bake(..., stream_logs=True)``, a single buildx
process), with no Invoke, no gate and no engine call, against the same bake.

    python benchmarks/bench_build.py [--runs 5] [--only cached|cold] [--step-seconds 2]
                                     [--front-end] [--pow-floor]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pairs import INV, PROJECT, NamespaceImages, paired, run

NS = f"bench{uuid.uuid4().hex[:6]}"


def inv_build(root: Path) -> list[str]:
    return [*INV, "build.all", "--root", str(root), "--registry", NS, "--progress", "quiet"]


def planned_argv(root: Path) -> list[list[str]]:
    r = subprocess.run(
        [*inv_build(root), "--dry-run", "--json", "--force"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    # the yardsticks tag as the Makefile does (our buildx builds untagged, then tags)
    return [
        [*item["argv"][:-1], *(f for t in item["tags"] for f in ("--tag", t)), item["argv"][-1]]
        for item in json.loads(r.stdout[r.stdout.index("[") :])
    ]


def bake_file(cmds: list[list[str]], dest: Path) -> Path:
    targets = {}
    for n, argv in enumerate(cmds):
        t: dict[str, object] = {"args": {}, "labels": {}, "tags": [], "context": argv[-1]}
        i = 3
        while i < len(argv) - 1:
            flag = argv[i]
            if flag in ("--build-arg", "--label"):
                k, _, v = argv[i + 1].partition("=")
                t["args" if flag == "--build-arg" else "labels"][k] = v  # type: ignore[index]
                i += 2
            elif flag == "--tag":
                t["tags"].append(argv[i + 1])  # type: ignore[attr-defined]
                i += 2
            elif flag == "--file":
                t["dockerfile"] = argv[i + 1]
                i += 2
            elif flag == "--progress":
                i += 2
            else:
                i += 1
        t["output"] = ["type=docker"]
        targets[f"t{n}"] = t
    data = {"group": {"default": {"targets": list(targets)}}, "target": targets}
    dest.write_text(json.dumps(data, indent=2))
    return dest


def heavier_copy(tmp: Path, seconds: float) -> Path:
    root = tmp / "example"
    shutil.copytree(PROJECT / "example", root, symlinks=True)
    for df in root.rglob("Dockerfile"):
        tag = df.parent.name
        lines = df.read_text().splitlines()
        # a distinct heavy step per image, in its final stage (after the last FROM)
        last_from = max(i for i, ln in enumerate(lines) if ln.startswith("FROM "))
        lines.insert(last_from + 1, f"RUN echo {tag}-$RANDOM && sleep {seconds}")
        df.write_text("\n".join(lines) + "\n")
    return root


IMAGES = NamespaceImages(NS)


def all_at_once(cmds: list[list[str]]) -> float:
    """Wall seconds of the planned buildx commands started together, as a shell's ``&``."""
    quiet = [[*c[:3], "--progress", "quiet", *c[5:]] if c[3] == "--progress" else c for c in cmds]
    t = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in quiet]
    failed = [p.args for p in procs if p.wait() != 0]
    dt = time.perf_counter() - t
    if failed:
        sys.exit(f"failed: {failed[0]}")
    return dt


def cold() -> None:
    IMAGES.remove()
    subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True, check=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", choices=["cached", "cold"])
    p.add_argument("--step-seconds", type=float, default=2.0)
    p.add_argument(
        "--front-end", action="store_true", help="cold: also the three buildx with no Python"
    )
    p.add_argument(
        "--pow-floor",
        action="store_true",
        help="cold: also Python + python-on-whales + one bake through it, vs the bake",
    )
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="meeshy-bench-"))
    try:
        if a.only in (None, "cached"):
            root = PROJECT / "example"
            cmds = planned_argv(root)
            IMAGES.track(
                run(inv_build(root))
            )  # built once: both sides start from "nothing changed"

            def make_way() -> float:
                return IMAGES.track(sum(run(c) for c in cmds))

            paired(
                "build.all, nothing changed vs the Makefile's three cached buildx builds",
                lambda: IMAGES.track(run(inv_build(root))),
                make_way,
                runs=a.runs,
                goal=0.8,
            )
        if a.only in (None, "cold"):
            root = heavier_copy(tmp, a.step_seconds)
            cmds = planned_argv(root)
            bake = bake_file(cmds, tmp / "bake.json")

            def one_bake() -> float:
                return IMAGES.track(
                    run(["docker", "buildx", "bake", "-f", str(bake), "--progress", "quiet"])
                )

            paired(
                f"build.all cold, 3 images each with a {a.step_seconds:g} s step vs one bake",
                lambda: IMAGES.track(run(inv_build(root))),
                one_bake,
                runs=a.runs,
                before_each=cold,
                goal=1.0,
            )
            if a.front_end:
                paired(
                    "the same three buildx builds at once, no Python in front, vs one bake",
                    lambda: IMAGES.track(all_at_once(cmds)),
                    one_bake,
                    runs=a.runs,
                    before_each=cold,
                )
            if a.pow_floor:
                through_pow = [
                    sys.executable,
                    "-c",
                    "import sys\nfrom python_on_whales import docker\n"
                    "for _ in docker.buildx.bake(files=[sys.argv[1]], stream_logs=True): pass",
                    str(bake),
                ]
                paired(
                    "Python + python-on-whales' import + one bake streamed through it, vs bake",
                    lambda: IMAGES.track(run(through_pow)),
                    one_bake,
                    runs=a.runs,
                    before_each=cold,
                )
    finally:
        IMAGES.remove()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
