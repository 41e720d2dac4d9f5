"""stack.up's waiting on the real engine: a service that exits, turns unhealthy or keeps
restarting fails the task at once with its last log lines; one-shots that exit 0 are done;
a timeout names what is not ready; --no-wait, --service, and one-line refusals. Also
stack.pull: what is missing, what is a local build and how to build it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks import stack as stack_tasks
from tests.integration.stack.stack_run import run_task
from tests.integration.stack.stack_world import (
    FixtureStack,
    docker_sdk,
    remove_project,
)

pytestmark = pytest.mark.engine


Fx = FixtureStack


@pytest.fixture
def fx(tmp_path: Path) -> Iterator[Fx]:
    f = Fx(tmp_path, uuid.uuid4().hex[:8])
    (tmp_path / "packages/shared/prisma").mkdir(parents=True)
    (tmp_path / "packages/shared/prisma/schema.prisma").write_text("// schema\n")
    try:
        yield f
    finally:
        with docker_sdk() as client:
            remove_project(client, f.project, f.uid)
            left = client.containers.list(all=True, filters={"name": f.uid})
            assert not left


def svc(name: str, command: str, extra: str = "") -> str:
    return (
        f"  {name}:\n    image: busybox:latest\n    init: true\n"
        f'    command: ["sh", "-c", {json.dumps(command)}]\n{extra}'
    )


HEALTHY_AFTER_2S = svc(
    "slow",
    "sleep 2; touch /ready; exec sleep 600",
    '    healthcheck:\n      test: ["CMD", "test", "-f", "/ready"]\n'
    "      interval: 1s\n      retries: 30\n",
)


def test_healthy_running_and_one_shot(fx: Fx) -> None:
    fx.write(
        HEALTHY_AFTER_2S
        + svc("plain", "exec sleep 600")
        + svc("once", f"echo once {fx.uid}", '    restart: "no"\n')
    )
    started = time.monotonic()
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=60)
    assert code == 0, out + err
    assert time.monotonic() - started >= 2
    assert "[slow] up in" in out and "healthy" in out
    assert "[once] up in" in out and "completed (exit 0)" in out
    assert fx.states() == {"slow": "running", "plain": "running", "once": "exited"}


def test_a_service_that_exits_fails_at_once_with_its_logs(fx: Fx) -> None:
    fx.write(
        svc("steady", "exec sleep 600")
        + svc("job", f"echo boom {fx.uid}; exit 3", '    restart: "no"\n')
        + svc(
            "never",
            "exec sleep 600",
            '    healthcheck:\n      test: ["CMD", "false"]\n      interval: 60s\n',
        )
    )
    started = time.monotonic()
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=120)
    elapsed = time.monotonic() - started
    assert code == 1, out + err
    assert elapsed < 30  # at once, not at the 120 s timeout
    assert f"ERROR: job: exited with code 3; its last log lines:\n  | boom {fx.uid}" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ERROR: stack fx: job exited with code 3: what started stays up")
    assert "inv stack.down --env fx" in last
    assert fx.states()["steady"] == "running"  # the stack stays up


def test_a_service_that_turns_unhealthy_fails_at_once(fx: Fx) -> None:
    fx.write(
        svc(
            "sick",
            f"echo sick {fx.uid}; exec sleep 600",
            '    healthcheck:\n      test: ["CMD", "false"]\n'
            "      interval: 1s\n      retries: 2\n",
        )
    )
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=120)
    assert code == 1, out + err
    assert "ERROR: sick: unhealthy; its last log lines:" in err
    assert f"  | sick {fx.uid}" in err
    assert "[sick] FAILED in" in out


def test_a_restart_loop_fails(fx: Fx) -> None:
    fx.write(svc("loop", f"echo loop {fx.uid}; sleep 1; exit 1", "    restart: always\n"))
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=60)
    assert code == 1, out + err
    assert "ERROR: loop: exited" in err and "restarted" in err
    assert f"  | loop {fx.uid}" in err


def test_timeout_names_what_is_not_ready(fx: Fx) -> None:
    fx.write(
        svc(
            "slow",
            "exec sleep 600",
            '    healthcheck:\n      test: ["CMD", "true"]\n      interval: 60s\n'
            "      start_period: 60s\n",
        )
    )
    started = time.monotonic()
    code, _out, err = fx.run(stack_tasks.up, env="fx", timeout=3)
    assert code == 1
    assert 3 <= time.monotonic() - started < 20
    assert "stack fx: not ready after 3s: slow (health: starting)" in err


def test_no_wait_and_service_selection(fx: Fx) -> None:
    fx.write(
        svc("db", "exec sleep 600")
        + svc("web", "exec sleep 600", "    depends_on: [db]\n")
        + svc("other", "exec sleep 600")
    )
    code, out, err = fx.run(stack_tasks.up, env="fx", service=["web"], dry_run=True)
    assert code == 0, err
    assert out.splitlines()[1].endswith(f"--project-name {fx.project} up --detach -- web")
    assert "then wait up to 180s for: db, web" in out
    code, out, err = fx.run(stack_tasks.up, env="fx", service=["web"], wait=False)
    assert code == 0, out + err
    assert fx.states() == {"db": "running", "web": "running"}
    code, _out, err = fx.run(stack_tasks.up, env="fx", service=["wbe"])
    assert code == 2
    assert "stack fx has no service 'wbe': did you mean 'web'?" in err


def test_a_service_named_like_a_flag_is_a_service(fx: Fx) -> None:
    """Compose takes a service named ``-q``; it reaches compose after ``--``, so ``up``
    starts that one service and ``logs`` shows its lines (as a flag, ``-q`` would have been
    read as another option)."""
    fx.write(svc("-q", "echo quiet-one; exec sleep 600") + svc("other", "exec sleep 600"))
    code, out, err = fx.run(stack_tasks.up, env="fx", service=["-q"], wait=False)
    assert code == 0, out + err
    assert fx.states() == {"-q": "running"}
    code, out, err = fx.run(stack_tasks.logs, env="fx", service=["-q"])
    assert code == 0, out + err
    assert "quiet-one" in out


def test_one_line_refusals(fx: Fx) -> None:
    fx.write(svc("a", "exec sleep 600"))
    code, _out, err = fx.run(stack_tasks.up, env="stagign")
    assert code == 2
    assert err.strip() == (
        "ERROR: unknown stack --env 'stagign': did you mean 'staging'? "
        "(known: dev, local, prod, staging, fx)"
    )
    code, _out, err = fx.run(stack_tasks.up, env="staging")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "stack staging: no compose file" in err and "inv staging.compose" in err
    for timeout in (-1, 0):  # 0 gave up at once, and stopped compose mid-up
        code, _out, err = fx.run(stack_tasks.up, env="fx", timeout=timeout)
        assert code == 2
        assert err.strip() == (
            f"ERROR: --timeout {timeout} leaves no time to wait for the services: give the "
            "seconds to wait (at least 1), or --no-wait to start them without waiting"
        )
    code, out, err = fx.run(stack_tasks.up, env="fx", profile=["ful"], dry_run=True)
    assert code == 2, out + err  # compose itself starts nothing more, and says nothing
    assert err.strip() == "ERROR: stack fx has no profile 'ful': it declares no profile"


def test_pull_says_what_is_a_local_build(fx: Fx) -> None:
    fx.write(
        "  present:\n    image: busybox:latest\n"
        f"  web:\n    image: stacktest{fx.uid}/meeshy-web:staging\n"
        f"  thing:\n    image: stacktest{fx.uid}/thing:1\n"
        f"  built:\n    image: stacktest{fx.uid}/built:1\n    build: {{context: .}}\n"
    )
    code, out, err = fx.run(stack_tasks.pull, env="fx", dry_run=True)
    assert code == 0, err
    pulls = [ln for ln in out.splitlines() if " pull " in ln]
    assert [ln.rsplit(" ", 1)[-1] for ln in pulls] == ["thing", "web"]
    assert f"# built: stacktest{fx.uid}/built:1 is built by compose, not pulled" in out

    code, out, err = fx.run(stack_tasks.pull, env="fx", json=True)
    assert code == 1
    images = {i["service"]: i for i in json.loads(out)["images"]}
    assert images["present"]["status"] == "up to date"
    assert images["web"]["status"] == "not built"
    assert images["web"]["hint"] == (
        f"a local build: `inv build.web --registry stacktest{fx.uid} "
        f"staging.tag --registry stacktest{fx.uid}`"
    )
    assert images["thing"]["status"] == "failed"
    assert images["built"]["hint"].startswith("built by compose: `docker compose -f")
    assert "3 image(s) still missing" in err


def test_logs_since_and_tail(fx: Fx) -> None:
    fx.write(svc("talk", f"for i in 1 2 3 4 5; do echo line$$i {fx.uid}; done; exec sleep 600"))
    assert fx.run(stack_tasks.up, env="fx", timeout=30)[0] == 0
    deadline = time.monotonic() + 10
    out = ""
    while time.monotonic() < deadline and "line5" not in out:
        code, out, err = fx.run(stack_tasks.logs, env="fx", tail="2", since="10m")
        assert code == 0, err
    lines = [ln for ln in out.splitlines() if fx.uid in ln]
    assert [ln.split("|", 1)[1].split()[0] for ln in lines] == ["line4", "line5"]
    code, _out, err = fx.run(stack_tasks.logs, env="fx", tail="x")
    assert code == 2


def test_down_of_a_stack_named_like_prod_is_refused(fx: Fx) -> None:
    fx.write(svc("a", "exec sleep 600"))
    cfg = fx.config()
    cfg["stacks"]["fx"]["project"] = cfg["stacks"]["prod"]["project"]
    code, _out, err = run_task(cfg, stack_tasks.down, env="fx")
    assert code == 2
    assert "has prod's project name meeshy-prod" in err
    subprocess.run(["true"], check=True)


def test_up_of_a_stack_named_like_prod_is_refused(fx: Fx) -> None:
    """`stack.up` of a stack holding prod's project name (a copied `project:` line) made
    compose take prod's containers for its own: it replaced them with this file's services,
    which wrote into prod's project-scoped volumes. Refused as its down is, dry run too."""
    fx.write(svc("a", "exec sleep 600"))
    cfg = fx.config()
    cfg["stacks"]["prod"]["project"] = fx.project
    for dry_run in (True, False):
        code, out, err = run_task(cfg, stack_tasks.up, env="fx", dry_run=dry_run)
        assert code == 2, out + err
        assert err.strip() == (
            f"ERROR: refused: stack fx has prod's project name {fx.project} (its up would "
            "replace prod's containers with this file's, on prod's volumes): give "
            "meeshy.stacks.fx.project its own name"
        )
    assert fx.states() == {}


def test_a_symlinked_compose_file_binds_what_compose_binds(fx: Fx) -> None:
    """A stack file that is a symlink: `docker compose --file LINK` (the Makefile) resolves
    `./data` from the link's folder; stack.* ran compose on the resolved target, so the bind
    went to another host folder (Docker created it empty: a service started on no data)."""
    target = fx.root / "elsewhere/fx.yml"
    target.parent.mkdir()
    target.write_text(
        "services:\n" + svc("a", "exec sleep 600", '    volumes: ["./data:/data"]\n'),
        encoding="utf-8",
    )
    fx.file.symlink_to(target)
    code, out, err = fx.run(stack_tasks.up, env="fx", dry_run=True)
    assert code == 0, out + err
    assert f"--file {fx.file} " in out, out
    code, out, err = fx.run(stack_tasks.up, env="fx", wait=False)
    assert code == 0, out + err
    with docker_sdk() as client:
        (container,) = client.containers.list(
            filters={"label": f"com.docker.compose.project={fx.project}"}
        )
        sources = [m["Source"] for m in container.attrs["Mounts"]]
    assert sources == [str(fx.root / "data")]
    assert not (target.parent / "data").exists()


def test_compose_failing_is_reported_with_its_output(fx: Fx) -> None:
    fx.write(
        svc("a", "exec sleep 600")
        + f"  gone:\n    image: stacktest{fx.uid}/gone:1\n    pull_policy: missing\n"
    )
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=60)
    assert code == 1, out + err
    assert "ERROR: `docker compose up` said:" in err
    assert "its last log lines" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("ERROR: stack fx: `docker compose up` for " + fx.project + " failed:")
    )


def test_down_without_its_file_says_how(fx: Fx) -> None:
    code, _out, err = fx.run(stack_tasks.down, env="fx")
    assert code == 2
    assert f"`docker compose -p {fx.project} down` takes the project down" in err


def test_down_refuses_a_file_compose_cannot_read_and_says_how(fx: Fx) -> None:
    """A running stack whose file was broken since: `stack.down` ran compose down, which
    failed on the YAML (exit 1, no hint) and left every container up. It is refused now
    before anything runs, as for a missing file, with the way down without the file."""
    fx.write(svc("a", "exec sleep 600"))
    assert fx.run(stack_tasks.up, env="fx", timeout=30)[0] == 0
    fx.file.write_text("services:\n  a: [\n", encoding="utf-8")
    code, out, err = fx.run(stack_tasks.down, env="fx")
    assert code == 2, out + err
    assert err.strip() == (
        f"ERROR: the compose file of stack fx ({fx.file}) does not pass `docker compose "
        "config`: yaml: line 2: did not find expected node content: fix it; without its file, "
        f"`docker compose -p {fx.project} down` takes the project down (by its labels)"
    )
    assert fx.states() == {"a": "running"}
    subprocess.run(
        ["docker", "compose", "-p", fx.project, "down"],
        cwd=fx.root,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert fx.states() == {}


@pytest.mark.parametrize(
    ("services", "reason"),
    [
        pytest.param("  a: [\n", "yaml: line 2: did not find expected node content", id="yaml"),
        pytest.param(
            "  a:\n    image: busybox:latest\n    env_file: nope.env\n",
            "env file {root}/nope.env not found",
            id="env-file",
        ),
        pytest.param(
            "  a:\n    image: busybox:latest\n    depends_on: [b]\n"
            "  b:\n    image: busybox:latest\n    depends_on: [a]\n",
            "dependency cycle detected",
            id="cycle",
        ),
    ],
)
def test_a_file_compose_refuses_is_exit_2_naming_it(fx: Fx, services: str, reason: str) -> None:
    """status, health, urls, pull, logs, up, down: one line naming the file, exit 2 (a bad
    file, as the README says), not 1."""
    fx.write(services)
    head = (
        f"ERROR: the compose file of stack fx ({fx.file}) does not pass `docker compose config`: "
    )
    for task in (
        stack_tasks.status,
        stack_tasks.health,
        stack_tasks.urls,
        stack_tasks.pull,
        stack_tasks.logs,
        stack_tasks.up,
        stack_tasks.down,
    ):
        code, out, err = fx.run(task, env="fx")
        assert code == 2, (task, out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(head + reason.format(root=fx.root)), err
    assert fx.states() == {}


def _urls(out: str) -> dict[str, list[tuple[str, str, bool]]]:
    found: dict[str, list[tuple[str, str, bool]]] = {}
    for u in json.loads(out)["urls"]:
        found.setdefault(u["service"], []).append((u["url"], u["via"], u["running"]))
    return found


def _host_port(project: str, service: str, target: int) -> int:
    with docker_sdk() as client:
        (c,) = client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={project}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )
        return int(c.ports[f"{target}/tcp"][0]["HostPort"])


def test_urls_are_the_running_stacks(fx: Fx, monkeypatch: pytest.MonkeyPatch) -> None:
    """stack.up and stack.urls listed URLs of services that were not started (a profile not
    enabled, a service not selected), and read host ports from the file with this shell's
    variables: a port the engine picked gave no URL, a port a variable moved at `up` time
    the default. They read the engine's published ports now; what does not run is said so."""
    from tests.integration.stack.stack_world import free_ports

    moved, default = free_ports(2)
    fx.write(
        svc("db", "exec sleep 600", '    ports: ["127.0.0.1::5000"]\n')
        + svc(
            "app",
            "exec sleep 600",
            '    profiles: ["full"]\n'
            f'    ports: ["127.0.0.1:${{FX_APP_PORT_{fx.uid}:-{default}}}:3000"]\n',
        )
        + svc("quiet", "exec sleep 600", '    profiles: ["full"]\n')
    )
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=30)
    assert code == 0, out + err
    db = _host_port(fx.project, "db", 5000)
    rows = [ln.split() for ln in out.splitlines() if "db" in ln or "app" in ln]
    assert [f"http://127.0.0.1:{db}", "db", "port", "5000"] in rows, out
    assert ["-", "app", "not", "started", "(profile", "full)"] in rows, out
    assert str(default) not in out

    monkeypatch.setenv(f"FX_APP_PORT_{fx.uid}", str(moved))
    code, out, err = fx.run(stack_tasks.up, env="fx", timeout=30, profile=["full"])
    assert code == 0, out + err
    monkeypatch.delenv(f"FX_APP_PORT_{fx.uid}")  # a shell without the variable
    code, out, err = fx.run(stack_tasks.urls, env="fx", json=True)
    assert code == 0, err
    assert _urls(out) == {
        "db": [(f"http://127.0.0.1:{db}", "port 5000", True)],
        "app": [(f"http://127.0.0.1:{moved}", "port 3000", True)],
    }
    with docker_sdk() as client:
        (app,) = client.containers.list(
            filters={"label": f"com.docker.compose.project={fx.project}", "name": "app"}
        )
        app.stop(timeout=1)
    code, out, err = fx.run(stack_tasks.urls, env="fx", json=True)
    assert code == 0, err
    assert _urls(out)["app"] == [
        (f"http://127.0.0.1:{default}", "port 3000; from the file: not running (exited)", False)
    ]
