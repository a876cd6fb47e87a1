"""Small HTTP decisions of the admin API, free of any framework: which client is a browser,
what an ``If-Match`` names, where a login may send a person next, where the credentials are,
what text a header held.

Everything here takes plain strings and mappings, so it is tested without a server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from waypost.rules.request import Request
from waypost.rules.safety import location_problem
from waypost.rules.target import parse_target

__all__ = [
    "Credentials",
    "IfMatchError",
    "find_credentials",
    "form_token",
    "header_text",
    "parse_if_match",
    "prefers_html",
    "safe_next",
    "same_origin",
    "sends_json",
]

#: Where a relative ``next`` must stay: a path on this site (the rule language's own guard).
_SAME_SITE = parse_target("/")
# What a Location may carry unencoded: reserved characters and existing %XX escapes. Anything
# else (spaces, non-ASCII) is percent-encoded, as the engine does with a rule's literal target.
_LOCATION_SAFE = "/:?#[]@!$&'()*+,;=%-._~"
_ETAG = re.compile(r'\s*(?:W/)?"?(\d{1,16})"?\s*\Z')
_MAX_NEXT = 2048


def header_text(value: str | None) -> str | None:
    """A header's value as the text its sender most likely meant. ASGI servers hand header bytes
    over as Latin-1; a value whose bytes are valid UTF-8 (a User-Agent naming a non-English
    product) is read as UTF-8 instead, anything else stays as it was. This does not make the
    text safe to show: that is the store's :func:`~waypost.store.sessions.clean_client_text`."""
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not Latin-1 (a str from elsewhere) or not UTF-8 bytes
        return value


class IfMatchError(ValueError):
    """An ``If-Match`` header this API cannot use; the message says how to write one."""


def sends_json(headers: Mapping[str, str]) -> bool:
    """True when the request body is JSON (``Content-Type: application/json`` or ``+json``)."""
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def prefers_html(headers: Mapping[str, str]) -> bool:
    """True for a browser: it did not send JSON and its Accept prefers a page to JSON.

    Anything else (curl's ``*/*``, ``fetch()`` asking for JSON, an API client sending JSON) is a
    JSON client. The Accept reading is the rule language's own ``accept: html`` condition.
    """
    if sends_json(headers):
        return False
    return Request("GET", "/", headers=headers).accept == "html"


def parse_if_match(value: str | None) -> int | None:
    """The rule version an ``If-Match`` names: ``"7"`` (as sent in the ETag), ``W/"7"`` or
    ``7``; None for no header or ``*`` (any current version). One tag only."""
    if value is None or value.strip() == "*":
        return None
    if "," in value:
        raise IfMatchError(f"If-Match {value!r} names several versions; send the one ETag you read")
    found = _ETAG.match(value)
    if found is None:
        raise IfMatchError(
            f"If-Match {value!r} is not a rule version; send the ETag you read, like '\"7\"'"
        )
    return int(found[1])


def safe_next(value: str | None, fallback: str) -> str:
    """``value`` when it is a path on this site (after percent-encoding what a Location may not
    carry raw), else ``fallback``.

    The check is the engine's own guard for filled-in targets
    (:func:`waypost.rules.safety.location_problem` against a same-site target): no control
    character, space or backslash, a leading ``/`` but not ``//``. That is what stops
    ``//evil.com``, ``/\\evil.com``, ``https://evil.com`` and ``javascript:`` (an open redirect).
    """
    if not value or len(value) > _MAX_NEXT:
        return fallback
    if location_problem(value, _SAME_SITE, ()) is not None:
        return fallback
    try:
        encoded = quote(value, safe=_LOCATION_SAFE, errors="strict")
    except UnicodeEncodeError:  # a lone surrogate: no URL can carry it
        return fallback
    if location_problem(encoded, _SAME_SITE, ()) is not None:  # pragma: no cover - belt and braces
        return fallback
    return encoded


def form_token(session_token: str) -> str:
    """The CSRF token the admin page's forms carry for a sign-in session.

    It is a hash of the session's token, which only the browser's HttpOnly cookie holds: another
    site cannot read it, so it cannot fill it into a form it makes a visitor post, and the page
    that shows it does not show the session token itself. It ends with the session."""
    return hashlib.sha256(b"waypost admin form\0" + session_token.encode()).hexdigest()[:40]


def same_origin(origin: str | None, host: str | None) -> bool:
    """True unless ``Origin`` names another host than ``Host`` (no Origin: a same-site request
    or a client that is not a browser; a browser sends one on every cross-site POST)."""
    if origin is None:
        return True
    if origin == "null" or not host:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return netloc.lower() == host.strip().lower()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents and where it came from: an API key (``bearer`` or ``header``),
    or the sign-in session token of the login cookie (``cookie``)."""

    presented: str
    source: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(presented='…', source={self.source!r})"


def find_credentials(headers: Mapping[str, str], cookie: str | None) -> Credentials | None:
    """The credentials a request presents, in this order:

    1. ``Authorization: Bearer wp_<id>_<secret>``;
    2. ``X-API-Key: <id>`` (with or without ``wp_``) and ``X-Secret-Token: <secret>``, the pair
       many API clients send; ``X-API-Key`` alone may also hold the whole key;
    3. the admin login cookie (a browser): a sign-in session token, never a key.

    Whether they are good is for the store to say; malformed ones are still returned, so that
    they are refused (and counted) rather than ignored.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return Credentials(token.strip(), "bearer")
    key_id = headers.get("x-api-key")
    secret = headers.get("x-secret-token")
    if key_id is not None:
        key_id = key_id.strip()
        if secret is None:
            return Credentials(key_id, "header")
        public = key_id.removeprefix("wp_")
        return Credentials(f"wp_{public}_{secret.strip()}", "header")
    if secret is not None:
        return Credentials(secret.strip(), "header")  # refused: the id is missing
    if authorization is not None:
        return Credentials(authorization.strip(), "bearer")  # 'Basic ...' and the like: refused
    if cookie:
        return Credentials(cookie, "cookie")
    return None
