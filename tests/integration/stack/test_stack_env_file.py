"""A configured env file that is missing, through the real CLI on the real engine: the tasks
that change something with its variables (stack.up, stack.pull, stack.down --volumes) refuse
in one line, exit 2, before anything runs; their dry runs, the read-only tasks and a plain
stack.down (containers are found by the project's label) warn and go on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli import InvResult, run_inv
from tests.integration.stack.stack_world import compose_ps, docker_sdk, remove_project

pytestmark = pytest.mark.engine

DEV_FILE = "infrastructure/docker/compose/docker-compose.dev.yml"
ENV_FILE = "infrastructure/envs/.env.example"

STACK = """\
services:
  talk:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "echo greeting $$GREETING; exec sleep 600"]
    environment:
      GREETING: "${GREETING:-none}"
    volumes:
      - talk_data:/data

volumes:
  talk_data:
    name: ${TALK_VOLUME:-stacktest-UID-default}
"""


@dataclass
class Fx:
    root: Path
    uid: str

    @property
    def project(self) -> str:
        return f"stacktest-{self.uid}-dev"

    @property
    def env_file(self) -> Path:
        return self.root / ENV_FILE

    @property
    def volume(self) -> str:
        return f"stacktest-{self.uid}-talk"

    def write_env_file(self) -> None:
        self.env_file.write_text(
            f"GREETING=hello-{self.uid}\nTALK_VOLUME={self.volume}\n", encoding="utf-8"
        )

    def inv(self, *args: str) -> InvResult:
        return run_inv(
            *args,
            env={"MEESHY_ROOT": str(self.root), "INVOKE_MEESHY_STACKS_DEV_PROJECT": self.project},
            timeout=300,
        )

    def states(self) -> dict[str, str]:
        return {r["Service"]: r["State"] for r in compose_ps(self.project)}


@pytest.fixture
def fx(tmp_path: Path) -> Iterator[Fx]:
    f = Fx(tmp_path, uuid.uuid4().hex[:8])
    (tmp_path / DEV_FILE).parent.mkdir(parents=True)
    (tmp_path / DEV_FILE).write_text(STACK.replace("UID", f.uid), encoding="utf-8")
    f.env_file.parent.mkdir(parents=True)
    try:
        yield f
    finally:
        with docker_sdk() as client:
            remove_project(client, f.project, f.uid)


def refusal(fx: Fx, task: str) -> str:
    return (
        f"ERROR: refused, nothing done: env file {ENV_FILE} of stack dev not found under "
        f"{fx.root} (`{task}` needs its variables): create it, or set "
        'meeshy.stacks.dev.env_file to "" in invoke.yaml to run without one'
    )


def nothing_of(fx: Fx) -> list[str]:
    with docker_sdk() as client:
        found = [
            c.name
            for c in client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={fx.project}"}
            )
        ]
        found += [n.name for n in client.networks.list(filters={"name": fx.project})]
        found += [v.name for v in client.volumes.list(filters={"name": fx.uid})]
    return found


def test_up_and_pull_refuse_in_one_line_and_start_nothing(fx: Fx) -> None:
    r = fx.inv("stack.up", "--timeout", "30")
    assert r.code == 2, r
    assert r.err.strip() == refusal(fx, "stack.up"), r
    assert r.out == "", r
    assert nothing_of(fx) == []

    r = fx.inv("stack.pull")
    assert r.code == 2, r
    assert r.err.strip() == refusal(fx, "stack.pull"), r

    # dry runs warn and show what would run without the file
    r = fx.inv("stack.up", "--dry-run")
    assert r.code == 0, r
    assert "without --dry-run `stack.up` refuses (create it, or set" in r.err, r
    assert "--env-file" not in r.out and f"--project-name {fx.project} up --detach" in r.out, r
    r = fx.inv("stack.pull", "--dry-run")
    assert r.code == 0, r
    assert "without --dry-run `stack.pull` refuses" in r.err, r
    assert nothing_of(fx) == []


def test_a_stack_whose_env_file_went_is_read_and_taken_down_but_keeps_its_volumes(
    fx: Fx,
) -> None:
    fx.write_env_file()
    r = fx.inv("stack.up", "--timeout", "60")
    assert r.code == 0, r
    assert fx.states() == {"talk": "running"}
    r = fx.inv("stack.logs")
    assert f"greeting hello-{fx.uid}" in r.out, r  # the env file reached compose

    fx.env_file.unlink()
    warning = f"env file {ENV_FILE} not found under {fx.root}: running compose without"
    for task in ("stack.status", "stack.urls", "stack.logs"):
        r = fx.inv(task)
        assert r.code == 0, r
        assert warning in r.err, r
    r = fx.inv("stack.health")
    assert r.code == 0 and warning in r.err, r

    # without the file, the volume's name falls back to its default: --volumes refuses
    r = fx.inv("stack.down", "--volumes")
    assert r.code == 2, r
    assert r.err.strip() == refusal(fx, "stack.down --volumes"), r
    assert fx.states() == {"talk": "running"}

    r = fx.inv("stack.down")
    assert r.code == 0, r
    assert warning in r.err and f"{fx.project} is down" in r.out, r
    assert fx.states() == {}
    with docker_sdk() as client:
        assert [v.name for v in client.volumes.list(filters={"name": fx.volume})] == [fx.volume]
