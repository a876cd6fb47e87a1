"""Admin sign-in sessions: what the login cookie holds instead of the API key a person pasted.

A session token reads ``wps_<secret>``: the prefix makes a leaked one recognisable (and tells it
apart from a key, ``wp_<id>_<secret>``), the secret is 256 random bits from :mod:`secrets`. The
store keeps only the token's SHA-256, with the key it signs in as, when it was made, when it
expires and when it was last seen, and what signed in: the client's User-Agent and address (see
:func:`clean_client_text`). A session does what its key may do, no more: every check
also checks the key (revoked, expired, host binding, scope), so ending the key ends its sessions.

A session is found by its hash (a primary-key lookup in the database); no secret is compared in
Python, and what a guesser could time is an index search for the hash of their own guess, which
tells nothing about any stored token.

A session's public id, which lists show and which ends it, is the first 16 hex digits of that
hash (:func:`session_id`): it tells sessions apart, and nothing about the token (finding a token
for it would take a preimage of SHA-256), so it may be shown to anyone who may end the session.

:class:`SessionChecker` caches a successful lookup for ``ttl`` seconds like
:class:`~waypost.store.keys.KeyChecker`, so that a sign-out or a revoke in another process takes
effect within that time, and records last-seen at most once per ``usage_interval``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from waypost.exceptions import AuthError
from waypost.store._checker import CachedChecker
from waypost.store.keys import ApiKey, KeyScope, check_key

__all__ = [
    "CLIENT_ADDRESS_MAX",
    "SESSION_ID_LENGTH",
    "SESSION_PREFIX",
    "USER_AGENT_MAX",
    "Session",
    "SessionChecker",
    "clean_client_text",
    "hash_token",
    "new_session_token",
    "session_digest",
    "session_id",
    "token_session_id",
]

SESSION_PREFIX = "wps_"
_TOKEN = re.compile(r"wps_[A-Za-z0-9_-]{43}\Z")  # token_urlsafe(32): 43 characters
#: How many hex digits of the token's SHA-256 make a session's id (64 bits).
SESSION_ID_LENGTH = 16
#: The most characters of a User-Agent a session keeps (real ones are a few hundred at most).
USER_AGENT_MAX = 512
#: The most characters of a client address a session keeps (an IPv6 address with a zone fits).
CLIENT_ADDRESS_MAX = 128
# Unicode categories never stored: controls (Cc: C0, DEL, C1), format characters (Cf: bidi
# overrides and zero-width ones, which make a listing lie about what it shows), line and
# paragraph separators, surrogates, private use and unassigned code points.
_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_REPLACEMENT = "\ufffd"
_ELLIPSIS = "\u2026"


def clean_client_text(value: str | None, limit: int) -> str | None:
    """``value`` (a User-Agent, a client address: whatever the client sent) as a session keeps
    it: the ends are stripped of white space, every other control, format or separator character
    (newlines, NUL, ESC, bidi overrides) becomes U+FFFD, and text longer than ``limit``
    characters is cut to ``limit`` ending in "…". None for nothing (None, empty, white space).

    It is shown later in a terminal table, JSON and logs: none of them may be fooled by what a
    stranger chose to send."""
    if value is None:
        return None
    cleaned = "".join(
        _REPLACEMENT if unicodedata.category(char) in _UNSHOWN else char
        for char in value.strip()  # first: a trailing CR LF is not worth a mark
    ).strip()
    if not cleaned:
        return None
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + _ELLIPSIS
    return cleaned


@dataclass(frozen=True, slots=True)
class Session:
    """A stored sign-in session (never its token): its public ``id`` (see :func:`session_id`),
    the API key it signs in as, its times, and the ``user_agent`` and ``client_address`` that
    signed in (None when unknown, and for sessions made before Waypost recorded them)."""

    id: str
    key_id: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None = None
    user_agent: str | None = None
    client_address: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        """True when the session has expired at ``now`` (default: the current time)."""
        return self.expires_at <= (now or datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "key_id": self.key_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "last_seen_at": None if self.last_seen_at is None else self.last_seen_at.isoformat(),
            "user_agent": self.user_agent,
            "client_address": self.client_address,
        }


def new_session_token() -> str:
    """A fresh session token: ``wps_`` and 256 random bits, URL-safe (a cookie value as is)."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a session token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_digest(token: str) -> str:
    """The stored hash of a presented token; :class:`AuthError` ``malformed`` when ``token`` is
    not a session token at all (an API key left in an old login cookie, for one)."""
    token = token.strip() if isinstance(token, str) else ""
    if _TOKEN.match(token) is None:
        raise AuthError("malformed", "not a Waypost sign-in session; sign in again")
    return hash_token(token)


def session_id(digest: str) -> str:
    """The public id of the session whose token hashes to ``digest``: the hash's first 16 hex
    digits. It names the session (to list or end it); it cannot sign in."""
    return digest[:SESSION_ID_LENGTH]


def token_session_id(token: str | None) -> str | None:
    """The id of the session ``token`` would be (None when it is not a session token)."""
    if token is None:
        return None
    try:
        return session_id(session_digest(token))
    except AuthError:
        return None


class SessionChecker(CachedChecker[tuple[Session, ApiKey], tuple[Session, ApiKey]]):
    """Checks presented session tokens against a store, with a short cache and throttled
    last-seen writes.

    ``lookup(digest)`` returns the session with that token hash and its key (None when there is
    none: never made, signed out, purged, or its key revoked); ``record_use({digest: when})``
    writes last-seen times. Thread-safe. The cache maps a token hash to (session, its key).
    """

    def forget(self, *, digest: str | None = None, key_id: str | None = None) -> None:
        """Drop cached checks: of one session (signed out), of one key's sessions (revoked), or
        all of them."""
        if digest is None and key_id is None:
            self._cache.drop()
            return
        self._cache.drop(
            lambda d, found: d == digest or (key_id is not None and found[1].id == key_id)
        )

    def authenticate(
        self, token: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> tuple[Session, ApiKey]:
        """The session for ``token`` and its key, if the session has not ended and the key may
        be used for a request to ``host`` needing ``scope``; :class:`AuthError` otherwise."""
        digest = session_digest(token)
        found = self._cache.get(digest)
        if found is None:
            generation = self._cache.generation
            found = self._lookup(digest)
            if found is None:
                self._cache.pop(digest)
                raise AuthError(
                    "unknown", "this sign-in has ended (signed out, expired or revoked)"
                )
            self._cache.put(digest, found, generation=generation)
        session, key = found
        if session.expired():
            self._cache.pop(digest)
            raise AuthError("expired", f"this sign-in expired at {session.expires_at.isoformat()}")
        check_key(key, host, scope)
        self._usage.note(digest)
        return session, key
