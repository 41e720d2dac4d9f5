"""Malformed configuration of every type, through the real CLI: one line, exit 2, no
traceback, nothing built. Each case runs the task runner from a private copy of the project
(tasks.py + tasks/) whose invoke.yaml is the hostile one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT / "example"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    dest.mkdir()
    shutil.copy(PROJECT / "tasks.py", dest / "tasks.py")
    shutil.copytree(PROJECT / "tasks", dest / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(EXAMPLE, dest / "example", symlinks=True)
    return dest


def _inv(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    full.update({"NO_COLOR": "1", "DOCKER_HOST": "unix:///nonexistent.sock"})
    full.pop("DOCKER_REGISTRY", None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        check=False,
    )


def _one_line(r: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), r.stderr
    return lines[0]


YAML_CASES = [
    pytest.param(
        "meeshy:\n  registry: [a, b]\n", "meeshy.registry must be a string", id="list-registry"
    ),
    pytest.param("meeshy:\n  root: [example]\n", "meeshy.root must be a string", id="list-root"),
    pytest.param(
        "meeshy:\n  services: [gateway]\n",
        "meeshy.services must be a mapping and is a list (['gateway'])",
        id="list-services",
    ),
    pytest.param(
        "meeshy: hello\n", "meeshy must be a mapping and is a string ('hello')", id="scalar-meeshy"
    ),
    pytest.param(
        "meeshy:\n  stacks: 3\n",
        "meeshy.stacks must be a mapping and is a whole number (3)",
        id="int-stacks",
    ),
    pytest.param(
        "meeshy:\n  services:\n    gateway: {dockerfile: {x: 1}}\n",
        "meeshy.services.gateway.dockerfile must be a string, not a mapping ({'x': 1})",
        id="mapping-dockerfile",
    ),
    pytest.param("meeshy:\n  ssh: null\n", "meeshy.ssh must be a mapping", id="null-ssh"),
    pytest.param(
        "meeshy:\n  registry: 'Bad Name'\n", "is not a registry/namespace", id="bad-registry"
    ),
    pytest.param("meeshy:\n  registri: acme\n", "did you mean 'registry'", id="typo-key"),
    pytest.param("meeshy:\n  all: [gateway, webb]\n", "did you mean 'web'", id="typo-service"),
    pytest.param(
        "meeshy:\n  services:\n    web: {load: maybe}\n", "must be true or false", id="bad-bool"
    ),
    pytest.param(
        "meeshy:\n  services:\n    web: {tags: latest}\n",
        "must be a list of strings",
        id="tags-string",
    ),
    pytest.param(
        "meeshy:\n  services:\n    web: {build_args: [a]}\n", "must be a mapping", id="args-list"
    ),
    pytest.param(
        "meeshy:\n  services:\n    web: {schema_policy: cpy}\n",
        "did you mean 'copy'",
        id="typo-policy",
    ),
    pytest.param("meeshy:\n  tag: 'a b'\n", "is not a valid Docker tag", id="bad-tag"),
    pytest.param(
        "meeshy:\n  builder: '--help'\n",
        "meeshy.builder '--help' is not a builder name: name one from 'docker buildx ls'",
        id="builder-option",
    ),
    pytest.param("meeshy: [\n", "invoke.yaml, line 2, column 1: ", id="invalid-yaml"),
    pytest.param(
        "meeshy:\n  root: example\n\tregistry: x\n",
        "invoke.yaml, line 3, column 1: found character '\\t' that cannot start any token",
        id="tab",
    ),
    pytest.param(
        "\x00\x01\x02\xff\xfe binary", "invoke.yaml, line 1: byte 0xff is not", id="binary"
    ),
    pytest.param(
        "meeshy:\n  root: example\n  registry: \xe9t\xe9\n",
        "invoke.yaml, line 3: byte 0xe9 is not UTF-8",
        id="latin-1",
    ),
    pytest.param("- meeshy\n", "at its top level, not a list", id="top-level-list"),
    pytest.param("42\n", "at its top level, not a whole number", id="top-level-int"),
    pytest.param("just words\n", "at its top level, not a string", id="top-level-str"),
]


@pytest.mark.parametrize(("yaml_text", "expected"), YAML_CASES)
def test_malformed_invoke_yaml(project: Path, yaml_text: str, expected: str) -> None:
    (project / "invoke.yaml").write_bytes(yaml_text.encode("latin-1"))  # one byte a char
    r = _inv(project, "build.all", "--dry-run", "--root", "example")
    line = _one_line(r)
    assert expected in line, line
    assert line.endswith(f"fix {project / 'invoke.yaml'}") or "invoke.yaml" not in expected, line


@pytest.mark.parametrize(
    ("yaml_text", "var", "key"),
    [
        pytest.param(
            "meeshy:\n  stacks:\n    dev: {project: 5}\n",
            "INVOKE_MEESHY_STACKS_DEV_PROJECT",
            "meeshy.stacks.dev.project",
            id="project",
        ),
        pytest.param(
            "meeshy:\n  registry: 5\n", "INVOKE_MEESHY_REGISTRY", "meeshy.registry", id="registry"
        ),
        # a stack and a service the config adds have no defaults of their own: their keys
        # are strings all the same
        pytest.param(
            "meeshy:\n  stacks:\n    qa: {file: qa.yml, project: 5, env_file: ''}\n",
            "INVOKE_MEESHY_STACKS_QA_PROJECT",
            "meeshy.stacks.qa.project",
            id="added-stack",
        ),
        pytest.param(
            "meeshy:\n  services:\n    extra: {dockerfile: 5}\n",
            "INVOKE_MEESHY_SERVICES_EXTRA_DOCKERFILE",
            "meeshy.services.extra.dockerfile",
            id="added-service",
        ),
    ],
)
def test_an_unquoted_number_in_the_file_is_named_not_the_env_var(
    project: Path, yaml_text: str, var: str, key: str
) -> None:
    """Invoke casts an INVOKE_* variable to the type the config file gave the key: with an
    unquoted `project: 5` in invoke.yaml and the variable set to a name, the line said
    "INVOKE_MEESHY_STACKS_DEV_PROJECT='acme' is not a whole number: set it to one, e.g. 5",
    telling the user to put a number where a name belongs. The file is at fault."""
    (project / "invoke.yaml").write_text(yaml_text)
    r = _inv(project, "stack.urls", "--root", "example", env={var: "acme"})
    assert _one_line(r) == (
        f"ERROR: {key} is 5 in a config file, not a string, so Invoke cannot read "
        f"{var}='acme': quote it in the file"
    )


RUNTIME_CASES = [
    pytest.param("c.json", "{", "c.json, line 1, column 2: Expecting property name", id="json"),
    pytest.param("c.json", "[1]", "c.json must hold a mapping", id="json-list"),
    pytest.param("c.yml", "meeshy:\n  tag: [\n", "c.yml, line 3, column 1: ", id="yml"),
    pytest.param("c.py", "x = (\n", "cannot read the config file c.py (SyntaxError: ", id="py"),
    pytest.param(
        "c.yaml",
        None,
        "config file c.yaml (from -f or INVOKE_RUNTIME_CONFIG) does not",
        id="missing",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), RUNTIME_CASES)
@pytest.mark.parametrize("how", ["-f", "env"])
def test_malformed_or_missing_runtime_config(
    project: Path, name: str, text: str | None, expected: str, how: str
) -> None:
    """``-f FILE`` (or INVOKE_RUNTIME_CONFIG): a file Invoke cannot read is named with its
    line; a missing one is refused, where Invoke skipped it and ran on the defaults."""
    if text is not None:
        (project / name).write_text(text)
    if how == "-f":
        r = _inv(project, "-f", name, "build.all", "--dry-run", "--root", "example")
    else:
        env = {"INVOKE_RUNTIME_CONFIG": name}
        r = _inv(project, "build.all", "--dry-run", "--root", "example", env=env)
    line = _one_line(r)
    assert expected in line, line
    assert "docker buildx" not in r.stdout


@pytest.mark.parametrize(
    "args", [["volumes.size"], ["docker.ensure", "--dry-run"], ["staging.volumes", "--dry-run"]]
)
def test_tasks_without_a_monorepo_check_the_whole_config(project: Path, args: list[str]) -> None:
    """A typo anywhere in the config file is refused by the tasks that read one key of it
    too, before they reach for the engine (here, an engine that does not exist: exit 3)."""
    (project / "invoke.yaml").write_text(
        "meeshy:\n  root: example\n  services:\n    web: {schema_policy: cpy}\n"
    )
    assert "did you mean 'copy'" in _one_line(_inv(project, *args))


ENV_CASES = [
    pytest.param({"INVOKE_MEESHY_ALL": "gateway"}, 0, "", id="all-one-name"),
    pytest.param(
        {"INVOKE_MEESHY_ALL": "gateway,nope"}, 2, "unknown service 'nope'", id="all-unknown"
    ),
    pytest.param(
        {"DOCKER_REGISTRY": "/"}, 2, "DOCKER_REGISTRY '/' is not a registry", id="registry-slash"
    ),
    pytest.param({"DOCKER_REGISTRY": "UPPER"}, 2, "is not a registry", id="registry-upper"),
    pytest.param(
        {"INVOKE_MEESHY_SERVICES_WEB_BUILD_ARGS": "NODE_ENV=production"},
        2,
        "INVOKE_MEESHY_SERVICES_WEB_BUILD_ARGS names the group meeshy.services.web.build_args,"
        " not one setting (Invoke would ignore it): set meeshy.services.web.build_args in"
        " invoke.yaml, or a setting in it (INVOKE_MEESHY_SERVICES_WEB_BUILD_ARGS_",
        id="group-build-args",
    ),
    pytest.param(
        {"INVOKE_MEESHY_SSH": "1"}, 2, "or a setting in it (INVOKE_MEESHY_SSH_", id="group-ssh"
    ),
    pytest.param(
        {"INVOKE_MEESHY_SERVICES_WEB_TAGS": "a,b"},
        2,
        "INVOKE_MEESHY_SERVICES_WEB_TAGS='a,b': Invoke cannot set a list from a variable: set"
        " meeshy.services.web.tags in invoke.yaml (or a file given with -f), and unset"
        " INVOKE_MEESHY_SERVICES_WEB_TAGS",
        id="list-tags",
    ),
    pytest.param(
        {"INVOKE_MEESHY_SSH_CONNECT_TIMEOUT": "soon"},
        2,
        "INVOKE_MEESHY_SSH_CONNECT_TIMEOUT='soon' is not a whole number: set it to one, e.g. 10",
        id="int-timeout",
    ),
]


@pytest.mark.parametrize(("env", "code", "expected"), ENV_CASES)
def test_hostile_environment(project: Path, env: dict[str, str], code: int, expected: str) -> None:
    r = _inv(project, "build.all", "--dry-run", "--root", "example", env=env)
    if code == 0:
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert r.stdout.count("docker buildx build") == 1, r.stdout
        return
    assert expected in _one_line(r, code)


def test_binary_version_file(project: Path) -> None:
    (project / "example/services/gateway/VERSION").write_bytes(b"\xff\xfe\x00\x01")
    line = _one_line(_inv(project, "build.gateway", "--dry-run", "--root", "example"))
    assert "services/gateway/VERSION: not text" in line


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["docker.ensure", "--timeout", "abc"], id="timeout-abc"),
        pytest.param(["staging.compose", "--port-offset", "abc", "--dry-run"], id="offset-abc"),
    ],
)
def test_bad_int_flags(project: Path, args: list[str]) -> None:
    r = _inv(project, *args)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode != 0
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) <= 2, r.stderr


def test_docker_host_garbage_is_bad_input_not_an_engine_down(project: Path) -> None:
    r = _inv(project, "images.list", env={"DOCKER_HOST": "garbage"})
    line = _one_line(r, 2)
    assert "DOCKER_HOST 'garbage' is not an engine address" in line


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        pytest.param("tcp://127.0.0.1:99999", "port out of range 0-65535", id="port-range"),
        pytest.param(
            "tcp://127.0.0.1:abc", "port could not be cast to integer value as 'abc'", id="port"
        ),
        pytest.param("http://[::1", "invalid IPv6 URL", id="ipv6-bracket"),
    ],
)
@pytest.mark.parametrize(
    "args",
    [
        ["docker.ensure"],
        ["stack.status", "--root", "example"],
        ["build.web", "--dry-run", "--root", "example"],
    ],
    ids=str,
)
def test_docker_host_whose_port_or_host_does_not_parse_is_bad_input(
    project: Path, host: str, reason: str, args: list[str]
) -> None:
    """The docker SDK raised a bare ValueError for these (exit 70, "internal error"), even in
    a dry run; stack.* blamed the compose file (compose: "unable to resolve docker
    endpoint"). One line naming DOCKER_HOST and why, exit 2."""
    r = _inv(project, *args, env={"DOCKER_HOST": host})
    line = _one_line(r, 2)
    assert line == (
        f"ERROR: DOCKER_HOST {host!r} is not an engine address: {reason}: use "
        "unix:///path/docker.sock, tcp://HOST:PORT or ssh://[USER@]HOST, or unset it"
    )


def test_a_schema_path_that_is_a_directory_is_named_so(project: Path) -> None:
    schema = project / "example/packages/shared/prisma/schema.prisma"
    schema.unlink()
    schema.mkdir()
    r = _inv(project, "schema.check", "--root", "example")
    assert r.returncode == 4, r.stderr
    assert "schema.prisma: a directory, not the schema file" in r.stderr


def test_a_copy_from_cycle_is_refused_before_anything_runs(project: Path) -> None:
    df = project / "example/apps/web/Dockerfile"
    df.write_text(
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /x /y\n"
        "COPY packages/shared/ /app/packages/shared/\nFROM b AS runner\n"
    )
    r = _inv(project, "build.web", "--root", "example", "--dry-run")
    assert r.returncode == 4, r.stderr
    assert "circular dependency" in r.stderr and "docker buildx" not in r.stdout
