"""The guards between request values and what Waypost sends back.

A redirect target filled in from request values must not leave the site: its scheme and host must
be the ones the rule's literal text names, or a host in ``allowed_hosts``; a relative target must
stay a path on the same site (never ``//host`` or ``/\\host``, which browsers read as another host).
No header value may contain a control character (CR, LF and NUL split or truncate headers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from waypost.rules.target import Target

__all__ = [
    "control_character",
    "header_name_problem",
    "host_allowed",
    "location_problem",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Characters a browser may treat as a slash or whitespace at the start of a URL.
_LEADING_SLASHLIKE = ("//", "/\\", "\\")


def control_character(value: str) -> str | None:
    """The first control character in ``value``, or None."""
    found = _CONTROL.search(value)
    return found.group(0) if found else None


def header_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an HTTP header name, or None when it can."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        return f"{name!r} is not a valid header name (letters, digits and -_. only)"
    return None


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """True when ``host`` is one of ``allowed_hosts``; ``*.example.org`` allows any subdomain."""
    host = host.lower().rstrip(".")
    for allowed in allowed_hosts:
        if allowed.startswith("*."):
            if host.endswith(allowed[1:]) and len(host) > len(allowed) - 1:
                return True
        elif host == allowed:
            return True
    return False


def location_problem(location: str, target: Target, allowed_hosts: Iterable[str]) -> str | None:
    """Why the filled-in ``location`` for ``target`` must not be sent, or None when it is safe."""
    bad = control_character(location)
    if bad is not None:
        return f"control character {bad!r} in the filled-in target"
    if " " in location or "\\" in location:
        return "whitespace or backslash in the filled-in target"
    if not target.absolute:
        if not location.startswith("/") or location.startswith(_LEADING_SLASHLIKE):
            return "the filled-in target is not a path on this site"
        return None
    try:
        parts = urlsplit(location)
        hostname = parts.hostname
    except ValueError:
        return "the filled-in target is not a valid URL"
    if parts.scheme.lower() != target.scheme:
        return f"the filled-in target's scheme {parts.scheme!r} differs from {target.scheme!r}"
    if not hostname or "@" in parts.netloc:
        return "the filled-in target has no plain host"
    if target.host is not None:
        if parts.netloc.lower() != target.host:
            return f"the filled-in target's host {parts.netloc!r} differs from {target.host!r}"
        return None
    if not host_allowed(hostname, allowed_hosts):
        return f"the filled-in host {hostname!r} is not in allowed_hosts"
    return None
