"""The staging naming rule, one place for the compose generator and the volume copier.

Docker object names (volumes, containers, networks, the compose project) follow the plan of
2026-01-25: ``meeshy-<x>`` becomes ``meeshy-staging-<x>``, keeping the separator that follows
``meeshy`` (``meeshy_x`` -> ``meeshy_staging_x``; plain ``meeshy`` -> ``meeshy-staging``). A name
that does not start with the ``meeshy`` word is prefixed: ``foo`` -> ``staging-foo``, so every
staging object still carries the word ``staging`` and never equals its prod twin.

Compose keys gain ``staging`` after their first word, with the separator the key already uses
(``gateway_uploads`` -> ``gateway_staging_uploads``, ``redis-ui-data`` ->
``redis-staging-ui-data``); a one-word key gets ``_staging`` appended.

Renaming twice is refused (:class:`ConfigError`): a name that already has ``staging`` as one of
its words is taken to be staging already, so feeding the staging file back in fails loudly
instead of producing ``meeshy-staging-staging-x``.
"""

from __future__ import annotations

import re

from tasks.lib.errors import ConfigError

STAGING = "staging"
PROJECT_WORD = "meeshy"

_WORD_SPLIT = re.compile(r"[-_.]")
_FIRST_SEP = re.compile(r"[-_]")


def is_staging_name(name: str) -> bool:
    """True when ``staging`` is one of the name's words (split on ``-``, ``_``, ``.``)."""
    return STAGING in (word.lower() for word in _WORD_SPLIT.split(name))


def _refuse(name: str, what: str) -> None:
    if not name:
        raise ConfigError(f"cannot derive a staging {what} from an empty name")
    if is_staging_name(name):
        raise ConfigError(
            f"{what} {name!r} is already a staging name",
            hint="generate staging from the prod compose file, not from a staging one",
        )


def _object_name(name: str, what: str) -> str:
    _refuse(name, what)
    head = name[: len(PROJECT_WORD)]
    rest = name[len(PROJECT_WORD) :]
    if head.lower() == PROJECT_WORD:
        if not rest:
            return f"{head}-{STAGING}"
        if rest[0] in "-_":
            return f"{head}{rest[0]}{STAGING}{rest}"
    return f"{STAGING}-{name}"


def staging_volume_name(name: str) -> str:
    """Docker volume name: ``meeshy-gateway-uploads`` -> ``meeshy-staging-gateway-uploads``."""
    return _object_name(name, "volume name")


def staging_container_name(name: str) -> str:
    """Container name: ``meeshy-gateway`` -> ``meeshy-staging-gateway``."""
    return _object_name(name, "container name")


def staging_network_name(name: str) -> str:
    """Docker network name: ``meeshy-network`` -> ``meeshy-staging-network``."""
    return _object_name(name, "network name")


def staging_project_name(name: str) -> str:
    """Compose project name: ``meeshy`` -> ``meeshy-staging``."""
    return _object_name(name, "project name")


def staging_key(key: str) -> str:
    """Key: ``staging`` after its first word (``database_data`` -> ``database_staging_data``)."""
    _refuse(key, "key")
    match = _FIRST_SEP.search(key)
    if match is None or match.start() == 0:
        return f"{key}_{STAGING}"
    sep = match.group()
    return f"{key[: match.start()]}{sep}{STAGING}{key[match.start() :]}"
