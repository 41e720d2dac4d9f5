"""User, file and engine text is printed as it is: never read as rich markup or emoji."""

from __future__ import annotations

import pytest

from tasks.lib.output import Output

NASTY = "Dockerfile:100: COPY [red]x[/] :x: :thumbs_up: \\[b]"


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "terminal"])
def test_lines_are_not_markup_or_emoji(plain: bool, capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(plain=plain)
    out.error(NASTY)
    out.warn(NASTY)
    out.info(NASTY)
    out.step(NASTY)
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"ERROR: {NASTY}", f"WARNING: {NASTY}"]
    assert captured.out.splitlines() == [NASTY, f"==> {NASTY}"]


def test_table_cells_are_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    Output(plain=False).table("t [b]x[/b]", ["a:x:"], [[NASTY]])
    text = capsys.readouterr().out
    assert "[red]x[/]" in text and ":x:" in text and "t [b]x[/b]" in text
    assert "💯" not in text and "❌" not in text
