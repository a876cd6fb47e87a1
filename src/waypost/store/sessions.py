"""Admin sign-in sessions: what the login cookie holds instead of the API key a person pasted.

A session token reads ``wps_<secret>``: the prefix makes a leaked one recognisable (and tells it
apart from a key, ``wp_<id>_<secret>``), the secret is 256 random bits from :mod:`secrets`. The
store keeps only the token's SHA-256, with the key it signs in as, when it was made, when it
expires and when it was last seen. A session does what its key may do, no more: every check
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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from waypost.exceptions import AuthError
from waypost.store._cache import CheckCache
from waypost.store._usage import UsageLog, UsageRecorder
from waypost.store.keys import ApiKey, KeyScope, check_key

__all__ = [
    "SESSION_ID_LENGTH",
    "SESSION_PREFIX",
    "Session",
    "SessionChecker",
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


@dataclass(frozen=True, slots=True)
class Session:
    """A stored sign-in session (never its token): its public ``id`` (see :func:`session_id`),
    the API key it signs in as, and its times."""

    id: str
    key_id: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None = None

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


SessionLookup = Callable[[str], tuple[Session, ApiKey] | None]


class SessionChecker:
    """Checks presented session tokens against a store, with a short cache and throttled
    last-seen writes.

    ``lookup(digest)`` returns the session with that token hash and its key (None when there is
    none: never made, signed out, purged, or its key revoked); ``record_seen({digest: when})``
    writes last-seen times. Thread-safe.
    """

    def __init__(
        self,
        lookup: SessionLookup,
        record_seen: UsageRecorder,
        *,
        ttl: float = 2.0,
        usage_interval: float = 60.0,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        # token hash -> (session, its key)
        self._cache: CheckCache[tuple[Session, ApiKey]] = CheckCache(
            ttl=ttl, size=cache_size, clock=clock
        )
        self._seen = UsageLog(record_seen, interval=usage_interval, clock=clock)

    @property
    def ttl(self) -> float:
        """Seconds a successful check is trusted before the store is asked again."""
        return self._cache.ttl

    def __repr__(self) -> str:
        return f"SessionChecker(ttl={self.ttl!r}, usage_interval={self._seen.interval!r})"

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
        self._seen.note(digest)
        return session, key

    def flush(self) -> None:
        """Write pending last-seen times."""
        self._seen.flush()
