"""The CLI without an engine: listing, dry runs, clear one-line refusals."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.cli import run_inv

NO_ENGINE = {"DOCKER_HOST": "unix:///tmp/meeshy-no-engine.sock"}


def test_list_shows_every_build_task() -> None:
    r = run_inv("--list")
    assert r.code == 0, r
    for name in ("build.all", "build.gateway", "build.translator", "build.web", "schema.check"):
        assert name in r.out


def test_every_task_says_in_one_whole_line_what_it_does() -> None:
    """`inv --list` shows a docstring's first line only: a sentence that runs on to the
    next line would be cut off there."""
    code = (
        "import tasks; c = tasks.ns; "
        "print('\\n'.join(f'{n}\\t{(c[n].__doc__ or \"\").splitlines()[0]}' "
        "for n in c.task_names))"
    )
    lines = _python_in_project(code).splitlines()
    assert len(lines) >= 22
    cut = [ln for ln in lines if not ln.rstrip().endswith((".", ")"))]
    assert not cut, cut


def test_dry_run_needs_no_engine_and_prints_one_command_per_image() -> None:
    r = run_inv("build.all", "--dry-run", env=NO_ENGINE)
    assert r.code == 0, r
    cmds = [ln for ln in r.out.splitlines() if ln.startswith("docker ")]
    assert len(cmds) == 3
    argvs = [shlex.split(c) for c in cmds]
    # each image is built untagged, then tagged once its inputs are checked again
    assert all("--tag" not in a for a in argvs)
    assert [t[0] for t in _tags_after(r.out)] == [
        "isopen/meeshy-gateway:v1.0.40",
        "isopen/meeshy-translator:v1.0.0-cpu",
        "isopen/meeshy-web:v1.0.41",
    ]
    assert all(a[:3] == ["docker", "buildx", "build"] for a in argvs)


def _tags_after(out: str) -> list[list[str]]:
    """The tags each dry-run command is followed by."""
    then = "#   then, its inputs unchanged since: tag "
    return [ln.removeprefix(then).split() for ln in out.splitlines() if ln.startswith(then)]


def test_gpu_dry_run(example_copy: Path) -> None:
    r = run_inv(
        "build.translator",
        "--gpu",
        "--dry-run",
        "--root",
        str(example_copy),
        "--registry",
        "acme",
        env=NO_ENGINE,
    )
    assert r.code == 0, r
    (cmd,) = [shlex.split(ln) for ln in r.out.splitlines() if ln.startswith("docker ")]
    assert "TORCH_BACKEND=gpu" in cmd
    assert _tags_after(r.out) == [
        ["acme/meeshy-translator:v1.0.0-gpu", "acme/meeshy-translator:gpu"]
    ]
    assert "--load" in cmd


def test_no_engine_is_one_line_naming_the_host() -> None:
    r = run_inv("build.web", "--progress", "plain", env=NO_ENGINE)
    assert r.code == 3, r
    errors = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(errors) == 1, r
    assert errors[0].startswith(
        "ERROR: Cannot reach the Docker engine at unix:///tmp/meeshy-no-engine.sock: "
        "No such file or directory: start it with `inv docker.ensure`"
    )
    # another machine's engine: docker.ensure would refuse to start it, so it is not advised
    r = run_inv("volumes.size", env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert r.code == 3, r
    assert r.err.strip() == (
        "ERROR: Cannot reach the Docker engine at tcp://127.0.0.1:9: [Errno 111] Connection "
        "refused: check the engine on that machine (docker.ensure starts only a local engine)"
    )


def test_unknown_variant_is_one_line() -> None:
    r = run_inv("build.translator", "--variant", "rocm", "--dry-run", env=NO_ENGINE)
    assert r.code == 2, r
    assert r.err.strip() == (
        "ERROR: unknown translator variant 'rocm': choose one of cpu, gpu, gpu-cu121, gpu-cu118"
    )


def test_malformed_version_is_one_line(example_copy: Path) -> None:
    (example_copy / "apps/web/VERSION").write_text("one.two\n")
    r = run_inv("build.web", "--dry-run", "--root", str(example_copy), env=NO_ENGINE)
    assert r.code == 2, r
    assert r.err.strip() == (
        "ERROR: apps/web/VERSION: 'one.two' is not a version like 1.2.3: "
        "write MAJOR.MINOR.PATCH in that file"
    )
    assert "docker " not in r.out


def test_missing_version_file_is_warned_before_the_commands(example_copy: Path) -> None:
    (example_copy / "apps/web/VERSION").unlink()
    r = run_inv("build.web", "--dry-run", "--root", str(example_copy), env=NO_ENGINE)
    assert r.code == 0, r
    assert r.err.startswith(
        "WARNING: apps/web/VERSION not found: web is tagged as version 1.0.0 (the Makefile's "
        "fallback); create the file or fix meeshy.services.web.version_file\n"
    ), r
    assert "isopen/meeshy-web:v1.0.0" in r.out


def test_missing_root_is_one_line(tmp_path: Path) -> None:
    r = run_inv("build.all", "--dry-run", "--root", str(tmp_path / "nope"), env=NO_ENGINE)
    assert r.code == 2, r
    assert r.err.strip().startswith("ERROR: monorepo root ")
    assert r.err.strip().endswith("is not a directory: pass --root PATH or set MEESHY_ROOT")


def test_env_overrides_config(example_copy: Path) -> None:
    r = run_inv(
        "build.web",
        "--dry-run",
        env={**NO_ENGINE, "MEESHY_ROOT": str(example_copy), "DOCKER_REGISTRY": "envreg"},
    )
    assert r.code == 0, r
    assert "envreg/meeshy-web:v1.0.41" in r.out
    assert str(example_copy) in r.out
    r = run_inv("build.web", "--dry-run", env={**NO_ENGINE, "INVOKE_MEESHY_REGISTRY": "invreg"})
    assert "invreg/meeshy-web:v1.0.41" in r.out, r


def test_listing_imports_no_heavy_library() -> None:
    """`inv --list` imports every task module: they must not pull in docker, rich or
    python-on-whales (those load inside the tasks that use them)."""
    code = (
        "import sys, tasks; heavy = [m for m in ('docker', 'python_on_whales', 'rich', "
        "'pydantic') if m in sys.modules]; print(','.join(heavy))"
    )
    assert _python_in_project(code) == ""


def _python_in_project(code: str) -> str:
    """What ``python -c code`` prints, run from the project root (a fresh interpreter)."""
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    return r.stdout.strip()


def test_listing_and_completion_do_not_load_the_config_module() -> None:
    """tasks.lib.config (its five dataclasses) is most of what `inv --list` and each shell
    completion cost beyond Invoke: loaded only when a task may run, and then with the
    defaults Invoke's INVOKE_MEESHY_* overrides need."""

    def loaded(*argv: str) -> tuple[bool, bool]:
        config, defaults = _python_in_project(
            f"import sys; sys.argv = ['inv', *{list(argv)!r}]; import tasks; "
            "print('tasks.lib.config' in sys.modules, 'meeshy' in tasks.ns.configuration())"
        ).split()
        return config == "True", defaults == "True"

    assert loaded("--list") == (False, False)
    assert loaded("--complete", "--", "inv", "build.") == (False, False)
    assert loaded("build.all", "--help") == (False, False)
    assert loaded("build.all", "--dry-run") == (True, True)


def test_docker_library_errors_become_one_line(capsys: object) -> None:
    """The engine boundary keeps the library's message and picks the kind's exit code."""
    import pytest
    from docker.errors import APIError
    from invoke import Exit

    from tasks.invoke_adapter import running
    from tasks.lib.engine import boundary
    from tasks.lib.output import Output

    with pytest.raises(Exit) as exc, running(Output(plain=True)), boundary():
        raise APIError("500 Server Error", explanation="conflict: unable to delete image")
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()  # type: ignore[attr-defined]
    assert err == ["ERROR: the engine said: conflict: unable to delete image"]


def test_a_bug_is_not_reported_as_an_engine_problem() -> None:
    import pytest

    from tasks.lib.engine import boundary

    with pytest.raises(ZeroDivisionError), boundary():
        _ = 1 / 0


def test_dry_run_json_is_machine_readable() -> None:
    import json

    r = run_inv("build.all", "--dry-run", "--json", env=NO_ENGINE)
    assert r.code == 0, r
    plan = json.loads(r.out)  # nothing else on stdout
    assert [p["image"] for p in plan] == ["gateway", "translator:cpu", "web"]
    assert all(p["argv"][:3] == ["docker", "buildx", "build"] for p in plan)


def test_schema_check_json_and_exit_code(example_copy: Path) -> None:
    import json

    r = run_inv("schema.check", "--json", "--root", str(example_copy))
    assert r.code == 0, r
    assert {(x["service"], x["variant"], x["verdict"]) for x in json.loads(r.out)} == {
        ("gateway", None, "pass"),
        ("translator", "cpu", "pass"),
        ("translator", "gpu", "pass"),
        ("translator", "gpu-cu121", "pass"),
        ("translator", "gpu-cu118", "pass"),
        ("web", None, "pass"),
    }
    (example_copy / "packages/shared/prisma/schema.prisma").unlink()
    r = run_inv("schema.check", "--json", "--root", str(example_copy))
    assert r.code == 4, r
    assert all(x["verdict"] == "fail" for x in json.loads(r.out) if x["policy"] != "none")


def test_a_fifo_where_a_file_is_read_is_one_line_not_a_hang(example_copy: Path) -> None:
    """A FIFO blocks whoever opens it for reading until a writer comes: forever, in a
    checkout. Each file the tasks read is refused at once, saying what it is."""
    import os

    cases = {
        "services/gateway/VERSION": (2, "services/gateway/VERSION: cannot read (a named pipe"),
        "packages/shared/prisma/schema.prisma": (4, "a named pipe (FIFO), not the schema file"),
        ".dockerignore": (4, ".dockerignore: cannot read the ignore file (a named pipe"),
        "services/gateway/Dockerfile": (2, "services/gateway/Dockerfile is a named pipe (FIFO)"),
    }
    for rel, (code, words) in cases.items():
        path = example_copy / rel
        saved = path.read_bytes()
        path.unlink()
        os.mkfifo(path)
        try:
            args = ("build.gateway", "--root", str(example_copy), "--dry-run")
            r = run_inv(*args, env=NO_ENGINE, timeout=60)
            assert r.code == code, (rel, r)
            assert words in r.err, (rel, r)
            assert "Traceback" not in r.err
        finally:
            path.unlink()
            path.write_bytes(saved)


def test_env_vars_invoke_would_misread_are_one_line() -> None:
    """Invoke ignores an INVOKE_MEESHY_* variable that names no setting, reads `false` as
    true for a yes/no setting, and raises ValueError for a number it cannot cast: each is
    one line naming the variable, exit 2, for build and engine-only tasks alike."""
    cases = {
        "INVOKE_MEESHY_REGISTRI": ("x", "names no meeshy setting", "INVOKE_MEESHY_REGISTRY?"),
        "INVOKE_MEESHY_NOPE": ("x", "names no meeshy setting", "unset it"),
        "INVOKE_MEESHY_SSH_TTY": ("false", "reads anything but 0 or nothing as true", "1 or 0"),
        "INVOKE_MEESHY_SSH_CONNECT_TIMEOUT": ("abc", "='abc' is not a whole number", "e.g. 10"),
    }
    for var, (value, what, hint) in cases.items():
        for task in ("build.all", "volumes.size"):
            r = run_inv(
                task,
                "--dry-run" if task == "build.all" else "--json",
                env={**NO_ENGINE, var: value},
            )
            assert r.code == 2, (var, task, r)
            assert r.err.startswith(f"ERROR: {var}") and what in r.err and hint in r.err, r
            assert len(r.err.strip().splitlines()) == 1, r
    r = run_inv("build.all", "--dry-run", env={**NO_ENGINE, "INVOKE_MEESHY_SSH_TTY": "0"})
    assert r.code == 0, r


def test_a_root_in_a_symlink_loop_and_a_service_without_tags_are_one_line(
    tmp_path: Path,
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = run_inv("build.all", "--root", str(loop), "--dry-run", env=NO_ENGINE)
    assert r.code == 2, r
    assert "cannot be resolved (Symlink loop" in r.err and "Traceback" not in r.err
    # no tag: the image would be built under no name and judged "up to date" ever after
    config = tmp_path / "c.yaml"
    config.write_text("meeshy:\n  services:\n    gateway: {tags: []}\n")
    r = run_inv("-f", str(config), "build.gateway", "--dry-run", env=NO_ENGINE)
    assert r.code == 2, r
    assert r.err.strip() == (
        "ERROR: meeshy.services.gateway.tags is empty: give the image at least one tag"
    )


def test_an_empty_or_repeating_build_all_list_is_one_line() -> None:
    """`all: []` planned nothing and said "every image is up to date"; a name given twice
    ran two builds of the same tags at once."""
    for value, line in (
        ("", "ERROR: meeshy.all is empty: name what build.all builds, e.g. gateway,web"),
        ("gateway,web,gateway", "ERROR: meeshy.all names 'gateway' twice: name each service once"),
    ):
        r = run_inv("build.all", "--dry-run", env={**NO_ENGINE, "INVOKE_MEESHY_ALL": value})
        assert r.code == 2, r
        assert r.err.strip() == line


def test_stack_tasks_name_an_unknown_context_or_a_bad_ssh_address() -> None:
    """They read the engine's address before compose does: one line, exit 2, not compose's
    "the compose file does not pass" with exit 1."""
    for task in ("stack.status", "stack.urls", "stack.up"):
        r = run_inv(task, "--context", "meeshy-no-such-context")
        assert r.code == 2, r
        assert r.err.startswith("ERROR: Docker context 'meeshy-no-such-context' does not exist")
    r = run_inv("stack.status", env={"DOCKER_HOST": "ssh://-oProxyCommand=touch /tmp/x"})
    assert r.code == 2, r
    assert r.err.startswith("ERROR: bad ssh:// Docker endpoint"), r


def test_json_refusal_is_one_json_document_too() -> None:
    """A script reading --json got an empty stdout when a task was refused before its
    result; it now gets the refusal as JSON (the line stays on stderr)."""
    import json

    r = run_inv("build.all", "--json", "--root", "/nonexistent/meeshy", env=NO_ENGINE)
    assert r.code == 2, r
    doc = json.loads(r.out)
    assert doc["exit_code"] == 2 and "is not a directory" in doc["error"], doc
    assert r.err.startswith("ERROR: monorepo root /nonexistent/meeshy is not a directory")


def test_json_interrupted_is_one_json_document_too(capsys: object) -> None:
    """Found by review: `images.push --json` (any --json task) stopped by SIGINT/SIGTERM
    before its result left stdout empty; a script reading it got no document at all."""
    import json
    import signal

    import pytest
    from invoke import Exit

    from tasks.invoke_adapter import running
    from tasks.lib.errors import Interrupted
    from tasks.lib.output import Output

    with pytest.raises(Exit) as exc, running(Output(plain=True, json_mode=True)):
        raise Interrupted(signal.SIGTERM, "interrupted by SIGTERM while pushing x; nothing")
    assert exc.value.code == 143
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    doc = json.loads(captured.out)
    assert doc == {
        "error": "interrupted by SIGTERM while pushing x; nothing",
        "hint": None,
        "exit_code": 143,
    }
    assert captured.err.startswith("ERROR: interrupted by SIGTERM")
    with pytest.raises(Exit) as exc, running(Output(plain=True, json_mode=True)) as out:
        out.json({"done": True})  # a result already written: never a second document
        raise Interrupted(signal.SIGINT)
    assert json.loads(capsys.readouterr().out) == {"done": True}  # type: ignore[attr-defined]


def test_builds_refuse_an_image_name_docker_would_refuse() -> None:
    """Found by a hostile review: the image tasks refused it, but build.* planned
    `--tag isopen/UP:...` and left Docker to fail after the build (exit 1)."""
    env = {**NO_ENGINE, "INVOKE_MEESHY_SERVICES_GATEWAY_IMAGE": "UP"}
    r = run_inv("build.all", "--dry-run", env=env)
    assert r.code == 2, r
    assert r.err.startswith("ERROR: meeshy.services.gateway.image 'UP' makes 'isopen/UP'")
    r = run_inv("build.web", "--dry-run", "--registry", "a" * 250, env=NO_ENGINE)
    assert r.code == 2, r  # over Docker's 255 characters with the image name
    assert "which is not a valid image name" in r.err


def test_a_flag_given_an_empty_value_is_refused_not_defaulted() -> None:
    """`inv build.all --registry "$REG"` with REG unset meant the script's namespace; taking
    the default built prod's names (isopen). A hostile review found it."""
    for args in (("--registry=",), ("--registry", ""), ("--root=",)):
        r = run_inv("build.all", "--dry-run", *args, env=NO_ENGINE)
        assert r.code == 2, (args, r)
        flag = args[0].rstrip("=")
        assert r.err.strip() == (
            f"ERROR: {flag} is given an empty value: give {flag} a value, or leave it out"
        )
        assert r.out == ""


def test_release_offers_none_of_the_build_flags_it_refuses() -> None:
    """release never skips the gate, pushes after building, and has no --json: those build
    flags are not on its command line or in its --help (they were, then refused)."""
    r = run_inv("release", "--help")
    assert r.code == 0, r
    for flag in ("--skip-schema-check", "--push ", "--json"):
        assert flag not in r.out, flag
    assert "--registry-url" in r.out and "--dry-run" in r.out
    r = run_inv("release", "--push", "--dry-run", env=NO_ENGINE)
    assert r.code != 0 and "No idea what '--push' is!" in r.err + r.out, r


def test_stack_urls_without_an_engine_gives_the_files_urls_and_says_so() -> None:
    """`make urls` needs no engine; stack.urls reads the ports the engine published, and
    without one falls back to the file's, saying they were not checked (was exit 3)."""
    import json

    r = run_inv("stack.urls", env=NO_ENGINE)
    assert r.code == 0, r
    assert r.err.strip() == (
        "WARNING: Cannot reach the Docker engine at unix:///tmp/meeshy-no-engine.sock: No such "
        "file or directory: the URLs are the file's; whether they are served is not known"
    )
    assert "http://localhost:3000" in r.out
    r = run_inv("stack.urls", "--json", env=NO_ENGINE)
    urls = json.loads(r.out)["urls"]
    assert urls and {u["running"] for u in urls} == {None}
