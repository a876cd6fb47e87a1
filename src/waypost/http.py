"""Turning a :class:`~waypost.engine.Decision` into an HTTP response: status, headers, body.

Shared by the standalone server and the middleware, so every mode answers the same way. Sans-io:
returns values; the adapters write them to ASGI or WSGI.
"""

from __future__ import annotations

from dataclasses import dataclass

from waypost.engine import Decision
from waypost.rules.safety import control_character

__all__ = ["Response", "decision_response", "plain_response"]

_PERMANENT = (301, 308)
_TEXT = "text/plain; charset=utf-8"
_REASONS = {
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
}


@dataclass(frozen=True, slots=True)
class Response:
    """A finished response: header names are lower-case, values are ASCII-safe text."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers as ASGI wants them (latin-1 bytes)."""
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]


def _safe(value: str) -> str:
    # Defence in depth: the loader and engine already refuse control characters; a header that
    # still carried one would split the response, so it is dropped to an empty value here.
    return "" if control_character(value) is not None else value


def plain_response(status: int, text: str, *, head: bool = False) -> Response:
    """A small text/plain response."""
    body = text.encode("utf-8")
    headers = (("content-type", _TEXT), ("content-length", str(len(body))))
    return Response(status, headers, b"" if head else body)


DEFAULT_MAX_AGE = 3600


def decision_response(
    decision: Decision, *, head: bool = False, default_max_age: int = DEFAULT_MAX_AGE
) -> Response:
    """The response for a redirect or respond decision (not for rewrite or pass).

    Permanent redirects (301, 308) are cacheable for the rule's ``max_age`` (else
    ``default_max_age``); temporary ones (302, 303, 307) carry ``Cache-Control: no-store``, so a
    browser asks again next time. ``Vary`` names the request headers the decision depended on.
    """
    if decision.action == "redirect":
        location = decision.location or "/"
        status = decision.status or 302
        text = f"{_REASONS.get(status, 'Redirect')}: {location}\n"
        body = text.encode("utf-8")
        headers = [
            ("location", _safe(location)),
            ("content-type", _TEXT),
            ("content-length", str(len(body))),
        ]
        if status in _PERMANENT:
            rule_max_age = decision.rule.options.max_age if decision.rule else None
            max_age = default_max_age if rule_max_age is None else rule_max_age
            headers.append(("cache-control", f"public, max-age={max_age}"))
        else:
            headers.append(("cache-control", "no-store"))
        if decision.vary:
            headers.append(("vary", ", ".join(decision.vary)))
        return Response(status, tuple(headers), b"" if head else body)
    if decision.action == "respond":
        body = (decision.body or "").encode("utf-8")
        headers = [(k.lower(), _safe(v)) for k, v in decision.headers]
        if not any(k == "content-type" for k, _ in headers):
            headers.append(("content-type", _TEXT))
        headers = [(k, v) for k, v in headers if k != "content-length"]
        headers.append(("content-length", str(len(body))))
        if decision.vary:
            headers.append(("vary", ", ".join(decision.vary)))
        return Response(decision.status or 200, tuple(headers), b"" if head else body)
    raise ValueError(f"a {decision.action} decision has no response of its own")
