"""nginx ``respond`` answers: internal locations that an exact-path map leads to (written by
the export, read back by the import).

nginx's ``return`` takes a literal status and ``default_type`` takes no variable, so responses
are answered by one internal location per *shape* (status, Content-Type and header names),
``location ^~ /.waypost/respond/503/``. Each distinct response (a shape with its body and header
values) gets an internal URI below it, ``/.waypost/respond/503/1``: the exact-path maps give that
URI for their paths and ``rewrite ^ $map last`` goes there; pattern rules rewrite to it from their
``location ~``. The body and the header values are maps of that URI, so that 100,000 rules cost a
handful of locations however many bodies they have: nginx sorts locations in quadratic time when
it reads its configuration (a ``location =`` per path, as the export wrote respond rules before,
took ~9 s to load for 10,000 rules and ~36 s for 20,000). The prefix is ``^~`` so that no regex
location of the site (``location ~ /\\.``) takes the internal URI; ``internal`` makes nginx answer
404 to a request from outside for it, so the export reserves ``/.waypost/respond/``. An access log
that writes ``$uri`` shows the internal URI (``$request_uri`` is the path asked for).

The location answers as Waypost does (:func:`waypost.responses.decision_response`): the Content-Type
(``text/plain; charset=utf-8`` unless the rule sets one) is its ``default_type``, with
``charset off`` so that an inherited ``charset`` adds nothing; headers are ``add_header ...
always`` (an empty map value sends no header); and ``return 410 $waypost_respond_body`` sends
the body even when it is empty, with its Content-Length, and no body for HEAD. (``return 410;``
and ``return 410 "";`` would send nginx's HTML error page instead, or the site's ``error_page``.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._common import REDIRECT_STATUSES, Refusal
from ._syntax import Node, quote_text, quote_word

__all__ = [
    "BODY_VARIABLE",
    "RESPOND_PREFIX",
    "WAYPOST_CONTENT_TYPE",
    "Responder",
    "Response",
    "ResponseTable",
    "read_respond",
    "read_responder",
    "respond_value",
]

#: Internal URIs start here; a request from outside for one gets nginx's 404 (``internal``).
RESPOND_PREFIX = "/.waypost/respond/"
#: What Waypost sends when a respond rule sets no Content-Type.
WAYPOST_CONTENT_TYPE = "text/plain; charset=utf-8"
BODY_VARIABLE = "$waypost_respond_body"
# nginx writes these itself: add_header would send a second one.
_NGINX_WRITES = frozenset({"server", "date", "connection", "keep-alive"})
# Waypost leaves these out of a respond answer too (the length is the body's).
_DROPPED = frozenset({"content-length", "transfer-encoding"})

_Shape = tuple[int, str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Response:
    """What a respond rule sends; ``headers`` are those ``add_header`` writes, in rule order."""

    status: int
    content_type: str
    body: str
    headers: tuple[tuple[str, str], ...]


def read_respond(value: Any) -> Response:
    """A rule's ``respond`` value as a :class:`Response`; :class:`Refusal` if nginx cannot."""
    if isinstance(value, Mapping):
        unknown = sorted(map(str, set(value) - {"status", "body", "headers"}))
        if unknown:
            raise Refusal(f"cannot express 'respond.{unknown[0]}'")
        raw_status, raw_body = value.get("status", 200), value.get("body")
        raw_headers = value.get("headers") or {}
    else:
        raw_status, raw_body, raw_headers = value, None, {}
    try:
        status = int(raw_status)
    except (TypeError, ValueError):
        raise Refusal(f"the respond status {raw_status!r} is not a number") from None
    if not 200 <= status <= 599:
        raise Refusal(f"the respond status {status} is not from 200 to 599")
    if 300 <= status < 400:
        raise Refusal(
            f"nginx's 'return {status}' writes its own Location and redirect page; "
            "write the redirect with 'to:'"
        )
    if not isinstance(raw_headers, Mapping):
        raise Refusal("respond headers must be a mapping of names to values")
    content_type = WAYPOST_CONTENT_TYPE
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw_name, raw_text in raw_headers.items():
        name, text = str(raw_name), str(raw_text)
        lower = name.lower()
        if lower in seen:
            raise Refusal(f"the header {name!r} is given twice")
        seen.add(lower)
        if lower in _DROPPED:
            continue
        if lower in _NGINX_WRITES:
            raise Refusal(f"nginx writes its own {name!r} header; add_header would add a second")
        if not text:
            raise Refusal(f"nginx sends no {name!r} header with an empty value")
        if not text.isascii():
            # nginx sends the configuration's UTF-8 bytes; Waypost sends latin-1 or %-escapes.
            raise Refusal(f"the {name!r} header has non-ASCII text; write it %-encoded")
        if lower == "content-type":
            content_type = text
        else:
            headers.append((name, text))
    body = "" if raw_body is None else str(raw_body)
    # nginx sends a 204 without Content-Type, Content-Length (RFC 9110 §8.6 forbids it) and body;
    # Waypost with the first two, which is the one difference left when the body is empty.
    if status == 204 and body:
        raise Refusal("nginx sends a 204 without its body")
    return Response(status, content_type, body, tuple(headers))


@dataclass(slots=True)
class ResponseTable:
    """Every distinct response of an export with its internal URI; writes the nginx text."""

    uris: dict[Response, str] = field(default_factory=dict)
    #: Each shape's location name ('503', then '503-2' for another shape with that status).
    shapes: dict[_Shape, str] = field(default_factory=dict)
    #: How many responses each shape has, and how many shapes each status.
    counts: dict[_Shape, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    #: Lowercased header name -> (its map variable, the name as first written).
    header_variables: dict[str, tuple[str, str]] = field(default_factory=dict)

    def uri(self, response: Response) -> str:
        """The internal URI answering ``response``: the same for an equal response."""
        known = self.uris.get(response)
        if known is not None:
            return known
        names = tuple(sorted(name.lower() for name, _ in response.headers))
        shape = (response.status, response.content_type, names)
        if shape not in self.shapes:
            taken = self.statuses.get(response.status, 0)
            self.statuses[response.status] = taken + 1
            self.shapes[shape] = f"{response.status}-{taken + 1}" if taken else str(response.status)
        for name, _ in response.headers:
            self._header_variable(name)
        self.counts[shape] = self.counts.get(shape, 0) + 1
        uri = f"{RESPOND_PREFIX}{self.shapes[shape]}/{self.counts[shape]}"
        self.uris[response] = uri
        return uri

    def _header_variable(self, name: str) -> None:
        if name.lower() in self.header_variables:
            return
        variable = "$waypost_respond_header_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        if any(variable == taken for taken, _ in self.header_variables.values()):
            variable += f"_{len(self.header_variables) + 1}"  # 'X-A' and 'X_A'
        self.header_variables[name.lower()] = (variable, name)

    def http_lines(self) -> list[str]:
        """The maps of the internal URIs: the body, and one per header name."""
        if not self.uris:
            return []
        bodies = [f"    {uri} {quote_text(r.body)};" for r, uri in self.uris.items() if r.body]
        lines = [f"map $uri {BODY_VARIABLE} {{", '    default "";', *bodies, "}"]
        values: dict[str, list[str]] = {lower: [] for lower in self.header_variables}
        for response, uri in self.uris.items():
            for name, text in response.headers:
                values[name.lower()].append(f"    {uri} {quote_text(text)};")
        for lower, (variable, _) in self.header_variables.items():
            lines.extend([f"map $uri {variable} {{", '    default "";', *values[lower], "}"])
        return lines

    def server_lines(self) -> list[str]:
        """One internal location per shape."""
        lines: list[str] = []
        for (status, content_type, names), location in self.shapes.items():
            # add_header here replaces the add_header directives the location would inherit
            # (nginx's rule for inheritance), so only a shape that has headers writes any.
            headers = [
                f"    add_header {quote_word(self.header_variables[lower][1])} "
                f"{self.header_variables[lower][0]} always;"
                for lower in names
            ]
            lines.extend(
                [
                    f"location ^~ {RESPOND_PREFIX}{location}/ {{",
                    "    internal;",
                    f"    default_type {quote_word(content_type)};",
                    "    charset off;",
                    *headers,
                    f"    return {status} {BODY_VARIABLE};",
                    "}",
                ]
            )
        return lines


# -- import: reading the internal locations back -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Responder:
    """An ``internal`` location that answers with ``return STATUS TEXT``, as the export writes
    respond rules; the text and header values may be variables (maps of the internal URI)."""

    status: int
    content_type: str | None
    text: str
    headers: tuple[tuple[str, str], ...]


def read_responder(node: Node) -> Responder | None:
    """The answer of ``location ... { internal; default_type ...; add_header ... always;
    return 503 $waypost_respond_body; }``, or None for another kind of location."""
    children = node.children or []
    if node.name != "location" or not any(child.name == "internal" for child in children):
        return None
    returns = [c for c in children if c.name == "return" and len(c.args) == 2]
    if len(node.args) not in (1, 2) or len(returns) != 1 or not returns[0].args[0].isdigit():
        return None
    status = int(returns[0].args[0])
    if status in REDIRECT_STATUSES or not 200 <= status <= 599:
        return None  # the text is a Location, or the status closes the connection (444)
    types = [c.args[0] for c in children if c.name == "default_type" and len(c.args) == 1]
    headers = tuple(
        (c.args[0], c.args[1])
        for c in children
        if c.name == "add_header" and len(c.args) >= 2 and c.args[2:] in ([], ["always"])
    )
    return Responder(status, next(iter(types), None), returns[0].args[1], headers)


def respond_value(
    responder: Responder, body: str, headers: list[tuple[str, str]]
) -> int | dict[str, Any]:
    """A rule's ``respond`` value: ``responder``'s status with ``body`` and the ``headers`` (the
    values its variables have for one internal URI), the Content-Type unless it is Waypost's."""
    out: dict[str, str] = {}
    if responder.content_type not in (None, WAYPOST_CONTENT_TYPE):
        out["Content-Type"] = str(responder.content_type)
    out.update((name, text) for name, text in headers if text)  # nginx sends no empty header
    if not body and not out:
        return responder.status
    respond: dict[str, Any] = {"status": responder.status}
    if body:
        respond["body"] = body
    if out:
        respond["headers"] = out
    return respond
