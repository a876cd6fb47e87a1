"""Host names in settings, checked without importing the server (the metrics must not be set up
before ``run_server`` chooses their mode)."""

from __future__ import annotations

import re

__all__ = ["LABEL", "parse_https_redirect_hosts"]

#: One label of a host name (RFC 1123).
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def parse_https_redirect_hosts(text: str | None) -> tuple[str, ...]:
    """The host names of ``--https-redirect-hosts`` (``example.com,*.example.org``), lower-case;
    ValueError naming the one that is not a host name."""
    hosts = []
    for item in (text or "").split(","):
        name = item.strip().lower().rstrip(".")
        if not name:
            continue
        bare = name.removeprefix("*.")
        if not re.fullmatch(rf"{LABEL}(?:\.{LABEL})*", bare):
            raise ValueError(
                f"https_redirect_hosts: {item.strip()!r} is not a host name; write names like "
                "'example.com' or '*.example.org', separated by commas"
            )
        hosts.append(name)
    return tuple(hosts)
