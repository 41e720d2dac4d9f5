"""``images.validate``: each service's ``v<version>`` image (or ``--tag``) checked.

Checks, in order: the image exists; its version label equals the service's VERSION; its
revision label matches ``git rev-parse --short HEAD`` of the monorepo (short hashes of
different lengths match when one is a prefix of the other; when the root is not a git
checkout, ``local``, any non-empty revision passes and the check says so); each freshness
rule (:mod:`.freshness`, today the schema label); each schema file read out of the image
equals the current schema.

A failed freshness or schema-file check means the image is not the current schema's: exit 4
(:class:`StaleImageError`, as ``staging.tag``); any other failure exits 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.lib.config import Service, Settings
from tasks.lib.errors import CommandFailed, ConfigError, StaleImageError, TaskError
from tasks.lib.images.files import read_image_files
from tasks.lib.images.freshness import Freshness
from tasks.lib.images.refs import repository
from tasks.lib.images.store import REVISION_LABEL, VERSION_LABEL, LocalImage, find_images
from tasks.lib.progress import Status

if TYPE_CHECKING:
    import docker

# Check kinds: a failed FRESH or FILE check means "built from other inputs" (exit 4).
EXISTS, LABEL, FRESH, FILE = "exists", "label", "fresh", "file"
STALE_KINDS = frozenset({FRESH, FILE})


@dataclass(frozen=True)
class Check:
    name: str
    expected: str
    actual: str
    verdict: Status  # Status.PASS | Status.FAIL
    detail: str = ""
    kind: str = LABEL

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "verdict": self.verdict.value,
            "detail": self.detail,
        }


def _check(name: str, expected: str, actual: str, ok: bool, why: str, kind: str) -> Check:
    return Check(
        name, expected, actual, Status.PASS if ok else Status.FAIL, "" if ok else why, kind
    )


@dataclass(frozen=True)
class ImageReport:
    service: str
    ref: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.verdict is Status.PASS for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.verdict is not Status.PASS]

    @property
    def stale(self) -> bool:
        return any(c.kind in STALE_KINDS for c in self.failures())

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "image": self.ref,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class ValidationResult:
    reports: tuple[ImageReport, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.reports]

    def error(self) -> TaskError | None:
        """None when every image passed; else the error to exit with: 4 when an image is not
        the current schema's, 1 for other failures."""
        bad = [r for r in self.reports if not r.ok]
        if not bad:
            return None
        message = f"{len(bad)} of {len(self.reports)} image(s) failed validation: " + ", ".join(
            r.ref for r in bad
        )
        hint = "rebuild them with `inv build.all`"
        if any(r.stale for r in bad):
            return StaleImageError(message, hint=hint)
        return TaskError(message, hint=hint)


def revision_matches(expected: str, actual: str) -> tuple[bool, str]:
    """The revision label must be there; another revision than the checkout's is a note, not
    a failure: a commit that changes no input of the image (docs, CI) leaves it current, and
    the input key (``me.meeshy.inputs.sha256``) is what judges that."""
    if not actual:
        return False, "the label is missing or empty"
    if expected == "local":
        return True, "root is not a git checkout"
    short = min(len(expected), len(actual))
    if short >= 4 and expected[:short] == actual[:short]:
        return True, ""
    return True, f"built at {actual}, the checkout is at {expected}: the input key decides"


def judge_image(
    service: str,
    ref: str,
    image: LocalImage | None,
    *,
    expected_version: str,
    expected_revision: str,
    rules: Sequence[Freshness],
    schema_sha: str,
    files: Mapping[str, bytes | None],
) -> ImageReport:
    """The verdict on one image, from its labels and the schema files read out of it."""
    if image is None:
        why = f"no local image {ref}; build it first"
        return ImageReport(service, ref, (_check("exists", ref, "missing", False, why, EXISTS),))
    checks = [_check("exists", ref, image.short_id, True, "", EXISTS)]
    version = image.label(VERSION_LABEL)
    checks.append(
        _check(
            VERSION_LABEL,
            expected_version,
            version or "-",
            version == expected_version,
            "another version" if version else "the label is missing",
            LABEL,
        )
    )
    revision = image.label(REVISION_LABEL)
    ok, why = revision_matches(expected_revision, revision)
    checks.append(
        Check(
            REVISION_LABEL,
            expected_revision,
            revision or "-",
            Status.PASS if ok else Status.FAIL,
            why,
        )
    )
    for rule in rules:
        v = rule(service, image)
        checks.append(_check(v.check, v.expected, v.actual, v.fresh, v.detail, FRESH))
    for path, data in files.items():
        if data is None:
            checks.append(
                _check(
                    f"file {path}",
                    schema_sha[:12],
                    "missing",
                    False,
                    "the schema file is not in the image",
                    FILE,
                )
            )
            continue
        got = hashlib.sha256(data).hexdigest()
        checks.append(
            _check(
                f"file {path}",
                schema_sha[:12],
                got[:12],
                got == schema_sha,
                "the file in the image differs from the current schema",
                FILE,
            )
        )
    return ImageReport(service, ref, tuple(checks))


def require_schema_sha256(settings: Settings) -> str:
    sha = settings.schema_sha256
    if sha is None:
        raise ConfigError(
            f"schema {settings.schema} not found under {settings.root}",
            hint="pass --root (the monorepo) or fix meeshy.schema",
        )
    return sha


def image_refs(settings: Settings, services: Sequence[Service], tag: str) -> list[str]:
    """The ref each service is validated at: ``v<version>``, or ``tag``."""
    return [f"{repository(settings, svc)}:{tag or 'v' + settings.version(svc)}" for svc in services]


def validate_images(
    client: docker.DockerClient,
    settings: Settings,
    services: Sequence[Service],
    *,
    tag: str,
    expected_revision: str,
    rules: Sequence[Freshness],
) -> ValidationResult:
    """One report per service (the images looked up in one engine call)."""
    from docker.errors import DockerException

    schema_sha = require_schema_sha256(settings)
    refs = image_refs(settings, services, tag)
    found = find_images(client, refs)
    reports = []
    for svc, ref in zip(services, refs, strict=True):
        image = found[ref]
        try:
            files = read_image_files(client, ref, svc.schema_paths) if image else {}
        except DockerException as exc:
            raise CommandFailed(
                f"cannot read {', '.join(svc.schema_paths)} out of {ref}: {exc}",
                hint="check the engine (a container is created, never started, then removed)",
            ) from exc
        reports.append(
            judge_image(
                svc.name,
                ref,
                image,
                expected_version=settings.version(svc),
                expected_revision=expected_revision,
                rules=rules,
                schema_sha=schema_sha,
                files=files,
            )
        )
    return ValidationResult(tuple(reports))
