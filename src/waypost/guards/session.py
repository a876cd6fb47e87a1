"""The ``session`` guard: a signed Flask session cookie, as Flask and Flask-Login write it.

The cookie is verified with ``itsdangerous`` exactly as Flask's ``SecureCookieSessionInterface``
does: a ``URLSafeTimedSerializer`` with the salt ``'cookie-session'``, HMAC key derivation and
SHA-1, and a maximum age (Flask's ``PERMANENT_SESSION_LIFETIME``, 31 days unless set). The
payload is the JSON of Flask's ``TaggedJSONSerializer``; the guard reads it (tags included)
without importing Flask. The request passes when the session holds ``key`` (Flask-Login's
``_user_id``), whose value becomes the user.

Verifying a signature costs tens of microseconds (key derivation, HMAC, zlib, JSON), and a browser
sends the same cookie with every request, so a cookie that passed is remembered for
``CACHE_SECONDS`` by its exact text: the cookie string itself is the key, since it is what was
verified (a different byte is a different cookie, checked afresh); and by the whole Cookie header
as sent, which holds that text (so a repeated request need not cut the cookie out of it). An entry
never outlives the cookie: it runs out at the earlier of ``CACHE_SECONDS`` after the check and the
moment the signature becomes older than ``max_age`` (Flask's ``PERMANENT_SESSION_LIFETIME``), by
the wall clock as itsdangerous reads it. A failure is never remembered. A reload builds a new guard
with an empty cache, so a changed ``SECRET_KEY`` refuses old cookies from the reload on.

A cookie with a bad signature (forged or tampered) is a failure of the client that sent it
(``Request.client_ip``); after ``max_failures`` of them within ``window`` seconds the client is
answered 429 with ``Retry-After`` (see :mod:`._limit`). A missing cookie, an expired one (a
browser keeps sending it until it logs in again) and a session without ``key`` (logged out) are
not failures; a cookie remembered as good still passes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from waypost.guards._limit import MAX_FAILURES, WINDOW_SECONDS, FailureWindow
from waypost.guards.base import Allowed, Denied, Outcome
from waypost.rules.request import Request

__all__ = ["CACHE_SECONDS", "SessionGuard", "TaggedJSON"]

#: How long a verified cookie is remembered (never past its ``max_age``).
CACHE_SECONDS = 60.0
_CACHE_SIZE = 4096


def _untag(value: Any) -> Any:
    """A value of Flask's tagged JSON, its tags (``{" t": [...]}`` and the like) read back."""
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), *_ = value.items()
            if tag == " t":
                return tuple(_untag(v) for v in inner)
            if tag == " di":
                return {k: _untag(v) for k, v in inner.items()}
            if tag == " u":
                return uuid.UUID(inner)
            if tag == " b":
                return base64.b64decode(inner)
            if tag in (" m", " d"):  # Markup, an HTTP date: kept as their text
                return inner
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


class TaggedJSON:
    """Reads (and, for tests, writes plain) JSON in the form of Flask's ``TaggedJSONSerializer``."""

    @staticmethod
    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes) -> Any:
        return _untag(json.loads(text))


class SessionGuard:
    """A Flask session cookie signed with one of ``secrets`` (the current key last, as
    Flask's ``SECRET_KEY_FALLBACKS`` come first) that holds ``key``."""

    kind = "session"

    def __init__(
        self,
        name: str,
        secrets: Sequence[str],
        *,
        cookie: str = "session",
        key: str = "_user_id",
        max_age: int = 31 * 24 * 3600,
        login_url: str | None = None,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.name = name
        self.failures = FailureWindow(max_failures, window)
        self.cookie = cookie
        self.key = key
        self.max_age = max_age
        self.login_url = login_url
        self._serializer: URLSafeTimedSerializer = URLSafeTimedSerializer(
            list(secrets),
            salt="cookie-session",
            serializer=TaggedJSON,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )
        #: cookie text -> (what a request with it gets, wall-clock time the entry runs out).
        self._passed: dict[str, tuple[Allowed, float]] = {}
        #: The same by the whole Cookie header text (the session cookie's entry, shared).
        self._by_header: dict[str, tuple[Allowed, float]] = {}

    def __repr__(self) -> str:
        return f"SessionGuard({self.name!r}, cookie={self.cookie!r}, key={self.key!r})"

    def memory(self) -> tuple[str, dict[str, tuple[Allowed, float]], None, bool]:
        """What the compiled road reads to let a request through that passed before (see
        ``waypost/_gate.c``): the passes remembered by the whole Cookie header, as
        ``(Allowed, expires)``. The dict is cleared, never replaced."""
        return ("session", self._by_header, None, False)

    def check(self, request: Request) -> Outcome:
        """Allowed with the session's ``key`` as the user, or 401."""
        header = request.cookie_header()
        if header is None:
            return Denied(401, f"no {self.cookie!r} cookie")
        now = time.time()
        # First by the whole Cookie header as sent (the same text holds the same session
        # cookie: nothing to cut out of it), then by the session cookie's own text (the other
        # cookies of a browser change more often than its session).
        remembered = self._by_header.get(header)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        value = request.cookie(self.cookie, header)
        if not value:
            return Denied(401, f"no {self.cookie!r} cookie")
        remembered = self._passed.get(value)
        if remembered is not None:
            if remembered[1] > now:
                self._remember(header, remembered)
                return remembered[0]
            self._passed.pop(value, None)
        client = request.client_ip
        wait = self.failures.retry_after(client)
        if wait is not None:
            return Denied(429, "too many forged cookies from this client", None, wait)
        try:
            data, signed = self._serializer.loads(
                value, max_age=self.max_age, return_timestamp=True
            )
        except SignatureExpired:
            # A genuine cookie, only old: not a failure (say which, never the cookie).
            return Denied(401, f"{self.cookie!r} cookie rejected: expired")
        except BadSignature:
            self.failures.failed(client)
            return Denied(401, f"{self.cookie!r} cookie rejected: bad signature")
        if not isinstance(data, dict) or data.get(self.key) in (None, ""):
            return Denied(401, f"the session has no {self.key!r} (not logged in)")
        user = str(data[self.key])
        if len(self._passed) >= _CACHE_SIZE:
            self._passed.clear()  # bounded: many distinct cookies cost a full check again
        # itsdangerous refuses a signature older than max_age: the entry runs out by then too.
        expires = min(now + CACHE_SECONDS, signed.timestamp() + self.max_age)
        entry = (
            Allowed(user, {"user": user}, f"session {self.key!r} = {user!r} (cached)"),
            expires,
        )
        self._passed[value] = entry
        self._remember(header, entry)
        return Allowed(user, {"user": user}, f"session {self.key!r} = {user!r}")

    def _remember(self, header: str, entry: tuple[Allowed, float]) -> None:
        if len(self._by_header) >= _CACHE_SIZE:
            self._by_header.clear()  # bounded, as _passed
        self._by_header[header] = entry
