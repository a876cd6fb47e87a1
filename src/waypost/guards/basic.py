"""The ``basic`` guard: HTTP Basic authentication against an htpasswd file of bcrypt hashes.

The file is what ``htpasswd -B`` writes (``user:$2y$...``, one a line); other hash kinds (MD5
``$apr1$``, ``{SHA}``, crypt) are refused when the file is read, since they are weak. Passwords
are checked with the ``bcrypt`` library. An unknown user is checked against a dummy hash of the
same cost, so that it takes about as long as a wrong password (no user enumeration by timing),
and both get the same answer.

A bcrypt check costs milliseconds by design, and a browser sends the same credentials with every
request, so a success is remembered for ``CACHE_SECONDS``: by an HMAC of the credentials as sent
(the base64 text, which is all they decode from) under a key made for this guard, never the
password itself; a request with them gets the very same answer, without decoding them again.
A reload builds a new guard with an empty cache, so a user removed from the file is refused
from the reload on; until then, for at most ``CACHE_SECONDS``, by the cache running out.

A wrong password (or an unknown user) is a failure of the client that sent it
(``Request.client_ip``); after ``max_failures`` of them within ``window`` seconds the client is
answered 429 with ``Retry-After`` without a bcrypt check (see :mod:`._limit`), until the oldest
leaves the window. Credentials remembered as good still pass; a request without credentials is
not a failure.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import time
from collections.abc import Mapping
from pathlib import Path

import bcrypt

from waypost.guards._limit import MAX_FAILURES, WINDOW_SECONDS, FailureWindow
from waypost.guards.base import AUTHORIZATION, Allowed, Denied, Outcome
from waypost.rules.request import Request

__all__ = ["CACHE_SECONDS", "BasicGuard", "read_htpasswd"]

_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
#: How long a successful check is remembered.
CACHE_SECONDS = 60.0
_CACHE_SIZE = 4096


def read_htpasswd(path: str | Path) -> dict[str, bytes]:
    """The users and bcrypt hashes of an htpasswd file; ValueError (naming the line) for a line
    that is not ``user:bcrypt-hash``, OSError when the file cannot be read."""
    users: dict[str, bytes] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise ValueError(f"line {number} is not 'user:hash'")
        if not hashed.startswith(_BCRYPT_PREFIXES):
            raise ValueError(
                f"line {number} (user {user!r}) is not a bcrypt hash; "
                "write the file with 'htpasswd -B' (MD5, SHA and crypt hashes are refused)"
            )
        users[user] = hashed.encode("ascii")
    return users


class BasicGuard:
    """HTTP Basic against bcrypt hashes; ``users`` maps a user name to its hash."""

    kind = "basic"

    def __init__(
        self,
        name: str,
        users: Mapping[str, bytes],
        realm: str,
        login_url: str | None = None,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.name = name
        self.failures = FailureWindow(max_failures, window)
        self.realm = realm
        self.login_url = login_url
        self._users = dict(users)
        self._challenge = f'Basic realm="{realm}", charset="UTF-8"'
        # An unknown user costs a bcrypt check too, of the cost the file's hashes use.
        cost = 12
        for hashed in self._users.values():
            try:
                cost = int(hashed.split(b"$")[2])
            except (IndexError, ValueError):
                continue
            break
        self._dummy = bcrypt.hashpw(b"waypost: no such user", bcrypt.gensalt(max(4, cost)))
        self._cache_key = os.urandom(32)
        #: HMAC of the credentials -> (what a request with them gets, monotonic time the entry
        #: runs out).
        self._passed: dict[bytes, tuple[Allowed, float]] = {}

    def __repr__(self) -> str:
        return f"BasicGuard({self.name!r}, <{len(self._users)} users>, realm={self.realm!r})"

    def check(self, request: Request) -> Outcome:
        """Allowed with the user name, or 401 with a ``Basic`` challenge."""
        authorization = request.headers_named(AUTHORIZATION).get("authorization", "")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return Denied(401, "no Basic credentials", self._challenge)
        token = token.strip()
        if not token.isascii():  # base64 is ASCII (b64decode() would raise ValueError)
            return Denied(401, "malformed Basic credentials", self._challenge)
        # One-shot HMAC (C): a remembered success costs no decoding and no new Allowed.
        digest = hmac.digest(self._cache_key, token.encode("ascii"), "sha256")
        now = time.monotonic()
        remembered = self._passed.get(digest)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Denied(401, "malformed Basic credentials", self._challenge)
        user, sep, password = decoded.partition(":")
        if not sep:
            return Denied(401, "malformed Basic credentials", self._challenge)
        client = request.client_ip
        wait = self.failures.retry_after(client)
        if wait is not None:
            return Denied(429, "too many wrong credentials from this client", None, wait)
        hashed = self._users.get(user)
        # bcrypt reads at most 72 bytes; bcrypt 5 refuses longer ones: cut as htpasswd does.
        secret = password.encode("utf-8")[:72]
        if hashed is None:
            bcrypt.checkpw(secret, self._dummy)  # the same work as a wrong password
            self.failures.failed(client)
            return Denied(401, "unknown user or wrong password", self._challenge)
        if not bcrypt.checkpw(secret, hashed):
            self.failures.failed(client)
            return Denied(401, "unknown user or wrong password", self._challenge)
        if len(self._passed) >= _CACHE_SIZE:
            self._passed.clear()  # bounded: many distinct credentials cost a bcrypt check again
        self._passed[digest] = (
            Allowed(user, {"user": user}, f"user {user!r} (checked less than a minute ago)"),
            now + CACHE_SECONDS,
        )
        return Allowed(user, {"user": user}, f"user {user!r}")
