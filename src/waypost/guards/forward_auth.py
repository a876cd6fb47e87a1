"""The ``forward_auth`` guard: an auth service decides, as with Traefik's ForwardAuth, Caddy's
``forward_auth`` and nginx's ``auth_request``.

The auth service (oauth2-proxy, Authelia, authentik, an app's own endpoint) gets a ``GET`` to its
``url`` with the client's headers (its Cookie and Authorization among them; no body) and, as
Traefik and Caddy send them, ``X-Forwarded-Method``, ``-Proto``, ``-Host``, ``-Uri`` and
``-For`` (and nginx's ``X-Original-URI`` / ``X-Original-Method``). Those are Waypost's own: a
client's ``X-Forwarded-*``, ``X-Original-*``, ``X-Real-IP`` and ``Forwarded`` are removed first,
as are its conditional headers (an ``If-None-Match`` could get a 304, which is no answer). A 2xx
lets the request through: the ``copy_headers`` of the answer go on to the app or upstream (a
client's own copies of them are removed before, see
:attr:`ForwardAuthGuard.identity_names`), and the user is the value of ``user_header`` (the
first copied header unless named). Anything else is the service's answer to the client: its
status, body and the headers of :data:`PASSED_HEADERS` (Location, Set-Cookie, WWW-Authenticate,
...), as Traefik and Caddy return it. An answer that cannot be trusted whole (a copied value with
a control character, a missing ``user_header``, a body over :data:`BODY_LIMIT`, a status that is
no answer) is a 502: nothing incomplete reaches the app.

The guard stays sans-io: :meth:`ForwardAuthGuard.check` answers :class:`~.base.Ask` (what to
ask), the adapter (the standalone server, the ASGI or WSGI middleware) makes the request, and
:meth:`ForwardAuthGuard.answered` reads the answer (see ``Engine.resolve_authorized``). A
service that cannot be reached, or does not answer within ``timeout``, fails closed: the
adapter answers 502 or 504 and the request goes nowhere.

With ``cache`` (seconds, 0 by default), a 2xx is remembered by the exact credentials sent
(Cookie and Authorization together; a request with neither is never remembered), so a browser's
next requests within that time are not asked again. The answer is then reused for any path the
guard protects: leave ``cache`` at 0 when the service decides per path. A failure is never
remembered.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from waypost.guards.base import Allowed, Ask
from waypost.rules.request import HOP_BY_HOP, Request

__all__ = [
    "BODY_LIMIT",
    "PASSED_HEADERS",
    "ForwardAuthGuard",
    "ServiceAnswer",
    "service_failure",
]

#: The largest body of an auth service's answer passed to a client (a login page, a JSON error).
BODY_LIMIT = 64 * 1024
#: The headers of an auth service's refusal that reach the client (others could set up state the
#: service did not mean for this site: CORS, HSTS, a Content-Encoding of a body not passed as is).
PASSED_HEADERS = frozenset(
    {"location", "www-authenticate", "set-cookie", "content-type", "cache-control", "retry-after"}
)
_CACHE_SIZE = 4096
# Not sent to the auth service: no body goes (its framing neither), Host is the service's own,
# its body comes back as it is read (never compressed: the client gets it without the encoding),
# a conditional or range request could get a 304 or a 206 instead of a decision, and the
# forwarding headers are Waypost's to set (a client's would tell the service another URL).
_NOT_SENT = HOP_BY_HOP | frozenset(
    {
        "host",
        "accept-encoding",
        "content-length",
        "content-type",
        "expect",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "range",
        "forwarded",
        "x-real-ip",
    }
)
_WAYPOST_HEADERS = frozenset({"x-waypost-user", "x-waypost-guard", "x-waypost-key-id"})


def _unsafe(value: str) -> bool:
    """True when ``value`` could split a header (CR, LF, NUL) or holds another control."""
    return any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in value)


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """The auth service said no (or its answer could not be trusted): what the client gets.
    ``reason`` is for ``waypost explain`` and logs (never a header value)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: str
    reason: str


def service_failure(status: int, reason: str) -> ServiceAnswer:
    """The 502 (or 504) of an auth service that failed: the request goes nowhere."""
    text = (
        "The authentication service did not answer in time."
        if status == 504
        else "The authentication service failed."
    )
    headers = (("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"))
    return ServiceAnswer(status, headers, f"{status} {text}\n", reason)


class ForwardAuthGuard:
    """Asks the auth service at ``url``; a 2xx passes, with ``copy_headers`` sent on."""

    kind = "forward_auth"
    #: What the service's answer depends on, for a Vary (see GuardLayer.vary).
    vary = ("Cookie", "Authorization")

    def __init__(
        self,
        name: str,
        url: str,
        copy_headers: Sequence[str] = (),
        *,
        timeout: float = 5.0,
        cache: float = 0.0,
        user_header: str | None = None,
        login_url: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.copy_headers = tuple(copy_headers)
        self.timeout = timeout
        self.cache = cache
        self.user_header = user_header
        self.login_url = login_url
        #: The request headers this guard sets on the way to the app (lower case): a client's
        #: own copies of them are removed.
        self.identity_names = frozenset(
            n.lower() for n in (*self.copy_headers, *((user_header,) if user_header else ()))
        )
        self._removed = _NOT_SENT | _WAYPOST_HEADERS | self.identity_names
        #: (Cookie, Authorization) -> (what a request with them gets, monotonic expiry).
        self._passed: dict[tuple[str, str], tuple[Allowed, float]] = {}

    def __repr__(self) -> str:
        return (
            f"ForwardAuthGuard({self.name!r}, {self.url!r}, "
            f"copy_headers={list(self.copy_headers)!r}, "
            f"timeout={self.timeout!r}, cache={self.cache!r})"
        )

    @staticmethod
    def _credentials(request: Request) -> tuple[str, str]:
        headers = request.headers
        return headers.get("cookie", ""), headers.get("authorization", "")

    def check(self, request: Request) -> Allowed | Ask:
        """A remembered pass (see ``cache``), else what to ask the auth service."""
        if self.cache:
            credentials = self._credentials(request)
            remembered = self._passed.get(credentials)
            if remembered is not None:
                if remembered[1] > time.monotonic():
                    return remembered[0]
                self._passed.pop(credentials, None)
        return Ask(
            self.url,
            self.headers_for(request),
            self.timeout,
            f"GET {self.url}: a 2xx lets the request through, anything else is its answer",
        )

    def headers_for(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The headers the auth service gets for ``request``: the client's (less those in
        ``_NOT_SENT``, its forwarding headers and the identity headers), then the forwarding
        headers Traefik, Caddy and nginx set, from what this server knows."""
        raw = request.raw_headers
        pairs: Iterable[tuple[str, str]] = (
            raw.items() if hasattr(raw, "items") else (raw or ())  # type: ignore[union-attr]
        )
        removed = self._removed
        out: list[tuple[str, str]] = []
        host = ""
        for name, value in pairs:
            key = name.lower()
            if key == "host":
                host = value
            # '_' too: a WSGI environ has one key for X-Auth-Request-User and X_Auth_Request_User.
            normal = key.replace("_", "-")
            if (
                normal in removed
                or normal.startswith(("x-forwarded-", "x-original-"))
                or _unsafe(value)
            ):
                continue
            out.append((name, value))
        host = host or request.host
        uri = request.raw_path + (f"?{request.query_string}" if request.query_string else "")
        out += [
            ("X-Forwarded-Method", request.method),
            ("X-Forwarded-Proto", request.scheme),
            ("X-Forwarded-Host", host),
            ("X-Forwarded-Uri", uri),
            ("X-Original-Method", request.method),
            ("X-Original-URI", uri),
        ]
        if request.client_ip:
            out += [("X-Forwarded-For", request.client_ip), ("X-Real-IP", request.client_ip)]
        return tuple((k, v) for k, v in out if not _unsafe(v))

    def answered(
        self,
        request: Request,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
    ) -> Allowed | ServiceAnswer:
        """The outcome of the auth service's answer to what :meth:`check` asked for
        ``request``: Allowed (a 2xx), else what the client gets."""
        headers = list(headers)
        if 200 <= status < 300:
            return self._passed_with(request, status, headers)
        if not (300 <= status < 600) or status == 304:
            return service_failure(502, f"the auth service answered {status}, which is no answer")
        if len(body) > BODY_LIMIT:
            return service_failure(
                502, f"the auth service's {status} answer is over {BODY_LIMIT} bytes"
            )
        passed = [
            (name, value)
            for name, value in headers
            if name.lower() in PASSED_HEADERS and not _unsafe(value)
        ]
        if not any(name.lower() == "cache-control" for name, _ in passed):
            # One client's refusal (a Set-Cookie, a login redirect) must not be cached for others.
            passed.append(("Cache-Control", "no-store"))
        text = body.decode("utf-8", "replace")
        return ServiceAnswer(status, tuple(passed), text, f"the auth service answered {status}")

    def _passed_with(
        self, request: Request, status: int, headers: list[tuple[str, str]]
    ) -> Allowed | ServiceAnswer:
        copied: list[tuple[str, str]] = []
        wanted = {n.lower(): n for n in self.copy_headers}
        for name, value in headers:
            canonical = wanted.get(name.lower())
            if canonical is None:
                continue
            if _unsafe(value):
                # Never half an identity: the whole answer is refused.
                return service_failure(
                    502, f"the auth service's {canonical} holds a control character"
                )
            copied.append((canonical, value))
        user_key = (self.user_header or (self.copy_headers[0] if self.copy_headers else "")).lower()
        user = ""
        if user_key:
            user = next((v for name, v in headers if name.lower() == user_key), "").strip()
            if _unsafe(user):
                return service_failure(502, "the auth service's user holds a control character")
        if self.user_header and not user:
            return service_failure(
                502, f"the auth service answered {status} without {self.user_header}"
            )
        reason = f"the auth service answered {status}" + (f" for {user!r}" if user else "")
        allowed = Allowed(user, {"user": user} if user else {}, reason, tuple(copied))
        if self.cache:
            credentials = self._credentials(request)
            if any(credentials):
                if len(self._passed) >= _CACHE_SIZE:
                    self._passed.clear()  # bounded: many distinct clients cost a question again
                self._passed[credentials] = (
                    Allowed(user, allowed.identity, reason + " (cached)", allowed.headers),
                    time.monotonic() + self.cache,
                )
        return allowed
