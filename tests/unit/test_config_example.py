"""invoke.example.yaml shows every key with its default: it cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from tasks.lib.config import defaults

PROJECT = Path(__file__).resolve().parents[2]


def test_example_config_equals_the_defaults() -> None:
    data = yaml.safe_load((PROJECT / "invoke.example.yaml").read_text(encoding="utf-8"))
    assert data["meeshy"] == defaults()
