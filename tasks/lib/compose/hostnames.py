"""Public hostnames moved under ``staging.``: ``gate.${DOMAIN:-meeshy.me}`` becomes
``gate.staging.${DOMAIN:-meeshy.me}``, ``https://meeshy.me/x`` becomes
``https://staging.meeshy.me/x``. The variable is kept (a deployment can still set it); literal
domains are the configured ones plus every dotted default of ``${DOMAIN:-...}`` in the file.
E-mail addresses, internal hosts (``database:27017``) and longer names (``meeshy.medical``)
are left alone."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


class HostnameMover:
    """Moves every public hostname of one configuration under ``staging.``."""

    def __init__(self, domain_var: str, domains: Iterable[str], texts: Iterable[str]) -> None:
        var = re.escape(domain_var)
        learned = set(domains)
        default_rx = re.compile(r"\$\{" + var + r":?-([^}]+)\}")
        for text in texts:
            learned.update(d for d in default_rx.findall(text) if "." in d)
        var_forms = r"\$\{" + var + r"(?::?[-?+][^}]*)?\}|\$" + var + r"(?![A-Za-z0-9_])"
        literal = "|".join(re.escape(d) for d in sorted(learned, key=len, reverse=True))
        domain = var_forms + (f"|{literal}" if literal else "")
        self._rx = re.compile(
            r"(?<![\w@-])(?P<prefix>(?:[A-Za-z0-9-]+\.)*)(?P<domain>" + domain + r")"
            r"(?![\w-])(?!\.[A-Za-z0-9])"
        )

    def move(self, value: Any) -> Any:
        """``value`` with its hostnames under ``staging.``; non-strings pass through."""
        if not isinstance(value, str):
            return value

        def sub(match: re.Match[str]) -> str:
            prefix = match.group("prefix")
            if prefix.lower().endswith("staging."):
                return match.group(0)
            return f"{prefix}staging.{match.group('domain')}"

        moved = self._rx.sub(sub, value)
        return value if moved == value else moved  # unchanged: keep its type (PlainTimestamp)
