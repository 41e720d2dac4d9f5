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


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "terminal"])
def test_table_cells_never_send_control_characters(
    plain: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image label is anyone's text: ``1.0<ESC>]0;owned<BEL>`` set the terminal's title
    through images.list (seen by a hostile review). Control characters are shown escaped;
    a newline still breaks a cell, as multi-line cells do."""
    label = "1.0\x1b]0;owned\x07\r\x9bX"
    Output(plain=plain).table("images", ["version"], [[label]])
    text = capsys.readouterr().out
    assert not any(c in text for c in "\x1b\x07\r\x9b")
    assert "1.0\\x1b]0;owned\\x07\\r\\x9bX" in text


def test_plain_progress_says_an_unchanged_amount_only_as_a_keep_alive(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push Docker retries sat at 100% and printed it every 5 s in CI logs (9 times in
    51 s, seen by a hostile review); a changed amount still prints every 5 s."""
    import time

    from tasks.lib import progress

    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    p = progress.PlainProgress(Output(plain=True), every=5.0)
    p.start("web", total=100)
    for second in range(5, 75, 5):
        clock[0] = float(second)
        p.update("web", done=100 if second >= 10 else 50)
    lines = capsys.readouterr().out.splitlines()
    amounts = [ln.split(" (")[0] for ln in lines if "%" in ln]
    assert amounts == ["[web] 50%", "[web] 100%", "[web] 100%"]  # at 5 s, 10 s, then 70 s
