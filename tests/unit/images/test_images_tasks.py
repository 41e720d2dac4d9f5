"""The images and staging tag/push tasks without an engine: dry runs, flags, one-line refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from invoke import Config, Context, Exit

from tasks import images as image_tasks
from tasks import staging as staging_tasks
from tasks.lib.config import defaults
from tests.cli import Call, run_inv

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
NOWHERE = "tcp://127.0.0.1:1"  # nothing answers there


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)


def test_images_push_dry_run_needs_no_engine(call: Call, no_engine: None) -> None:
    code, out, err = call(
        image_tasks.push,
        service=["translator"],
        registry_url="127.0.0.1:5000",
        dry_run=True,
        root=str(EXAMPLE),
        registry="t4unit",
    )
    assert code == 0, err
    assert "push 127.0.0.1:5000/t4unit/meeshy-translator:cpu -> 127.0.0.1:5000" in out
    assert out.count("push 127.0.0.1:5000/") == 3
    # which engine would push (it resolves --registry-url), and that it was not asked
    assert f"the engine at {NOWHERE} would push" in out
    assert "the sources were not checked" in err


def test_staging_push_dry_run_json(call: Call, no_engine: None) -> None:
    import json

    code, out, _ = call(
        staging_tasks.push, service=["web"], dry_run=True, json=True, root=str(EXAMPLE)
    )
    assert code == 0
    data = json.loads(out)
    assert data["engine"] == NOWHERE
    assert data["pushes"] == [
        {
            "service": "web",
            "ref": "isopen/meeshy-web:staging",
            "source": "isopen/meeshy-web:staging",
            "registry": "docker.io",
        }
    ]
    assert data["missing"] is None


def test_bad_input_is_one_line_and_nonzero(call: Call) -> None:
    code, _, err = call(
        staging_tasks.push, registry_url="http://x", dry_run=True, root=str(EXAMPLE)
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ERROR: --registry-url 'http://x' is not host:port")


def test_engine_down_fails_fast(call: Call, no_engine: None) -> None:
    code, _, err = call(image_tasks.list_, root=str(EXAMPLE))
    assert code == 3
    assert "Cannot reach the Docker engine" in err


def _bad_image_context() -> Context:
    config = defaults()
    config["services"]["web"]["image"] = "Meeshy-Web"
    return Context(config=Config(overrides={"meeshy": config}))


@pytest.mark.parametrize(
    ("task", "flags"),
    [
        (staging_tasks.tag, {"service": ["web"]}),
        (staging_tasks.push, {"service": ["web"]}),
        (image_tasks.push, {"service": ["web"]}),
        (image_tasks.validate, {"service": ["web"]}),
        (image_tasks.list_, {}),
    ],
    ids=["staging.tag", "staging.push", "images.push", "images.validate", "images.list"],
)
def test_invalid_image_name_names_the_value_not_the_engine(
    task: Any, flags: dict[str, Any], capsys: pytest.CaptureFixture[str], no_engine: None
) -> None:
    """Refused before the engine is asked (none answers here), naming the config key."""
    with pytest.raises(Exit) as info:
        task(_bad_image_context(), root=str(EXAMPLE), **flags)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "meeshy.services.web.image 'Meeshy-Web' makes 'isopen/Meeshy-Web'" in err[0]
    assert "docker.ensure" not in err[0]


def test_only_is_now_service() -> None:
    r = run_inv("--help", "staging.tag")
    assert r.code == 0, r
    assert "--service" in r.out
    assert "--only" not in r.out
    r = run_inv("--help", "images.push")
    assert "resolves and contacts it" in " ".join(r.out.split())
