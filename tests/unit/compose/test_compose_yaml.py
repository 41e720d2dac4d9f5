"""The one compose loader: scalars as compose (Go yaml.v3) reads them, duplicate keys refused,
and a dumper whose output every reader reads back unchanged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.lib.compose.yaml import (
    PlainTimestamp,
    dump_compose,
    load_compose,
    load_yaml,
    read_compose,
    resolve_plain,
)
from tasks.lib.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "it is empty", id="empty"),
        pytest.param("# only a comment\n", "it is empty", id="comment-only"),
        pytest.param("- a\n- b\n", "the top level is a list", id="list"),
        pytest.param("just text\n", "the top level is a str", id="scalar"),
        pytest.param("version: '3'\n", "no `services` mapping", id="no-services"),
        pytest.param("services: [a, b]\n", "no `services` mapping", id="services-list"),
        pytest.param("services: {a: [\n", "invalid YAML", id="invalid-yaml"),
    ],
)
def test_load_compose_refuses_non_compose(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_compose(text, "prod.yml")
    assert info.value.message.startswith("prod.yml is not a compose file: ")
    assert reason in info.value.message
    assert info.value.exit_code == 2


def test_load_compose_reads_scalars_as_compose_does() -> None:
    data = load_compose(
        "services:\n  a:\n    ports: [80:80, 3000]\n    command: [redis, --appendonly, yes]\n"
        "    labels: {date: 2026-01-25, on: on, t: true}\n",
        "x.yml",
    )
    svc = data["services"]["a"]
    assert svc["ports"] == ["80:80", 3000]  # YAML 1.1 would read 80:80 as 4880
    assert svc["command"] == ["redis", "--appendonly", "yes"]
    assert svc["labels"] == {"date": "2026-01-25", "on": "on", "t": True}


# What yaml.v3 (compose) makes of each unquoted scalar; PyYAML's safe_load differs on most.
GO_SCALARS = [
    pytest.param("10022:22", "10022:22", id="port-not-base-60"),
    pytest.param("80:80", "80:80", id="port-80"),
    pytest.param("1:30", "1:30", id="sexagesimal-is-text"),
    pytest.param("yes", "yes", id="yes"),
    pytest.param("no", "no", id="no"),
    pytest.param("on", "on", id="on"),
    pytest.param("off", "off", id="off"),
    pytest.param("y", "y", id="y"),
    pytest.param("true", True, id="true"),
    pytest.param("False", False, id="False"),
    pytest.param("TRUE", True, id="TRUE"),
    pytest.param("~", None, id="tilde"),
    pytest.param("Null", None, id="Null"),
    pytest.param("017", 15, id="legacy-octal"),
    pytest.param("0o17", 15, id="octal"),
    pytest.param("0x1F", 31, id="hex"),
    pytest.param("-0x1f", -31, id="negative-hex"),
    pytest.param("0b101", 5, id="binary"),
    pytest.param("1_000", 1000, id="underscores"),
    pytest.param("+5", 5, id="plus"),
    pytest.param("08", 8.0, id="08-is-a-float"),
    pytest.param("1e3", 1000.0, id="exponent-without-dot"),
    pytest.param(".5", 0.5, id="leading-dot"),
    pytest.param("1.", 1.0, id="trailing-dot"),
    pytest.param("-.inf", -math.inf, id="minus-inf"),
    pytest.param("1e999", "1e999", id="float-overflow-is-text"),
    pytest.param("=", "=", id="equals-is-text"),
    pytest.param("2026-01-25", "2026-01-25", id="date-kept-as-text"),
    pytest.param("2026-13-01", "2026-13-01", id="not-a-date"),
    pytest.param("18446744073709551615", 2**64 - 1, id="uint64"),
]


@pytest.mark.parametrize(("text", "expected"), GO_SCALARS)
def test_plain_scalars_resolve_as_compose_does(text: str, expected: Any) -> None:
    value = load_yaml(f"v: {text}\n", "x.yml")["v"]
    assert value == expected
    assert type(value) is type(expected) or isinstance(value, PlainTimestamp)


def test_quoted_scalars_are_text() -> None:
    assert load_yaml("a: '017'\nb: \"yes\"\nc: '10022:22'\n", "x") == {
        "a": "017",
        "b": "yes",
        "c": "10022:22",
    }


def test_nan() -> None:
    assert math.isnan(load_yaml("v: .NaN\n", "x")["v"])


def test_resolve_plain_tags_dates_as_timestamps() -> None:
    tag, value = resolve_plain("2026-1-2 3:04:05")
    assert tag.endswith(":timestamp")
    assert isinstance(value, PlainTimestamp)


def test_safe_load_gets_ports_wrong_and_the_loader_does_not() -> None:
    text = "services:\n  ssh:\n    ports:\n      - 10022:22\n"
    assert yaml.safe_load(text)["services"]["ssh"]["ports"] == [601342]  # the YAML 1.1 trap
    assert load_compose(text, "x")["services"]["ssh"]["ports"] == ["10022:22"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("a: 1\nb: 2\na: 3\n", "line 3: mapping key 'a' already defined at line 1"),
        pytest.param(
            "services:\n  s:\n    image: a\n    image: b\n",
            "line 4: mapping key 'image' already defined at line 3",
        ),
    ],
)
def test_duplicate_keys_are_refused_as_compose_refuses_them(text: str, line: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(text, "prod.yml")
    assert info.value.message == f"prod.yml is not a compose file: invalid YAML ({line})"


def test_merge_keys_are_not_duplicates() -> None:
    data = load_yaml("x: &base {a: 1, b: 2}\ny:\n  <<: *base\n  a: 3\n", "x")
    assert data["y"] == {"a": 3, "b": 2}


def test_dump_quotes_what_any_reader_would_misread() -> None:
    data = {
        "ports": ["10022:22", "80:80"],
        "env": {"A": "yes", "B": "017", "C": "1e3", "D": "on", "E": "0o17", "F": "plain"},
        "n": 15,
        "f": 0.5,
        "t": True,
        "z": None,
        "date": PlainTimestamp("2026-01-25"),
        "quoted_date": "2026-01-25",
    }
    text = dump_compose(data)
    assert load_yaml(text, "x") == data
    reread = yaml.safe_load(text)
    assert reread["ports"] == ["10022:22", "80:80"]
    assert reread["env"] == data["env"]
    assert "date: 2026-01-25\n" in text  # written as in the source: compose reads it the same
    assert "quoted_date: '2026-01-25'\n" in text
    assert "F: plain\n" in text


def test_dump_writes_no_anchors() -> None:
    shared = {"a": 1}
    assert "&" not in dump_compose({"x": shared, "y": shared})


def test_read_compose_refuses_binary_and_directories(tmp_path: Path) -> None:
    binary = tmp_path / "prod.yml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ConfigError, match=r"is not a compose file: not UTF-8 text \(byte 0x89"):
        read_compose(binary)
    with pytest.raises(ConfigError, match="is a directory"):
        read_compose(tmp_path)
    nul = tmp_path / "nul.yml"
    nul.write_bytes(b"services:\n  a: {}\n\x00\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_compose(nul)
