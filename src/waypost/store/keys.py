"""API keys: how they look, how they are stored, and how a presented key is checked.

A key reads ``wp_<public id>_<secret>``: the ``wp_`` prefix makes a leaked key recognisable (to
secret scanners and to people), the public id finds the stored record, and the secret is 256 random
bits from :mod:`secrets`. Only the SHA-256 of the secret is stored; a slow password hash would add
nothing against a guess at 256 random bits, and SHA-256 keeps each check cheap. The stored and the
computed hash are compared with :func:`hmac.compare_digest`, in constant time.

:class:`KeyChecker` answers "is this key good for this request?" for a store: it caches a success
for ``ttl`` seconds (so a revoked key stops working everywhere within that time, without a database
read per request), and records last use at most once per ``usage_interval`` per key, not on every
request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from waypost.exceptions import AuthError
from waypost.guards.api_key import KEY_FORMAT, secret_hash
from waypost.store._checker import CachedChecker

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "ApiKey",
    "KeyChecker",
    "KeyReach",
    "KeyScope",
    "check_key",
    "hash_secret",
    "limit_new_key",
    "new_key",
    "normalize_host",
    "parse_duration",
    "parse_expiry",
    "split_key",
]

KEY_PREFIX = "wp_"
KeyScope = Literal["read", "write", "admin"]
#: The scopes in rising order: each one allows what the ones before it allow.
SCOPES: tuple[KeyScope, ...] = ("read", "write", "admin")
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: read aloud without mistakes
_ID_LENGTH = 12
# One form and one hash for every key: the api_key guard checks what the store writes.
_KEY = KEY_FORMAT
#: The stored form of a secret: its SHA-256, in hex.
hash_secret = secret_hash
_DURATION = re.compile(r"(\d+)\s*([smhdw])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (never its secret). ``host``: the only host it is valid for (None: any).

    ``scope`` is what it may do in the admin API; None for an access key, which never opens the
    admin API. ``audiences`` are the ``api_key`` guards' audiences it opens (none for a key
    that only opens the admin API). A key may be both.
    """

    id: str
    scope: KeyScope | None
    note: str = ""
    host: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    audiences: tuple[str, ...] = ()

    def allows(self, scope: KeyScope) -> bool:
        """True when this key's scope covers ``scope`` (admin > write > read); never for an
        access key."""
        return self.scope is not None and SCOPES.index(self.scope) >= SCOPES.index(scope)

    def status(self, now: datetime | None = None) -> Literal["active", "expired", "revoked"]:
        """``active``, ``expired`` or ``revoked`` at ``now`` (default: the current time)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""

        def text(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "id": self.id,
            "scope": self.scope,
            "audiences": list(self.audiences),
            "note": self.note,
            "host": self.host,
            "status": self.status(),
            "created_at": text(self.created_at),
            "created_by": self.created_by,
            "expires_at": text(self.expires_at),
            "revoked_at": text(self.revoked_at),
            "last_used_at": text(self.last_used_at),
        }


def new_key() -> tuple[str, str, str]:
    """A fresh key: ``(public id, secret, the whole key to hand out)``."""
    public_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    secret = secrets.token_urlsafe(32)
    return public_id, secret, f"{KEY_PREFIX}{public_id}_{secret}"


def split_key(presented: str) -> tuple[str, str]:
    """``(public id, secret)`` of a presented key; :class:`AuthError` ``malformed`` otherwise."""
    found = _KEY.match(presented.strip()) if isinstance(presented, str) else None
    if found is None:
        raise AuthError("malformed", "not a Waypost API key: a key looks like 'wp_<id>_<secret>'")
    return found[1], found[2]


def normalize_host(host: str) -> str:
    """``host`` as keys are bound to it: lower case, no port, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, '[::1]:8080'
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a timedelta; None when ``text`` is not one."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        return None
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from ``now``, or an ISO 8601 date or time (UTC unless
    it names a zone); :class:`ValueError` with a message for people otherwise."""
    now = now or datetime.now(UTC)
    duration = parse_duration(text)
    if duration is not None:
        return now + duration
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an expiry: write a duration like '30d', '12h', '2w' or a date "
            "like '2026-12-31' (or '2026-12-31T18:00:00+02:00')"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        raise ValueError(f"{text!r} is in the past; a key must expire in the future")
    return moment


@dataclass(frozen=True, slots=True)
class KeyReach:
    """What a credential may do: its ``scope``, the one ``host`` it is valid for (None: any),
    and until when (``expires_at``; None: no end). A sign-in session reaches as far as its key,
    and no later than the session's own end."""

    scope: KeyScope
    host: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def of(cls, key: ApiKey, *, until: datetime | None = None) -> KeyReach:
        """The reach of ``key`` (an admin key: check_key() lets no access key in), or of a
        session of it that ends at ``until``."""
        if key.scope is None:
            raise ValueError(f"API key {key.id!r} is an access key: it reaches no admin API")
        ends = [moment for moment in (key.expires_at, until) if moment is not None]
        return cls(key.scope, key.host, min(ends) if ends else None)


def limit_new_key(
    creator: KeyReach, scope: KeyScope | None, host: str | None, expires_at: datetime | None
) -> tuple[str | None, datetime | None, list[tuple[str, str]]]:
    """The host and expiry of a key that ``creator`` makes, and every way the requested key
    would reach further than ``creator`` (``(field, message)``; none: it may be made).

    A key made with a key (or a session) may never do more than its maker, or it would outlive
    a revocation-by-expiry or escape a host binding: its scope is at most the maker's; a
    host-bound maker makes keys bound to the same host (left out: inherited); an expiring maker
    makes keys that expire no later (left out: the maker's expiry).
    """
    problems: list[tuple[str, str]] = []
    if scope is not None and SCOPES.index(scope) > SCOPES.index(creator.scope):
        problems.append(
            (
                "scope",
                f"the key making this one has scope {creator.scope!r}; it cannot make a key "
                f"with scope {scope!r}: ask for {creator.scope!r} or less",
            )
        )
    if creator.host is not None:
        if host is None:
            host = creator.host
        elif normalize_host(host) != creator.host:
            problems.append(
                (
                    "host",
                    f"the key making this one is only valid for {creator.host!r}, so the keys "
                    f"it makes must be too: leave host out or give {creator.host!r}",
                )
            )
    if creator.expires_at is not None:
        ends = creator.expires_at.isoformat(timespec="seconds")
        if expires_at is None:
            expires_at = creator.expires_at
        elif expires_at > creator.expires_at:
            problems.append(
                (
                    "expires",
                    f"the key (or sign-in) making this one ends at {ends}, so the keys it makes "
                    "must expire by then: give an earlier expiry or leave it out",
                )
            )
    return host, expires_at, problems


def check_key(key: ApiKey, host: str | None, scope: KeyScope | None = None) -> None:
    """Raise :class:`AuthError` unless ``key`` may be used now for a request to ``host`` needing
    ``scope``: it is not revoked or expired, its host binding (if any) matches, its scope
    covers ``scope``."""
    if key.scope is None:
        raise AuthError(
            "access_key",
            f"API key {key.id!r} is an access key for guarded paths "
            f"(audiences: {', '.join(key.audiences)}); it does not open the admin API: make an "
            "admin key with 'waypost keys create --scope read'",
        )
    status = key.status()
    if status == "revoked":
        raise AuthError("revoked", f"API key {key.id!r} was revoked")
    if status == "expired":
        assert key.expires_at is not None  # status() says so
        raise AuthError("expired", f"API key {key.id!r} expired at {key.expires_at.isoformat()}")
    if key.host is not None and (host is None or normalize_host(host) != key.host):
        raise AuthError(
            "wrong_host",
            f"API key {key.id!r} is only valid for {key.host!r}, not {host!r}",
        )
    if scope is not None and not key.allows(scope):
        raise AuthError(
            "insufficient_scope",
            f"API key {key.id!r} has scope {key.scope!r}; this needs {scope!r}",
        )


class KeyChecker(CachedChecker[tuple[ApiKey, str], ApiKey]):
    """Checks presented keys against a store, with a short cache and throttled last-use writes.

    ``lookup(public_id)`` returns the stored key and its secret's hash (None when unknown);
    ``record_use({id: when})`` writes last-use times. Thread-safe. The cache maps the SHA-256
    of the whole presented key to the key: a hit means the secret was verified against the
    database less than ``ttl`` seconds ago.
    """

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached checks (of one key, or all): after a revoke in this process."""
        if key_id is None:
            self._cache.drop()
        else:
            self._cache.drop(lambda _, key: key.id == key_id)

    def authenticate(
        self, presented: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """The key for ``presented`` if it may be used for a request to ``host`` needing
        ``scope``; :class:`AuthError` with the reason otherwise."""
        public_id, secret = split_key(presented)
        digest = hashlib.sha256(presented.strip().encode("utf-8")).hexdigest()
        key = self._cache.get(digest)
        if key is None:
            generation = self._cache.generation
            key = self._verify(public_id, secret)
            self._cache.put(digest, key, generation=generation)
        check_key(key, host, scope)
        self.note_use(key.id)
        return key

    def _verify(self, public_id: str, secret: str) -> ApiKey:
        found = self._lookup(public_id)
        if found is None:
            raise AuthError("unknown", f"no API key with id {public_id!r}")
        key, stored_hash = found
        # Constant time: how much of the hash matched must not show in the response time.
        if not hmac.compare_digest(stored_hash, hash_secret(secret)):
            raise AuthError("bad_secret", f"wrong secret for API key {public_id!r}")
        return key

    def note_use(self, key_id: str) -> None:
        """Key ``key_id`` was used now (by its key or one of its sign-in sessions)."""
        self._usage.note(key_id)
