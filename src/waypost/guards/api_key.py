"""The ``api_key`` guard: access keys of the rule store, for the site's own paths.

A key is made with ``waypost keys create --audience partners`` and reads ``wp_<id>_<secret>``
(see :mod:`waypost.store.keys`). A client presents it as ``Authorization: Bearer <key>``, or as
the pair ``X-API-Key: <id>`` (with or without ``wp_``) and ``X-Secret-Token: <secret>`` (the
form of the hand-written decorators this replaces), or the whole key in ``X-API-Key``. A key in
the query string is refused with a message saying where to put it: a URL ends up in access
logs, browser history and ``Referer`` headers.

The check is sans-io. The keys are held in memory by a :class:`KeyRing` that whoever reads the
store fills and replaces whole (:class:`waypost.store.keyring.StoreKeyRing` does it from a
background thread; a revoked key is gone from the ring at the next refresh, within seconds, in
every worker and instance). Only the SHA-256 of a secret is held, compared with
:func:`hmac.compare_digest`; an unknown id is checked against a dummy hash, so it gets the same
answer in about the same time as a wrong secret. A key that passed is remembered by its exact
text until the ring changes (a refresh that revokes it) or the key expires, whichever is first,
so a repeated request costs a dict lookup. Last use is noted in memory and written by the
ring's owner in batches, never on the request path.

What fails: no key, an unknown key or a wrong secret, an expired key: 401 with a ``Bearer``
challenge (RFC 6750). A wrong secret or an unknown id counts as a failure of the client (429
after ``max_failures`` in ``window`` seconds). A good key of another audience, or bound to
another host: 403 (known, not allowed: never a login loop).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from waypost.guards._limit import MAX_FAILURES, WINDOW_SECONDS, FailureWindow
from waypost.guards.base import Allowed, Denied, Outcome
from waypost.rules.request import Request

__all__ = ["KEY_FORMAT", "KEY_ID_HEADER", "AccessKey", "ApiKeyGuard", "KeyRing", "secret_hash"]

#: The request header the app or upstream gets the key's id in (a client's own is removed).
KEY_ID_HEADER = "X-Waypost-Key-Id"
_CACHE_SIZE = 4096
#: What a whole key looks like: ``wp_<id>_<secret>`` (the id and the secret captured).
KEY_FORMAT = re.compile(r"wp_([a-z0-9]{1,64})_([A-Za-z0-9_-]{16,256})\Z")
_ID = re.compile(r"(?:wp_)?([a-z0-9]{1,64})\Z")
# Query parameters clients put keys in; any value shaped like a Waypost key is refused too.
_QUERY_NAMES = frozenset(
    {"api_key", "apikey", "api-key", "key", "access_token", "token", "x-api-key", "secret"}
)
_WHERE = (
    "send the key in the 'Authorization: Bearer <key>' header, or as 'X-API-Key: <id>' with "
    "'X-Secret-Token: <secret>'; never in the URL, where logs and Referer headers keep it"
)
_DUMMY = hashlib.sha256(b"waypost: no such key").hexdigest()


def secret_hash(secret: str) -> str:
    """The stored form of a key's secret: its SHA-256 in hex (as the store writes it)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key as a guard checks it: never its secret, only ``secret_hash``.

    ``audiences`` are the guards' audiences it opens; ``host`` the one host it is valid for
    (None: any; lower case, no port); ``expires_at`` a Unix time (None: never).
    """

    id: str
    secret_hash: str
    audiences: frozenset[str]
    host: str | None = None
    expires_at: float | None = None


class KeyRing:
    """The access keys guards check, in memory; replaced whole by :meth:`replace`.

    ``generation`` changes with every replacement: a guard's remembered checks are trusted only
    for the generation they were made in. :meth:`note_use` records last use in memory; the
    owner takes the batch with :meth:`take_uses` and writes it. Safe to share between threads:
    a replacement swaps one reference.
    """

    def __init__(self, keys: Iterable[AccessKey] = ()) -> None:
        self._keys: dict[str, AccessKey] = {key.id: key for key in keys}
        self.generation = 0
        #: The last uses noted since the previous :meth:`take_uses`, by key id (Unix times):
        #: :meth:`note_use` writes here, and so does the compiled road (see ``memory()`` of
        #: :class:`ApiKeyGuard`). Replaced whole by take_uses(), never changed otherwise.
        self.uses: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<KeyRing {len(self._keys)} keys, generation {self.generation}>"

    def __len__(self) -> int:
        return len(self._keys)

    def replace(self, keys: Iterable[AccessKey]) -> None:
        """Hold exactly ``keys`` from now on (a key left out is revoked for every guard)."""
        self._keys = {key.id: key for key in keys}
        self.generation += 1

    def get(self, key_id: str) -> AccessKey | None:
        """The key ``key_id``, None when there is none (unknown, or revoked)."""
        return self._keys.get(key_id)

    def missed(self) -> None:
        """An unknown key id was presented; a ring that reads a store looks at it soon (see
        :class:`~waypost.store.keyring.StoreKeyRing`). No I/O here."""

    def note_use(self, key_id: str) -> None:
        """Key ``key_id`` opened a guarded path now (one dict write; no I/O)."""
        self.uses[key_id] = time.time()

    def take_uses(self) -> dict[str, float]:
        """The last uses noted since the previous call, by key id (Unix times)."""
        used, self.uses = self.uses, {}
        return used


#: The headers a key may come in (lower case), in the order _presented() reads them.
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-secret-token")


def _presented(sent: tuple[str | None, ...]) -> tuple[str, str, str] | str | None:
    """``(whole key or '', id, secret)`` from the :data:`CREDENTIAL_HEADERS` as sent, a message
    when they hold something that is not a key, None when they hold none."""
    authorization, key_id, secret = sent
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            found = KEY_FORMAT.match(token.strip())
            if found is None:
                return "the Bearer token is not a Waypost key ('wp_<id>_<secret>')"
            return found[0], found[1], found[2]
    if key_id is None:
        return None
    key_id = key_id.strip()
    if secret is None:
        found = KEY_FORMAT.match(key_id)
        if found is None:
            return "X-API-Key holds no whole key and X-Secret-Token is missing"
        return found[0], found[1], found[2]
    id_match = _ID.match(key_id)
    if id_match is None:
        return "X-API-Key is not a key id"
    return "", id_match[1], secret.strip()


def _in_query(request: Request) -> bool:
    """True when the query string carries something like a key (a parameter named like one,
    or a value shaped like a Waypost key)."""
    if not request.query_string:
        return False
    for name, values in request.query.items():
        if name.lower() in _QUERY_NAMES and any(values):
            return True
        if any(KEY_FORMAT.match(value.strip()) for value in values):
            return True
    return False


class ApiKeyGuard:
    """Access keys of ``ring`` given the guard's ``audience``."""

    kind = "api_key"
    #: The request headers a key comes in besides Authorization (for Vary).
    vary = ("X-API-Key", "X-Secret-Token")

    def __init__(
        self,
        name: str,
        audience: str,
        ring: KeyRing,
        login_url: str | None = None,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.name = name
        self.audience = audience
        self.ring = ring
        self.login_url = login_url
        self.failures = FailureWindow(max_failures, window)
        self._challenge = f'Bearer realm="{name}"'
        self._invalid = f'Bearer realm="{name}", error="invalid_token"'
        #: The credentials as sent (Authorization, or X-API-Key and X-Secret-Token) -> the key,
        #: the ring generation it was checked in, what a request with them gets, and whether
        #: that is all (a key of the guard's audience, bound to no host, that never expires).
        self._passed: dict[tuple[str | None, ...], tuple[AccessKey, int, Allowed, bool]] = {}

    def __repr__(self) -> str:
        return f"ApiKeyGuard({self.name!r}, audience={self.audience!r})"

    def memory(self) -> tuple[str, dict[tuple[str | None, ...], Any], KeyRing, bool]:
        """What the compiled road reads to let a request through that passed before (see
        ``waypost/_gate.c``): the checks remembered by the credential headers as sent, as
        ``(key, ring generation, Allowed, nothing else to check)`` (the dict is cleared, never
        replaced); the ring, whose generation they hold and which notes each use; and whether
        a use is noted by writing the ring's ``uses`` (its own note_use(), not a subclass's)."""
        direct = type(self.ring).note_use is KeyRing.note_use
        return ("api_key", self._passed, self.ring, direct)

    def check(self, request: Request) -> Outcome:
        """Allowed with the key's id as the user, 401, 403, or 429."""
        # Every header a key may come in, exactly as sent: what a remembered check is found by
        # (the same headers always get the same verdict, so nothing is parsed again for them;
        # all three, so that a Basic header sent for another guard keys nothing alone).
        found = request.headers_named(CREDENTIAL_HEADERS)
        sent = (found.get("authorization"), found.get("x-api-key"), found.get("x-secret-token"))
        ring = self.ring
        remembered = self._passed.get(sent)
        if remembered is not None and remembered[1] == ring.generation:
            key, allowed = remembered[0], remembered[2]
            if remembered[3]:  # nothing left to check for this request
                ring.note_use(key.id)
                return allowed
        else:
            presented = _presented(sent)
            if presented is None:
                if _in_query(request):
                    return Denied(401, "a key in the query string", self._invalid, message=_WHERE)
                return Denied(401, "no API key", self._challenge)
            if isinstance(presented, str):
                return Denied(401, presented, self._invalid, message=_WHERE)
            _, key_id, secret = presented
            client = request.client_ip
            wait = self.failures.retry_after(client)
            if wait is not None:
                return Denied(429, "too many wrong keys from this client", None, wait)
            key_or_none = ring.get(key_id)
            # The same work for an unknown id as for a wrong secret (no timing oracle).
            stored = _DUMMY if key_or_none is None else key_or_none.secret_hash
            if not hmac.compare_digest(stored, secret_hash(secret)) or key_or_none is None:
                if key_or_none is None:
                    ring.missed()  # made a moment ago elsewhere? the ring looks soon
                self.failures.failed(client)
                return Denied(401, "unknown, revoked or wrong key", self._invalid)
            key = key_or_none
            allowed = Allowed(
                key.id,
                {"user": key.id, "key_id": key.id, "audience": self.audience},
                f"key {key.id!r} (audience {self.audience!r})",
                headers=((KEY_ID_HEADER, key.id),),
            )
            if len(self._passed) >= _CACHE_SIZE:
                self._passed.clear()  # bounded: many distinct keys cost a hash again
            plain = key.expires_at is None and key.host is None and self.audience in key.audiences
            self._passed[sent] = (key, ring.generation, allowed, plain)
        if key.expires_at is not None and key.expires_at <= time.time():
            return Denied(401, f"key {key.id!r} expired", self._invalid)
        if self.audience not in key.audiences:
            return Denied(403, f"key {key.id!r} is not given the audience {self.audience!r}")
        if key.host is not None and request.host.rstrip(".") != key.host:
            return Denied(403, f"key {key.id!r} is only valid for the host {key.host!r}")
        ring.note_use(key.id)
        return allowed
