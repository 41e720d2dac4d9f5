#!/usr/bin/env python3
"""Benchmark: every engine task over SSH against the same task over the local socket.

    python benchmarks/bench_ssh.py [--runs 3] [--unrelated 100] [--only images.list,...]
                                   [--no-context-bytes] [--kex ALGORITHMS]

A real ``sshd`` runs on loopback in front of the local engine (the test fixture
``tests/integration/ssh/sshd.py``; root and openssh-server needed), so both sides reach the
SAME engine and the ratio is the cost of the SSH link alone: ``--context meeshy-prod-test``
(an ssh_config alias with its own Port) against no ``--context`` (``unix:///var/run/docker
.sock``). Runs alternate socket, ssh, socket, ssh... (machine drift hits both alike); wall
seconds of the whole CLI process (``time.perf_counter``), medians quoted, ratio ssh/socket.
Builds are measured cached (the images were built once before), so the figure is the task's
own cost and not BuildKit's build time.

Then:

* ``--unrelated N``: N distinct unrelated images are added to the engine (``docker commit``
  of a busybox container, removed afterwards) and ``images.list`` and ``staging.tag`` are
  timed again over both links: does the task grow with images it does not show?
* context bytes: ``build.all --progress plain`` on fresh copies of the example, then of the
  example with a 200 MB unrelated folder at the context root, over SSH and over the socket;
  the sum of BuildKit's ``transferring context: N`` lines of each image's ``load build
  context`` step is what that build uploaded.

Needs a Docker engine with buildx, ``docker-registry`` (pushes go to a registry on loopback)
and ``busybox:latest``. Everything it creates has the ``benchssh`` namespace or prefix and is
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from pairs import NamespaceImages  # noqa: E402

from tests.integration.registry import LocalRegistry  # noqa: E402
from tests.integration.ssh.sshd import ALIAS, Sshd  # noqa: E402

NS = "benchssh"
EXAMPLE = PROJECT / "example"
SIZE_RE = re.compile(r"transferring context: ([\d.]+)([kMG]?B)")
UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
IMAGES = NamespaceImages(NS)


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


class Bench:
    def __init__(self, server: Sshd, registry: LocalRegistry, root: Path, volume: str) -> None:
        self.server = server
        self.registry = registry
        self.root = root
        self.volume = volume

        self.ssh_config = ""  # --kex: a copy of the fixture's ssh_config with KexAlgorithms

    def env(self) -> dict[str, str]:
        env = self.server.env()
        if self.ssh_config:
            env["INVOKE_MEESHY_SSH_CONFIG"] = self.ssh_config
        return env

    def use_kex(self, algorithms: str) -> None:
        """Every ssh of the run with ``KexAlgorithms algorithms`` (what a user's
        ~/.ssh/config would say), in a copy of the fixture's ssh_config."""
        copy = self.server.dir / "ssh_config.kex"
        copy.write_text(f"KexAlgorithms {algorithms}\n\n" + self.server.ssh_config.read_text())
        self.ssh_config = str(copy)

    def run(self, args: list[str], *, over_ssh: bool) -> tuple[float, str]:
        argv = [sys.executable, "-m", "invoke", args[0]]
        if over_ssh:
            argv += ["--context", ALIAS]
        argv += args[1:]
        t = time.perf_counter()
        r = sh(argv, cwd=PROJECT, env=self.env())
        dt = time.perf_counter() - t
        if r.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr}")
        return dt, r.stdout

    def tasks(self) -> dict[str, list[str]]:
        repo = ["--root", str(self.root), "--registry", NS]
        reg = ["--registry-url", self.registry.host]
        copy = ["--volume", self.volume, "--force", "--helper-image", "busybox:latest"]
        return {
            "docker.ensure": ["docker.ensure"],
            "volumes.size": ["volumes.size"],
            "images.list": ["images.list", *repo],
            "images.validate": ["images.validate", *repo],
            "images.push": ["images.push", *repo, *reg],
            "staging.tag": ["staging.tag", *repo, "--to", "benchstg"],
            "staging.push": ["staging.push", *repo, "--to", "benchstg", *reg],
            "staging.volumes": ["staging.volumes", *copy],
            "build.gateway": [
                "build.gateway",
                *repo,
                "--progress",
                "quiet",
            ],  # up to date: the task alone
            "build.translator": ["build.translator", *repo, "--progress", "quiet"],
            "build.web": ["build.web", *repo, "--progress", "quiet"],
            "build.all": ["build.all", *repo, "--progress", "quiet"],
            "release": ["release", *repo, *reg],
        }

    def pair(self, args: list[str], runs: int) -> tuple[list[float], list[float]]:
        sock: list[float] = []
        ssh: list[float] = []
        self.run(args, over_ssh=False)  # warm: first tag/push/copy does the real work
        for _ in range(runs):
            sock.append(self.run(args, over_ssh=False)[0])
            ssh.append(self.run(args, over_ssh=True)[0])
        if args[0].startswith(("build.", "release")):
            IMAGES.track()  # builds are up to date here; should one rebuild, its old image goes
        return sock, ssh


def row(name: str, sock: list[float], ssh: list[float]) -> str:
    a, b = statistics.median(sock), statistics.median(ssh)
    runs = " ".join(f"{x:.2f}" for x in sock) + " | " + " ".join(f"{x:.2f}" for x in ssh)
    return f"| {name} | {a:.2f} s | {b:.2f} s | **{b / a:.2f}** | {runs} |"


@contextlib.contextmanager
def unrelated_images(count: int) -> Iterator[list[str]]:
    """``count`` distinct images (a commit each), removed afterwards."""
    import docker

    client = docker.from_env()
    made: list[str] = []
    container = client.containers.create("busybox:latest", ["true"], network_mode="none")
    try:
        for i in range(count):
            ref = f"benchssh-unrelated/img{i}"
            container.commit(repository=ref, tag="latest", changes=[f"LABEL n={i}"])
            made.append(f"{ref}:latest")
        yield made
    finally:
        container.remove(force=True)
        for ref in made:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(ref, force=True)
        client.close()


def context_bytes(bench: Bench, root: Path, *, over_ssh: bool) -> dict[str, int]:
    """Bytes each concurrent build of ``build.all`` uploaded (its load-build-context step)."""
    _, out = bench.run(
        ["build.all", "--root", str(root), "--registry", NS, "--progress", "plain", "--force"],
        over_ssh=over_ssh,
    )
    IMAGES.track()  # a forced build leaves the image it replaced untagged: removed at the end
    steps: dict[tuple[str, str], str] = {}
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"\[([^\]]+)\] (#\d+) (.*)$", line)
        if not m:
            continue
        image, step, text = m.groups()
        if "[internal] load build context" in text:
            steps[(image, step)] = "context"
        size = SIZE_RE.search(text)
        if size and steps.get((image, step)) == "context":
            sizes[image] = int(float(size.group(1)) * UNITS[size.group(2)])
    return sizes


def remove_namespace() -> None:
    import docker

    client = docker.from_env()
    try:
        for image in client.api.images():  # one call: other users may remove images meanwhile
            for tag in image.get("RepoTags") or []:
                first, _, rest = tag.partition("/")
                repo = rest if rest and ":" in first else tag
                if repo.startswith(f"{NS}/"):
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(tag, force=True)
    finally:
        client.close()
    IMAGES.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--unrelated", type=int, default=100)
    parser.add_argument("--only", default="", help="comma-separated task names")
    parser.add_argument("--no-context-bytes", action="store_true")
    parser.add_argument(
        "--kex",
        default="",
        help="KexAlgorithms for every ssh (e.g. curve25519-sha256: OpenSSH 9.0-9.8's default "
        "sntrup761x25519 costs ~55 ms of CPU per connection on a 2-core machine)",
    )
    args = parser.parse_args()

    import docker

    client = docker.from_env()
    volume = f"meeshy-benchssh{uuid.uuid4().hex[:6]}-uploads"
    work = Path(tempfile.mkdtemp(prefix="benchssh-"))
    root = work / "meeshy"
    shutil.copytree(EXAMPLE, root, symlinks=True)
    try:
        client.volumes.create(volume)
        client.containers.run(
            "busybox:latest",
            ["sh", "-c", "for i in $(seq 1 200); do echo $i > /v/f$i; done"],
            volumes={volume: {"bind": "/v", "mode": "rw"}},
            network_mode="none",
            remove=True,
        )
        with Sshd() as server, LocalRegistry() as registry:
            bench = Bench(server, registry, root, volume)
            if args.kex:
                bench.use_kex(args.kex)
            kex = f"; KexAlgorithms {args.kex}" if args.kex else "; ssh's default KexAlgorithms"
            print(
                f"sshd on 127.0.0.1:{server.port}; registry {registry.host}; {args.runs} runs{kex}"
            )
            bench.run(["build.all", "--root", str(root), "--registry", NS], over_ssh=False)
            tasks = bench.tasks()
            wanted = [t for t in args.only.split(",") if t] or list(tasks)
            print("\n| task | socket | ssh | ssh/socket | runs (socket \\| ssh) |")
            print("| --- | --- | --- | --- | --- |")
            for name in wanted:
                print(row(name, *bench.pair(tasks[name], args.runs)), flush=True)

            if args.unrelated:
                print(f"\nwith {args.unrelated} unrelated images added:\n")
                print("| task | socket | ssh | ssh/socket | runs (socket \\| ssh) |")
                print("| --- | --- | --- | --- | --- |")
                with unrelated_images(args.unrelated):
                    for name in ("images.list", "staging.tag"):
                        label = f"{name} (+{args.unrelated} images)"
                        print(row(label, *bench.pair(tasks[name], args.runs)), flush=True)

            if not args.no_context_bytes:
                print("\nbytes each concurrent build uploaded (build.all, fresh copies):\n")
                print("| context | link | gateway | translator | web | total |")
                print("| --- | --- | --- | --- | --- | --- |")
                for label, blob in (("example", False), ("example + 200 MB folder", True)):
                    for over_ssh in (False, True):
                        copy = work / f"ctx-{uuid.uuid4().hex[:6]}"
                        shutil.copytree(EXAMPLE, copy, symlinks=True)
                        if blob:
                            (copy / "unrelated").mkdir()
                            with (copy / "unrelated" / "blob.bin").open("wb") as f:
                                for _ in range(200):
                                    f.write(os.urandom(1_000_000))
                        sizes = context_bytes(bench, copy, over_ssh=over_ssh)
                        shutil.rmtree(copy)
                        cells = [sizes.get(k, 0) for k in ("gateway", "translator:cpu", "web")]
                        link = "ssh" if over_ssh else "socket"
                        print(
                            f"| {label} | {link} | "
                            + " | ".join(f"{c} B" for c in cells)
                            + f" | {sum(cells)} B |",
                            flush=True,
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            remove_namespace()
        finally:
            for c in client.api.containers(all=True, filters={"volume": volume}):
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_container(c["Id"], force=True)
            for name in (volume, volume.replace("meeshy-", "meeshy-staging-", 1)):
                with contextlib.suppress(docker.errors.NotFound):
                    client.volumes.get(name).remove(force=True)
            client.close()


if __name__ == "__main__":
    main()
