"""The flag records of tasks/invoke_adapter.py: declared once, frozen, keyword-only, inherited
in dataclass order, and turned into the Invoke task's flags (kinds, repeatable flags, help).

They are not dataclasses (each would cost ~0.3 ms on every run, ``inv --list`` included), so
these tests pin the behaviour a dataclass would have given."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from invoke import Context, Parser
from invoke.exceptions import Exit

from tasks.invoke_adapter import (
    DryRunFlags,
    Flags,
    ImageFlags,
    JsonFlags,
    ServiceFlags,
    cli_task,
    flag,
)


class Sample(ServiceFlags, DryRunFlags):
    count: int = flag(default=3, help="how many")
    name: str = flag(default="x", help="a name")


def test_defaults_and_values() -> None:
    f = Sample()
    assert (f.service, f.dry_run, f.count, f.name) == ([], False, 3, "x")
    g = Sample(count=5, service=["web"])
    assert (g.count, g.service, g.name) == (5, ["web"], "x")


def test_a_list_default_is_fresh_per_record() -> None:
    a, b = Sample(), Sample()
    a.service.append("web")
    assert b.service == []
    assert Sample().service == []


def test_records_are_frozen() -> None:
    f = Sample()
    with pytest.raises(AttributeError, match="frozen"):
        f.count = 4  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del f.count


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(TypeError, match="no flag colour"):
        Sample(colour="red")  # type: ignore[call-arg]


def test_equality_repr_and_hash() -> None:
    assert Sample(count=1) == Sample(count=1)
    assert Sample(count=1) != Sample(count=2)
    assert JsonFlags() != DryRunFlags()
    assert repr(Sample(name="y")) == ("Sample(dry_run=False, service=[], count=3, name='y')")
    assert hash(JsonFlags(json=True)) == hash(JsonFlags(json=True))


def test_fields_follow_dataclass_order_through_multiple_inheritance() -> None:
    # As dataclasses: the bases' fields in reversed-MRO order, then the class's own.
    assert list(ImageFlags._declared) == ["json", "context", "root", "registry"]
    assert list(Sample._declared) == ["dry_run", "service", "count", "name"]


def test_a_field_without_flag_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match=r"Bad\.x: declare it as flag"):

        class Bad(Flags):
            x: int = 3


def test_a_subclass_may_redeclare_a_flag() -> None:
    class Narrow(ServiceFlags):
        service: list[str] = flag(default=["gateway"], help="other help")

    assert Narrow().service == ["gateway"]
    assert Narrow._declared["service"].help == "other help"
    assert ServiceFlags().service == []


# -- the Invoke side ------------------------------------------------------------------------------

seen: list[Any] = []


@cli_task(Sample, name="sample")
def sample(c: Context, flags: Sample) -> None:
    """A sample task."""
    seen.append(flags)


def _parse(argv: list[str]) -> dict[str, Any]:
    parser = Parser(contexts=[_context()])
    result = parser.parse_argv(["sample", *argv])
    return {name: arg.value for name, arg in result[0].args.items()}


def _context() -> Any:
    from invoke.parser.context import ParserContext

    return ParserContext(name="sample", args=sample.get_arguments())


def test_the_task_has_one_flag_per_field_with_its_help_and_kind() -> None:
    args = {a.name: a for a in copy.deepcopy(sample).get_arguments()}  # Invoke pops help
    assert list(args) == ["dry_run", "service", "count", "name"]
    assert args["count"].kind is int and args["count"].default == 3
    assert args["dry_run"].kind is bool
    assert args["service"].kind is list
    assert args["count"].help == "how many"
    assert sample.__doc__ == "A sample task."


def test_repeatable_flags_and_int_conversion() -> None:
    values = _parse(["--service", "web", "--service", "gateway", "--count", "7", "--dry-run"])
    assert values == {"service": ["web", "gateway"], "dry-run": True, "count": 7, "name": "x"}


def test_a_bad_int_is_one_line_exit_2() -> None:
    with pytest.raises(Exit) as exc:
        _parse(["--count", "many"])
    assert exc.value.code == 2
    assert str(exc.value.message).startswith("ERROR: --count 'many' is not a whole number")


def test_the_body_receives_a_typed_record() -> None:
    seen.clear()
    sample.body(Context(), service=None, dry_run=True, count=2, name="n")
    assert seen == [Sample(service=[], dry_run=True, count=2, name="n")]


def test_copies_the_parser_makes_do_not_share_values() -> None:
    # Invoke deep-copies the task (loading) and its arguments (each parse); the cheap copies
    # must not share what a parse changes.
    task_copy = copy.deepcopy(sample)
    assert task_copy is not sample and task_copy.body is sample.body
    assert task_copy.help == sample.help and task_copy.help is not sample.help
    arg: Any = next(a for a in sample.get_arguments() if a.name == "service")
    arg_copy: Any = copy.deepcopy(arg)
    arg_copy.value = "web"
    assert arg_copy.value == ["web"] and arg.value == []
    # The same task twice on one command line: each occurrence is a copy of one context,
    # and neither sees the other's values.
    parser = Parser(contexts=[_context()])
    first, second, third = parser.parse_argv(
        ["sample", "--service", "web", "--count", "1", "sample", "--service", "gateway", "sample"]
    )
    assert first.args["service"].value == ["web"] and first.args["count"].value == 1
    assert second.args["service"].value == ["gateway"] and second.args["count"].value == 3
    assert third.args["service"].value == []
