"""The options of a ``forward_auth`` guard that a type alone does not check (see :mod:`.load`).

``url`` is an http(s) URL without a user or password (it is shown by ``waypost explain`` and
logged when the auth service fails); ``copy_headers`` and ``user_header`` are header names (RFC
9110 tokens), never one of Waypost's own identity headers or a header the HTTP framing owns;
``timeout`` is a positive number of seconds and ``cache`` zero or more. Pure: nothing is asked
here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from waypost.rules._errors import FieldError

__all__ = ["check_forward_auth_options"]

_EXAMPLE_URL = "http://127.0.0.1:4180/oauth2/auth"
# RFC 9110 5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Copying these from the auth service would let it break the request's framing or routing, or
# forge what Waypost itself sets (the identity headers are Waypost's; the guard's user goes into
# X-Waypost-User through user_header).
_NOT_COPIED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "cookie",
        "authorization",
        "x-waypost-user",
        "x-waypost-guard",
        "x-waypost-key-id",
    }
)


def _url(url: str) -> str | None:
    """Why ``url`` cannot be an auth service's URL, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return f"'url' is an http(s) URL like {_EXAMPLE_URL}, got {url!r}"
    if parts.scheme not in ("http", "https") or not host:
        return f"'url' is an http(s) URL like {_EXAMPLE_URL}, got {url!r}"
    if parts.username is not None or parts.password is not None:
        # The URL is shown by 'waypost explain' and logged when the service fails.
        return (
            "'url' holds a user or password; the URL is shown and logged, so it must not: "
            "let the auth service trust the network it listens on, or put the secret in a header"
        )
    if parts.fragment or " " in url:
        return f"'url' is an http(s) URL like {_EXAMPLE_URL} (no fragment, no spaces), got {url!r}"
    return None


def _header_name(value: Any, key: str) -> str | None:
    """Why ``value`` cannot be the header name of option ``key``, or None."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        return f"{key!r} names headers like X-Auth-Request-User, got {value!r}"
    if value.lower() in _NOT_COPIED:
        return (
            f"{key!r} cannot name {value!r}: Waypost or the HTTP framing sets that header; "
            "copy the auth service's own headers (X-Auth-Request-User, say)"
        )
    return None


def check_forward_auth_options(
    value: Mapping[str, Any], options: dict[str, Any], where: tuple[str | int, ...]
) -> list[FieldError]:
    """Complete ``options`` (checked for their types already) of a ``forward_auth`` guard from
    the written ``value``; the problems found."""
    errors: list[FieldError] = []
    problem = _url(options["url"])
    if problem:
        errors.append(FieldError(problem, (*where, "url")))
    copy = value.get("copy_headers", [])
    names = [copy] if isinstance(copy, str) else copy
    if not isinstance(names, list):
        errors.append(
            FieldError(
                "'copy_headers' is a list of header names like [X-Auth-Request-User], "
                f"got {copy!r}",
                (*where, "copy_headers"),
            )
        )
        names = []
    for name in names:
        problem = _header_name(name, "copy_headers")
        if problem:
            errors.append(FieldError(problem, (*where, "copy_headers")))
    options["copy_headers"] = tuple(dict.fromkeys(n for n in names if isinstance(n, str)))
    user = options.get("user_header")
    if user is not None:
        problem = _header_name(user, "user_header")
        if problem:
            errors.append(FieldError(problem, (*where, "user_header")))
    for key, default, lowest, what in (
        ("timeout", 5, 0.0, "a positive number of seconds"),
        ("cache", 0, None, "a number of seconds, 0 (ask every time) or more"),
    ):
        number = value.get(key, default)
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or number < 0
            or (lowest is not None and number <= lowest)
            or number != number  # NaN
            or number > 24 * 3600
        ):
            errors.append(FieldError(f"{key!r} is {what}, got {number!r}", (*where, key)))
            continue
        options[key] = float(number)
    return errors
