"""Turning a :class:`~waypost.engine.Decision` into an HTTP response: status, headers, body.

Shared by the standalone server and the middleware, so every mode answers the same way. Sans-io:
returns values; the adapters write them to ASGI or WSGI.

Every header value that leaves here is safe to write: a Location is percent-encoded (non-ASCII,
spaces and control characters become ``%XX``; an international host becomes its IDNA form) and any
other value that still carried a control character is dropped to an empty value (RFC 9110 §5.5:
CR, LF and NUL in a field value would split the response).
"""

from __future__ import annotations

from functools import partial
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import quote

from waypost.decision import rule_options
from waypost.engine import Decision
from waypost.rules.safety import control_character

__all__ = [
    "DEFAULT_MAX_AGE",
    "Response",
    "decision_response",
    "encode_location",
    "error_response",
    "html_response",
    "plain_response",
    "reason",
    "safe_header_value",
]

DEFAULT_MAX_AGE = 3600
_PERMANENT = (301, 308)
_TEXT = "text/plain; charset=utf-8"
_HTML = "text/html; charset=utf-8"
# The one reason-phrase table (error pages, redirect bodies, status lines): Python's, with RFC
# 9110's names where Python 3.11 still has the older ones, so the text is the same on every Python.
_REASONS = {status.value: status.phrase for status in HTTPStatus} | {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
# Everything RFC 3986 allows in a URI, plus '%' so existing escapes are kept as they are.
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


class Response(NamedTuple):
    """A finished response: header names are lower-case, values are ASCII-safe text.

    A named tuple rather than a frozen dataclass: the server makes one per request, and a tuple
    is built several times faster.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers as ASGI wants them (latin-1 bytes)."""
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]


def reason(status: int) -> str:
    """The reason phrase for ``status``: ``'Not Found'`` for 404, ``''`` for a status HTTP has not
    registered (the status line ``'HTTP/1.1 599 '`` is still valid; RFC 9112 §4)."""
    return _REASONS.get(status, "")


def safe_header_value(value: str) -> str:
    """``value`` fit for a header: '' if it carries a control character; non-latin-1 escaped."""
    # Defence in depth: the loader and engine already refuse control characters; a header that
    # still carried one would split the response, so it is dropped to an empty value here.
    if control_character(value) is not None:
        return ""
    if value.isascii():
        return value
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return quote(value, safe=_URI_SAFE + ' "<>\\^`{|}')
    return value


def _plain_uri(location: str) -> bool:
    """True when ``location`` is printable ASCII without spaces: already a header-safe URI."""
    return location.isascii() and location.isprintable() and " " not in location


_CACHEABLE = {DEFAULT_MAX_AGE: f"public, max-age={DEFAULT_MAX_AGE}"}
# Per request: a C-level constructor (a NamedTuple's own __new__ is a Python function).
_response = partial(tuple.__new__, Response)


def encode_location(location: str) -> str:
    """``location`` as a header-safe URI reference (idempotent on an already-encoded one).

    Non-ASCII text, spaces and control characters are percent-encoded as UTF-8; existing ``%XX``
    escapes and reserved characters are kept; an international host is written in IDNA form.
    """
    if _plain_uri(location):
        return location
    scheme, sep, rest = location.partition("://")
    if sep and scheme.isalnum():
        cut = len(rest)
        for stop in "/?#":
            found = rest.find(stop)
            if 0 <= found < cut:
                cut = found
        authority, tail = rest[:cut], rest[cut:]
        userinfo, at, hostport = authority.rpartition("@")
        host, colon, port = hostport.partition(":")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                host = quote(host, safe="")
        authority = f"{quote(userinfo, safe=_URI_SAFE)}{at}{host}{colon}{port}"
        return f"{scheme}://{authority}{quote(tail, safe=_URI_SAFE, errors='replace')}"
    return quote(location, safe=_URI_SAFE, errors="replace")


def plain_response(status: int, text: str, *, head: bool = False) -> Response:
    """A small text/plain response (Content-Length is that of the body, also for HEAD)."""
    body = text.encode("utf-8")
    headers = (("content-type", _TEXT), ("content-length", str(len(body))))
    return Response(status, headers, b"" if head else body)


def html_response(
    status: int, html: str, *, head: bool = False, vary: tuple[str, ...] = ()
) -> Response:
    """A text/html response, never cached by shared caches (it is an error page)."""
    body = html.encode("utf-8")
    headers = [
        ("content-type", _HTML),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    if vary:
        headers.append(("vary", ", ".join(vary)))
    return Response(status, tuple(headers), b"" if head else body)


def error_response(status: int, detail: str = "", *, head: bool = False) -> Response:
    """A plain-text error page: ``'431 Request Header Fields Too Large'`` and an optional detail."""
    text = f"{status} {reason(status)}\n" + (f"{detail}\n" if detail else "")
    response = plain_response(status, text, head=head)
    return Response(status, (*response.headers, ("cache-control", "no-store")), response.body)


def decision_response(
    decision: Decision, *, head: bool = False, default_max_age: int = DEFAULT_MAX_AGE
) -> Response:
    """The response for a redirect or respond decision (not for rewrite or pass).

    Permanent redirects (301, 308) are cacheable for the rule's ``max_age`` (else
    ``default_max_age``); temporary ones (302, 303, 307) carry ``Cache-Control: no-store``, so a
    browser asks again next time. ``Vary`` names the request headers the decision depended on.
    A ``respond`` body carries its Content-Type (text/plain unless the rule set one) and the
    Content-Length of its UTF-8 bytes; a HEAD response carries the same headers and no body.
    """
    if decision.action == "redirect":
        location = decision.location or "/"
        if not (location.isascii() and location.isprintable() and " " not in location):
            location = safe_header_value(encode_location(location))
        status = decision.status or 302
        body = f"{_REASONS.get(status, 'Redirect')}: {location}\n".encode()
        if status == 301 or status == 308:
            options = rule_options(decision)
            rule_max_age = options.max_age if options is not None else None
            max_age = default_max_age if rule_max_age is None else rule_max_age
            cache_control = _CACHEABLE.get(max_age) or f"public, max-age={max_age}"
        else:
            cache_control = "no-store"
        headers: tuple[tuple[str, str], ...] = (
            ("location", location),
            ("content-type", _TEXT),
            ("content-length", str(len(body))),
            ("cache-control", cache_control),
        )
        if decision.vary:
            headers += (("vary", ", ".join(decision.vary)),)
        return _response((status, headers, b"" if head else body))
    if decision.action == "respond":
        body = (decision.body or "").encode("utf-8")
        out = [
            (k.lower(), safe_header_value(v))
            for k, v in decision.headers
            if k.lower() not in ("content-length", "transfer-encoding")
        ]
        if not any(k == "content-type" for k, _ in out):
            out.append(("content-type", _TEXT))
        out.append(("content-length", str(len(body))))
        if decision.vary:
            out.append(("vary", ", ".join(decision.vary)))
        return Response(decision.status or 200, tuple(out), b"" if head else body)
    raise ValueError(f"a {decision.action} decision has no response of its own")
