"""The ``jwt`` guard: a JSON Web Token in ``Authorization: Bearer``, verified with PyJWT.

The token is read from ``Authorization: Bearer <token>`` (RFC 6750 2.1) or, when the guard names
a ``cookie`` and there is no bearer token, from that cookie; never from the query string (URLs
end up in logs and ``Referer``). It is verified by PyJWT against one of three key sources:

- a JWKS URL (an identity provider's ``/.well-known/jwks.json``), read with PyJWT's
  ``PyJWKClient``: the keys are fetched when the guard is built (at load: a failure is a load
  error) and fetched again by a daemon thread, every ``jwks_refresh`` seconds and soon after a
  token names a key id (``kid``) the guard does not know (a key rotation), at most once per
  :data:`UNKNOWN_KID_SECONDS`. The request path never waits on the network: a token with an
  unknown ``kid`` is refused at once and passes once the thread has the new keys. When a fetch
  fails, the keys fetched before are kept and a warning is logged (logger ``waypost.guards``).
- a public key (a PEM file);
- a shared secret (HS256/384/512) from an environment variable.

Only the algorithms of the key source are accepted (``none`` never is, nor an HMAC algorithm
with a public key: that is the algorithm confusion attack), and PyJWT requires ``exp`` (and
``iss``/``aud`` when the guard names them) and checks them with ``leeway`` seconds of clock
skew. A token that verifies passes when its ``claims`` hold one of the allowed values; a
valid token without them is a 403 (authenticated, not allowed: a 401 would send the browser to
log in again, in a loop). Every 401 carries an RFC 6750 challenge, ``Bearer realm="..."``, with
``error="invalid_token"`` when a token was sent.

Verifying a signature costs tens of microseconds, and a client sends the same token with every
request, so a token that passed is remembered by its exact text (as the ``session`` guard does a
cookie) for at most :data:`CACHE_SECONDS`, and never past its ``exp``. A failure is never
remembered. A bad signature, a malformed token or a refused algorithm (forgeries) are failures
of the client for the 429 of :mod:`._limit`; an expired token, another issuer or audience, an
unknown ``kid`` are not. A reason never holds the token.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from waypost.guards._limit import MAX_FAILURES, WINDOW_SECONDS, FailureWindow
from waypost.guards.base import AUTHORIZATION, Allowed, Denied, Outcome
from waypost.rules.request import Request

__all__ = [
    "CACHE_SECONDS",
    "REFRESH_SECONDS",
    "UNKNOWN_KID_SECONDS",
    "JwksKeys",
    "JwtGuard",
    "StaticKey",
    "fitting_algorithms",
    "read_public_key",
]

logger = logging.getLogger("waypost.guards")

#: How long a verified token is remembered (never past its ``exp``).
CACHE_SECONDS = 60.0
_CACHE_SIZE = 4096
#: How often the keys of a JWKS URL are fetched again, by default (``jwks_refresh``).
REFRESH_SECONDS = 300
#: The soonest a token with an unknown ``kid`` has the keys fetched again after the last fetch:
#: anyone can send such a token, and must not make the guard hammer the identity provider.
UNKNOWN_KID_SECONDS = 30.0
#: Seconds a fetch of the JWKS may take.
FETCH_TIMEOUT = 10.0


class KeySource(Protocol):
    """Where a guard finds the key that verifies a token."""

    def find(self, kid: str | None) -> Any | None:
        """The key for a token naming ``kid`` (None when it names none), or None when there is
        no such key. Never does I/O."""

    def describe(self) -> str:
        """What the source is, for ``repr`` (never a secret)."""


class StaticKey:
    """One key given at load: a public key from a file, or a shared secret."""

    def __init__(self, key: Any, description: str) -> None:
        self._key = key
        self._description = description

    def __repr__(self) -> str:
        return f"StaticKey({self._description})"

    def find(self, kid: str | None) -> Any | None:
        return self._key

    def describe(self) -> str:
        return self._description


def read_public_key(path: str | Path) -> Any:
    """The public key of a PEM file; OSError when it cannot be read, ValueError when it holds
    no public key (a private key is refused: the guard only verifies)."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        raise ValueError("it holds a private key; give the public key only (openssl pkey -pubout)")
    try:
        return load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"it holds no PEM public key ({exc})") from None


def fitting_algorithms(key: Any, algorithms: Sequence[str]) -> tuple[str, ...]:
    """Those of ``algorithms`` that can verify with ``key`` (an RSA key cannot check ES256)."""
    fitting: list[str] = []
    for name in algorithms:
        try:
            jwt.get_algorithm_by_name(name).prepare_key(key)
        except (jwt.InvalidKeyError, NotImplementedError, TypeError, ValueError):
            continue
        fitting.append(name)
    return tuple(fitting)


# Every JwksKeys alive in this process, to restart their threads in a forked child (a thread
# does not survive a fork; a server that loads the rules and then forks workers needs them).
_FOLLOWED: weakref.WeakSet[JwksKeys] = weakref.WeakSet()


def _stop(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()  # the thread may be waiting on `wake`


def _follow(ref: weakref.ref[JwksKeys], stop: threading.Event, wake: threading.Event) -> None:
    """The thread of one JwksKeys: fetch the keys every ``refresh`` seconds, or soon after
    ``wake`` is set. It holds the JwksKeys only weakly while waiting, so a guard that is no
    longer used (a reload built another) is collected, and its finalizer ends the thread."""
    while not stop.is_set():
        keys = ref()
        if keys is None:
            return
        timeout = max(0.0, keys.refresh - (time.monotonic() - keys.fetched))
        del keys
        woken = wake.wait(timeout)
        if stop.is_set():
            return
        keys = ref()
        if keys is None:
            return
        if woken:
            # Not sooner than UNKNOWN_KID_SECONDS after the last fetch, nor later than the
            # regular one.
            soonest = keys.fetched + min(UNKNOWN_KID_SECONDS, keys.refresh) - time.monotonic()
            if soonest > 0:
                del keys
                if stop.wait(soonest):
                    return
                keys = ref()
                if keys is None:
                    return
            # Cleared before the fetch: a token seen during it asks for another one later.
            wake.clear()
        keys.fetch()
        del keys


class JwksKeys:
    """The keys of a JWKS URL, by ``kid``, fetched at once and kept fresh by a daemon thread.

    The first fetch happens in the constructor and raises what PyJWT raises
    (``jwt.PyJWTError``, ``ValueError`` for a body that is not JSON); later ones only log.
    """

    def __init__(
        self, url: str, refresh: float = REFRESH_SECONDS, *, timeout: float = FETCH_TIMEOUT
    ) -> None:
        self.url = url
        self.refresh = refresh
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        #: (the keys by kid, the keys without one): swapped as one reference by the thread.
        self._keys: tuple[dict[str, jwt.PyJWK], tuple[jwt.PyJWK, ...]] = ({}, ())
        self._install(self._client.get_jwk_set(refresh=True))
        self.fetched = time.monotonic()
        self._start()
        _FOLLOWED.add(self)

    def __repr__(self) -> str:
        return f"JwksKeys({self.url!r}, refresh={self.refresh})"

    def _start(self) -> None:
        self._wake = threading.Event()
        stop = threading.Event()
        self._thread = threading.Thread(
            target=_follow,
            args=(weakref.ref(self), stop, self._wake),
            name=f"waypost-jwks-{self.url}",
            daemon=True,  # never keeps the process alive
        )
        self._finalizer = weakref.finalize(self, _stop, stop, self._wake)
        self._thread.start()

    def close(self) -> None:
        """Stop fetching the keys (also done when the object is collected)."""
        self._finalizer()

    def __len__(self) -> int:
        by_kid, unnamed = self._keys
        return len(by_kid) + len(unnamed)

    def _install(self, jwk_set: jwt.PyJWKSet) -> None:
        by_kid = {k.key_id: k for k in jwk_set.keys if k.key_id is not None}
        unnamed = tuple(k for k in jwk_set.keys if k.key_id is None)
        self._keys = (by_kid, unnamed)

    def fetch(self) -> None:
        """Fetch the keys again; on failure keep the old ones and log a warning."""
        try:
            self._install(self._client.get_jwk_set(refresh=True))
        except Exception as exc:  # the thread must go on whatever the provider answers
            logger.warning(
                "waypost: cannot fetch the JWKS from %s: %s; keeping the %d keys fetched before",
                self.url,
                exc,
                len(self),
            )
        finally:
            self.fetched = time.monotonic()

    def find(self, kid: str | None) -> jwt.PyJWK | None:
        by_kid, unnamed = self._keys
        if kid is None:
            # A token without a kid is verified only when there is no choice to make.
            every = (*by_kid.values(), *unnamed)
            return every[0] if len(every) == 1 else None
        key = by_kid.get(kid)
        if key is None:
            # A rotated key, perhaps: the thread fetches the keys (soon, not now).
            self._wake.set()
        return key

    def describe(self) -> str:
        return f"jwks_url={self.url!r}"


def _after_fork_in_child() -> None:
    for keys in list(_FOLLOWED):
        keys._start()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _allowed(value: Any, allowed: Sequence[Any]) -> bool:
    """Whether a claim's value is one of ``allowed``; a list claim when any element is. True
    is not 1 here (Python says it is)."""
    values = value if isinstance(value, list) else [value]
    return any(
        isinstance(v, bool) == isinstance(a, bool) and v == a
        for v in values
        if v is not None
        for a in allowed
    )


class JwtGuard:
    """A JWT in ``Authorization: Bearer`` (or ``cookie``) verified with a key of ``keys``."""

    kind = "jwt"

    def __init__(
        self,
        name: str,
        keys: KeySource,
        algorithms: Sequence[str],
        *,
        issuer: str | None = None,
        audience: str | None = None,
        claims: Mapping[str, Sequence[Any]] | None = None,
        leeway: float = 30,
        user_claim: str = "sub",
        cookie: str | None = None,
        realm: str | None = None,
        login_url: str | None = None,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
    ) -> None:
        if not algorithms or "none" in algorithms:
            raise ValueError(f"algorithms must name signing algorithms, got {list(algorithms)!r}")
        self.name = name
        self.keys = keys
        self.algorithms = list(algorithms)
        self.issuer = issuer
        self.audience = audience
        self.claims = {k: tuple(v) for k, v in (claims or {}).items()}
        self.leeway = leeway
        self.user_claim = user_claim
        self.cookie = cookie
        self.realm = realm or name
        self.login_url = login_url
        self.failures = FailureWindow(max_failures, window)
        # RFC 6750 3.1: no error code when the request had no token; invalid_token when it did.
        self._challenge = f'Bearer realm="{self.realm}"'
        self._invalid = f'Bearer realm="{self.realm}", error="invalid_token"'
        required = ["exp", user_claim]
        if issuer is not None:
            required.append("iss")
        if audience is not None:
            required.append("aud")
        # A weak key (RSA under 2048 bits, a short HMAC secret) is an error, not a warning.
        self._options: Any = {"require": required, "enforce_minimum_key_length": True}
        #: token text -> (what a request with it gets, wall-clock time the entry runs out).
        self._passed: dict[str, tuple[Allowed, float]] = {}

    def __repr__(self) -> str:
        return f"JwtGuard({self.name!r}, {self.keys.describe()}, algorithms={self.algorithms!r})"

    def memory(self) -> tuple[str, dict[str, tuple[Allowed, float]], None, bool]:
        """What the compiled road reads to let a request through that passed before (see
        ``waypost/_gate.c``): the passes remembered by bearer token, as ``(Allowed, expires)``.
        The dict is cleared, never replaced."""
        return ("bearer", self._passed, None, False)

    def _token(self, request: Request) -> str | None:
        authorization = request.headers_named(AUTHORIZATION).get("authorization", "")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if self.cookie is not None:
            return request.cookie(self.cookie) or None
        return None

    def check(self, request: Request) -> Outcome:
        """Allowed with the token's ``user_claim``, 401 with a Bearer challenge, or 403."""
        token = self._token(request)
        if token is None:
            return Denied(401, "no bearer token", self._challenge)
        now = time.time()
        remembered = self._passed.get(token)
        if remembered is not None:
            if remembered[1] > now:
                return remembered[0]
            self._passed.pop(token, None)
        client = request.client_ip
        wait = self.failures.retry_after(client)
        if wait is not None:
            return Denied(429, "too many forged tokens from this client", None, wait)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            self.failures.failed(client)
            return Denied(401, "bearer token rejected: malformed", self._invalid)
        kid = header.get("kid")
        key = self.keys.find(kid)
        if key is None:
            # Say which key (a kid is no secret), shortened: it is the client's text.
            named = f"kid {kid[:64]!r}" if kid is not None else "no kid"
            return Denied(401, f"bearer token rejected: no key for it ({named})", self._invalid)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                options=self._options,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError:
            # A genuine token, only old: not a failure of the client.
            return Denied(401, "bearer token rejected: expired", self._invalid)
        except jwt.InvalidAlgorithmError:
            # alg 'none', HS256 against a public key, ...: a forgery.
            self.failures.failed(client)
            alg = str(header.get("alg"))[:16]
            return Denied(
                401, f"bearer token rejected: algorithm {alg!r} not allowed", self._invalid
            )
        except (jwt.InvalidSignatureError, jwt.DecodeError):
            # InvalidSignatureError is a DecodeError: a forged, tampered or mangled token.
            self.failures.failed(client)
            return Denied(401, "bearer token rejected: bad signature", self._invalid)
        except jwt.InvalidIssuerError:
            return Denied(401, "bearer token rejected: wrong issuer", self._invalid)
        except jwt.InvalidAudienceError:
            if self.audience is None:
                # RFC 7519 4.1.3: a token meant for an audience is refused by a reader that
                # does not name itself one of them.
                return Denied(
                    401,
                    "bearer token rejected: it has an 'aud' claim and the guard names no "
                    "'audience'",
                    self._invalid,
                )
            return Denied(401, "bearer token rejected: wrong audience", self._invalid)
        except jwt.MissingRequiredClaimError as exc:
            return Denied(401, f"bearer token rejected: no {exc.claim!r} claim", self._invalid)
        except jwt.ImmatureSignatureError:
            return Denied(401, "bearer token rejected: not valid yet", self._invalid)
        except jwt.PyJWTError as exc:
            # What PyJWT says about its own checks (an iat that is not a number, a weak key);
            # its messages name claims and headers, never the token.
            return Denied(401, f"bearer token rejected: {exc}", self._invalid)
        user_value = payload[self.user_claim]
        if isinstance(user_value, bool) or not isinstance(user_value, str | int):
            return Denied(
                401, f"bearer token rejected: {self.user_claim!r} is not a name", self._invalid
            )
        user = str(user_value)
        for claim, allowed in self.claims.items():
            if not _allowed(payload.get(claim), allowed):
                # Authenticated, not allowed: 403 (a 401 would loop through the login page).
                return Denied(403, f"user {user!r}: claim {claim!r} is none of {list(allowed)!r}")
        identity = {"user": user, "claims": payload}
        # PyJWT required a numeric exp; the entry never outlives it (whatever the leeway).
        expires = min(now + CACHE_SECONDS, float(payload["exp"]))
        if expires > now:
            if len(self._passed) >= _CACHE_SIZE:
                self._passed.clear()  # bounded: many distinct tokens cost a full check again
            self._passed[token] = (Allowed(user, identity, f"user {user!r} (cached)"), expires)
        return Allowed(user, identity, f"user {user!r}")
