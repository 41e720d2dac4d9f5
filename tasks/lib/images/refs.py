"""Image references, and the names the tasks derive from config, checked before any engine
is asked: a bad value is refused in one line naming it and where it came from.

Parsing is the docker SDK's (``docker.utils.parse_repository_tag``,
``docker.auth.resolve_repository_name``), so a reference means here what it means to the
engine: ``127.0.0.1:5000/isopen/meeshy-web:v1`` is repository ``127.0.0.1:5000/isopen/meeshy-web``
and tag ``v1`` on registry ``127.0.0.1:5000``; ``img@sha256:abc`` is a digest, not a tag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tasks.lib.config import COMPONENT, DOMAIN, HOST_LABEL, Service, Settings, check_tag
from tasks.lib.errors import ConfigError

PROJECT_WORD = "meeshy"
# Docker's repository grammar (distribution/reference), as config checks meeshy.registry with
REPOSITORY_RE = re.compile(rf"^(?:{DOMAIN}/)?{COMPONENT}(?:/{COMPONENT})*$")
# --registry-url: a domain as Docker reads one (``localhost``, a dot, or a port: a bare
# ``registry`` would be a Docker Hub namespace), or a bracketed IPv6 address
REGISTRY_URL_RE = re.compile(rf"^{DOMAIN}$|^\[[0-9a-fA-F:]+\](?::\d{{1,5}})?$")
_LOOSE_HOST_RE = re.compile(rf"^{HOST_LABEL}$")
INDEX = "docker.io"


@dataclass(frozen=True)
class Ref:
    """One image reference: repository plus a tag or a digest (or neither)."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        from docker.utils import parse_repository_tag

        repository, rest = parse_repository_tag(text)
        if rest is not None and text.endswith(f"@{rest}"):  # a digest, maybe after a tag
            named, tag = parse_repository_tag(repository)
            return cls(named, tag, rest)
        return cls(repository, rest)

    def __str__(self) -> str:
        text = f"{self.repository}:{self.tag}" if self.tag else self.repository
        return f"{text}@{self.digest}" if self.digest else text

    @property
    def registry(self) -> str:
        """The registry the engine pushes this reference to (``docker.io`` by default)."""
        from docker.auth import resolve_repository_name

        return str(resolve_repository_name(self.repository)[0])

    @property
    def familiar_repository(self) -> str:
        """The repository as the engine lists it: no ``docker.io/``, no ``library/``."""
        return familiar_name(self.repository)

    @property
    def basename(self) -> str:
        """The repository's last component: ``127.0.0.1:5000/ns/meeshy-web:v1`` ->
        ``meeshy-web`` (how a stack's app images are recognised, whatever the registry)."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def familiar(self) -> str:
        """``repo:tag`` as the engine lists it in ``RepoTags`` (``latest`` when untagged)."""
        if self.digest:
            return f"{self.familiar_repository}@{self.digest}"
        return f"{self.familiar_repository}:{self.tag or 'latest'}"

    def name_and_tag(self) -> tuple[str, str]:
        """(repository, tag) for the SDK's ``tag``/``push`` calls."""
        if self.digest:
            raise ConfigError(f"{self} names a digest, not a tag", hint="give a repo:tag")
        return self.repository, self.tag or "latest"


def familiar_name(repository: str) -> str:
    """Docker's familiar form of a repository (a pattern with ``*`` works too)."""
    from docker.auth import split_repo_name

    index, remote = split_repo_name(repository)
    if index not in (INDEX, "index.docker.io"):
        return repository
    if remote.startswith("library/") and remote.count("/") == 1:
        return remote.removeprefix("library/")
    return str(remote)


def registry_of(ref: str) -> str:
    return Ref.parse(ref).registry


def format_tags(patterns: Sequence[str], service: str, version: str, *, key: str) -> list[str]:
    """Configured tag patterns with ``{version}`` and ``{service}`` filled in, each checked as
    a Docker tag, once each in order (``build.*``'s tags and ``images.push``'s tag sets).
    ``key`` is the config key the patterns come from (``meeshy.services.web.push_tags``)."""
    out: list[str] = []
    for pattern in patterns:
        try:
            tag = pattern.format(version=version, service=service)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{key} pattern {pattern!r} is invalid ({exc})",
                hint="use {version} and {service} only",
            ) from exc
        out.append(check_tag(tag, f"{key} entry"))
    return list(dict.fromkeys(out))


def check_registry_url(url: str) -> str:
    """``host[:port]`` for ``--registry-url``; no scheme, no path."""
    if not url:
        return ""
    if _LOOSE_HOST_RE.match(url) and url != "localhost":
        # Docker reads a first component with no '.', no ':port' and not localhost as a
        # Docker Hub namespace: the push would go to docker.io/<url>/...
        raise ConfigError(
            f"--registry-url {url!r} is not host:port: Docker would push to Docker Hub, "
            f"reading {url!r} as a namespace there",
            hint=f"give the port ({url}:5000) or the full domain name ({url}.example.com)",
        )
    port = url.rpartition(":")[2] if not url.endswith("]") else ""
    bad_port = ":" in url and port.isdigit() and not 1 <= int(port) <= 65535
    if "://" in url or "/" in url or not REGISTRY_URL_RE.match(url) or bad_port:
        raise ConfigError(
            f"--registry-url {url!r} is not host:port",
            hint="give the registry as host:port, e.g. 127.0.0.1:5000 (no http://, no path; "
            "a port from 1 to 65535)",
        )
    return url


def repository(settings: Settings, service: Service) -> str:
    """``<registry>/<image>`` of a service, refused (naming the config key and the value)
    when Docker would not take it as an image name."""
    repo = settings.repository(service)
    if len(repo) > 255 or not REPOSITORY_RE.match(repo):
        raise ConfigError(
            f"meeshy.services.{service.name}.image {service.image!r} makes {repo!r}, "
            "which is not a valid image name",
            hint="use lowercase letters, digits and separators . _ - (e.g. meeshy-web) "
            "in invoke.yaml or INVOKE_MEESHY_SERVICES_*",
        )
    return repo


def select_services(settings: Settings, names: Sequence[str]) -> list[Service]:
    """The services named (in order, once each), or ``meeshy.all``."""
    chosen = list(dict.fromkeys(names)) or list(settings.all)
    return [settings.service(n) for n in chosen]


def listing_patterns(settings: Settings) -> list[str]:
    """``reference`` filters for the images of the registry in use: every configured
    service's repository, and any ``*meeshy*`` repository directly under the registry.
    Familiar forms, because the engine matches patterns against those."""
    word = f"*{PROJECT_WORD}*"
    patterns = [familiar_name(f"{settings.registry}/{word}" if settings.registry else word)]
    for svc in settings.services:
        patterns.append(familiar_name(repository(settings, svc)))
    return list(dict.fromkeys(patterns))


def matches(ref: str, patterns: Sequence[str]) -> bool:
    """Whether the engine's ``reference`` filter would keep ``ref`` (``repo:tag``): the
    pattern is matched against ``repo:tag`` and against ``repo``, ``*`` not crossing ``/``."""
    parsed = Ref.parse(ref)
    candidates = (parsed.familiar, parsed.familiar_repository)
    return any(_path_match(p, c) for p in patterns for c in candidates)


def _path_match(pattern: str, text: str) -> bool:
    """Go's ``path.Match`` for ``*`` and ``?`` (what the engine uses for ``reference``)."""
    regex = "".join(
        "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in pattern
    )
    return re.fullmatch(regex, text) is not None
