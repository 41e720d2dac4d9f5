"""Listing rows, list-call summaries, and rendering that never reads engine text as markup."""

from __future__ import annotations

import io

from tasks.lib.config import SCHEMA_LABEL
from tasks.lib.images import view
from tasks.lib.images.listing import image_rows
from tasks.lib.images.store import VERSION_LABEL, LocalImage
from tasks.lib.output import Output

CURRENT = "a" * 64
OTHER = "b" * 64
PATTERNS = ["t4/*meeshy*", "t4/meeshy-web"]


def test_from_summary_of_the_list_call() -> None:
    entry = {
        "Id": "sha256:" + "1" * 64,
        "RepoTags": ["t4/meeshy-web:latest"],
        "RepoDigests": None,
        "Created": 1_795_504_217,
        "Size": 2000,
        "Labels": {VERSION_LABEL: "1.0.41"},
    }
    image = LocalImage.from_summary(entry)
    assert image.tags == ("t4/meeshy-web:latest",)
    assert image.digests == ()
    assert image.created_iso == "2026-11-24T07:10:17Z"
    assert image.short_id == "1" * 12
    assert image.label(VERSION_LABEL) == "1.0.41"
    assert LocalImage.from_summary({"Id": "x", "RepoTags": ["<none>:<none>"]}).tags == ()


def test_rows_per_repository_and_per_tag() -> None:
    a = LocalImage(
        "sha256:" + "1" * 64,
        ("t4/meeshy-web:latest", "t4/meeshy-web:staging", "busybox:latest", "relt/meeshy-web:x"),
        1_795_504_217,
        2000,
        {SCHEMA_LABEL: CURRENT, VERSION_LABEL: "1.0.41"},
    )
    rows = image_rows([a], PATTERNS, CURRENT)
    assert [(r.repository, r.tags, r.schema_state, r.version) for r in rows] == [
        ("t4/meeshy-web", ("latest", "staging"), "match", "1.0.41"),
    ]
    per_tag = image_rows([a], PATTERNS, OTHER, per_tag=True)
    assert [(r.tags, r.schema_state) for r in per_tag] == [
        (("latest",), "stale"),
        (("staging",), "stale"),
    ]
    assert rows[0].to_json()["schema"] == "match"
    assert rows[0].to_json()["created"] == "2026-11-24T07:10:17Z"
    assert view.format_created(rows[0].created) == "2026-11-24 07:10:17"


def test_engine_text_is_not_markup() -> None:
    """A label (engine text) with rich markup and emoji codes prints as it is, live view too."""
    out = Output(plain=False)
    out.out.file = io.StringIO()
    out.out.width = 250
    a = LocalImage(
        "sha256:" + "1" * 64,
        ("t4/meeshy-web:latest",),
        1,
        2000,
        {SCHEMA_LABEL: CURRENT, VERSION_LABEL: "[red]1.0[/red] :x:"},
    )
    view.listing(out, "meeshy images of t4", image_rows([a], PATTERNS, CURRENT), versions=True)
    text = out.out.file.getvalue()
    assert "[red]1.0[/red] :x:" in text
