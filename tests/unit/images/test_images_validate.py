"""images.validate's verdicts and exit codes, and reading files out of image archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Mapping

import pytest

from tasks.lib.config import SCHEMA_LABEL
from tasks.lib.errors import StaleImageError, TaskError
from tasks.lib.images import freshness
from tasks.lib.images.files import first_member
from tasks.lib.images.store import REVISION_LABEL, VERSION_LABEL, LocalImage
from tasks.lib.images.validate import ImageReport, ValidationResult, judge_image, revision_matches
from tasks.lib.progress import Status

GOOD_SHA = hashlib.sha256(b"schema").hexdigest()
OTHER = "b" * 64
GOOD_LABELS = {VERSION_LABEL: "1.0.40", REVISION_LABEL: "abc1234"}


def img(schema: str | None = GOOD_SHA, **labels: str) -> LocalImage:
    lab = dict(labels)
    if schema is not None:
        lab[SCHEMA_LABEL] = schema
    return LocalImage("sha256:" + "1" * 64, ("t4/meeshy-gateway:v1.0.40",), 1, 1000, lab)


def judge(
    image: LocalImage | None,
    files: Mapping[str, bytes | None] | None = None,
    revision: str = "abc1234",
) -> ImageReport:
    return judge_image(
        "gateway",
        "t4/meeshy-gateway:v1.0.40",
        image,
        expected_version="1.0.40",
        expected_revision=revision,
        rules=[freshness.SchemaLabel(GOOD_SHA)],
        schema_sha=GOOD_SHA,
        files=files or {},
    )


def test_all_pass() -> None:
    report = judge(img(**GOOD_LABELS), {"/app/a": b"schema", "/app/b": b"schema"})
    assert report.ok
    assert [c.name for c in report.checks] == [
        "exists",
        VERSION_LABEL,
        REVISION_LABEL,
        SCHEMA_LABEL,
        "file /app/a",
        "file /app/b",
    ]
    assert all(c.verdict is Status.PASS for c in report.checks)
    assert report.to_json()["checks"][0]["verdict"] == "pass"
    assert ValidationResult((report,)).error() is None


def test_another_revision_is_a_note_not_a_failure() -> None:
    """A docs-only commit after the build: the input key decides, not the revision."""
    report = judge(img(GOOD_SHA, **{**GOOD_LABELS, REVISION_LABEL: "def5678"}))
    assert report.ok
    (rev,) = [c for c in report.checks if c.name == REVISION_LABEL]
    assert "the input key decides" in rev.detail


def test_missing_image() -> None:
    report = judge(None)
    assert not report.ok
    assert report.failures()[0].name == "exists"
    assert "t4/meeshy-gateway:v1.0.40" in report.failures()[0].detail
    error = ValidationResult((report,)).error()
    assert error is not None
    assert error.exit_code == 1


@pytest.mark.parametrize(
    ("labels", "schema", "files", "failing", "code"),
    [
        pytest.param(
            {**GOOD_LABELS, VERSION_LABEL: "1.0.39"}, GOOD_SHA, {}, [VERSION_LABEL], 1, id="version"
        ),
        pytest.param(
            {REVISION_LABEL: "abc1234"}, GOOD_SHA, {}, [VERSION_LABEL], 1, id="no-version"
        ),
        pytest.param(
            {VERSION_LABEL: GOOD_LABELS[VERSION_LABEL]},
            GOOD_SHA,
            {},
            [REVISION_LABEL],
            1,
            id="no-revision",
        ),
        pytest.param(GOOD_LABELS, OTHER, {}, [SCHEMA_LABEL], 4, id="stale-label"),
        pytest.param(GOOD_LABELS, None, {}, [SCHEMA_LABEL], 4, id="no-schema-label"),
        pytest.param(GOOD_LABELS, GOOD_SHA, {"/a": b"old"}, ["file /a"], 4, id="file-differs"),
        pytest.param(GOOD_LABELS, GOOD_SHA, {"/a": None}, ["file /a"], 4, id="file-missing"),
    ],
)
def test_failures_and_exit_codes(
    labels: dict[str, str],
    schema: str | None,
    files: dict[str, bytes | None],
    failing: list[str],
    code: int,
) -> None:
    """A schema mismatch exits 4 (as staging.tag); other failures 1."""
    report = judge(img(schema, **labels), files)
    assert not report.ok
    assert [c.name for c in report.failures()] == failing
    error = ValidationResult((report,)).error()
    assert isinstance(error, TaskError)
    assert error.exit_code == code
    assert isinstance(error, StaleImageError) is (code == 4)


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("abc1234", "abc1234", True),
        ("abc1234", "abc1234def", True),  # a longer abbreviation of the same commit
        ("abc1234", "abc9999", True),  # a docs-only commit since: the input key decides
        ("abc1234", "", False),
        ("abc1234", "local", True),
        ("local", "anything", True),
        ("local", "", False),
    ],
)
def test_revision_matches(expected: str, actual: str, ok: bool) -> None:
    assert revision_matches(expected, actual)[0] is ok


def _tar(name: str, data: bytes | None = None, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
        else:
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


def test_first_member() -> None:
    assert first_member([_tar("schema.prisma", b"x")]) == (b"x", None)
    assert first_member([_tar("schema.prisma", link="../s.prisma")]) == (None, "../s.prisma")


def test_freshness_labels_are_the_build_sides() -> None:
    from tasks.lib.build import plan
    from tasks.lib.images import freshness

    assert freshness.INPUTS_LABEL == plan.INPUTS_LABEL
    assert freshness.INPUTS_PARTS_LABEL == plan.INPUTS_PARTS_LABEL
