"""Who is asking: API keys from headers, sign-in sessions from the login cookie, scopes, CSRF,
and the answer a refused client can use (JSON 401 for programs, a redirect to the login page for
browsers).

A session does what its key may do (scope, host binding) for as long as both last; the cookie
never holds the key itself, so an old cookie that did is refused like any unknown one.

Scopes: ``read`` (GET, resolve, explain, validate, export), ``write`` (rules, settings, import,
rollback) and ``admin`` (API keys and sign-in sessions); each allows what the ones before it
allow.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Annotated
from urllib.parse import quote

from fastapi import Request, Security
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from waypost.admin._context import COOKIE_NAME, CSRF_HEADER, AdminContext, AuthFailure
from waypost.admin._http import find_credentials, form_token, prefers_html, same_origin
from waypost.exceptions import AuthError
from waypost.store.keys import ApiKey, KeyReach, KeyScope
from waypost.store.sessions import Session

__all__ = [
    "authenticate_key",
    "authenticate_session",
    "authorize_form",
    "authorizer",
    "caller_reach",
    "failure_response",
    "login_path",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Kept vague on purpose: whether a key id exists is not for a guesser to learn.
_VAGUE = {"unknown", "bad_secret"}

# For the OpenAPI document (and its "Authorize" button); the checking is done below.
_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer wp_<id>_<secret>")
_KEY_ID = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The key's public id (with X-Secret-Token)"
)
_SECRET = APIKeyHeader(
    name="X-Secret-Token", auto_error=False, description="The key's secret (with X-API-Key)"
)
_COOKIE = APIKeyCookie(
    name=COOKIE_NAME, auto_error=False, description="A sign-in session, set by the login page"
)


def login_path(ctx: AdminContext, request: Request) -> str:
    """The login page for this request, with ``next`` pointing back at it."""
    # From the ASGI scope, not request.url: that URL is built from the Host header, and a Host
    # such as 'evil.example.com/x' would change the path it reports.
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = str(request.scope["path"]) + (f"?{query}" if query else "")
    return f"{ctx.base(request)}/login?next={quote(target, safe='/')}"


def authenticate_key(ctx: AdminContext, request: Request, presented: str) -> ApiKey:
    """The key for ``presented`` if it is good for this request's Host (any scope); counts a
    refusal against the client's address. AuthFailure (401 or 429) otherwise."""
    return _checked(
        ctx,
        request,
        lambda host: ctx.key_store.authenticate(presented, host=host),
        lambda exc: "unknown API key or wrong secret" if exc.reason in _VAGUE else str(exc),
    )


def authenticate_session(ctx: AdminContext, request: Request, token: str) -> ApiKey:
    """The key a sign-in session token (the login cookie) signs in as, if the session has not
    ended and the key is good for this request's Host (any scope); counts a refusal against the
    client's address like a refused key. AuthFailure (401 or 429) otherwise.

    The session is kept on the request (:func:`caller_reach`): what it may create ends with it.
    """

    def check(host: str | None) -> ApiKey:
        session, key = ctx.key_store.check_session(token, host=host)
        request.state.waypost_session = session
        return key

    return _checked(ctx, request, check, lambda exc: f"{exc}; sign in again at the login page")


def caller_reach(request: Request, key: ApiKey) -> KeyReach:
    """How far the caller reaches: its key's scope, host and expiry, and, signed in with the
    login cookie, no later than its session ends. A key it creates may reach no further."""
    session: Session | None = getattr(request.state, "waypost_session", None)
    return KeyReach.of(key, until=None if session is None else session.expires_at)


def _checked(
    ctx: AdminContext,
    request: Request,
    check: Callable[[str | None], ApiKey],
    message: Callable[[AuthError], str],
) -> ApiKey:
    address = ctx.address(request)
    wait = ctx.limiter.retry_after(address)
    if wait:
        raise AuthFailure(
            429,
            "too_many_failures",
            f"too many refused API keys or sign-ins from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    try:
        return check(request.headers.get("host"))
    except AuthError as exc:
        ctx.limiter.fail(address)
        raise AuthFailure(
            401,
            "unauthorized",
            message(exc),
            headers={"WWW-Authenticate": 'Bearer realm="waypost", error="invalid_token"'},
            extra={"reason": exc.reason},
        ) from None


def _authorize(
    ctx: AdminContext, request: Request, scope: KeyScope, sent_token: str | None = None
) -> ApiKey:
    credentials = find_credentials(request.headers, request.cookies.get(COOKIE_NAME))
    if credentials is None:
        raise AuthFailure(
            401,
            "unauthorized",
            "this needs an API key: send 'Authorization: Bearer wp_<id>_<secret>' (or "
            "X-API-Key and X-Secret-Token), or sign in at the login page",
            headers={"WWW-Authenticate": 'Bearer realm="waypost"'},
        )
    if credentials.source == "cookie":
        key = authenticate_session(ctx, request, credentials.presented)
    else:
        key = authenticate_key(ctx, request, credentials.presented)
    if not key.allows(scope):
        raise AuthFailure(
            403,
            "forbidden",
            f"API key {key.id!r} has scope {key.scope!r}; this needs {scope!r}",
            headers={"WWW-Authenticate": f'Bearer realm="waypost", scope="{scope}"'},
        )
    # A cookie rides along on cross-site requests that SameSite misses (an old browser, a
    # sibling subdomain): an unsafe one must prove it was made by a page of this site.
    if (
        credentials.source == "cookie"
        and request.method not in _SAFE_METHODS
        and (
            not _proves_page(request.headers, credentials.presented, sent_token)
            or not same_origin(request.headers.get("origin"), request.headers.get("host"))
        )
    ):
        raise AuthFailure(
            403,
            "csrf",
            f"a request signed in by cookie that changes something must send the header "
            f"{CSRF_HEADER} from a page of this site",
        )
    return key


def _proves_page(headers: Mapping[str, str], session_token: str, sent_token: str | None) -> bool:
    """True when an unsafe cookie request comes from a page of this site: it sends the CSRF
    header (a script of the page), or the form token of its session (a form of the page)."""
    if CSRF_HEADER.lower() in headers:
        return True
    if sent_token is None:
        return False
    return hmac.compare_digest(form_token(session_token).encode(), sent_token.encode())


def authorize_form(
    ctx: AdminContext, request: Request, scope: KeyScope, sent_token: str | None
) -> ApiKey:
    """The calling :class:`ApiKey` of a form the admin page posted, if it has ``scope``: signed
    in by cookie, the form must carry its session's token (``sent_token``, see
    :func:`~waypost.admin._http.form_token`); AuthFailure otherwise, as for the API."""
    return _authorize(ctx, request, scope, sent_token)


def authorizer(ctx: AdminContext, scope: KeyScope) -> Callable[..., ApiKey]:
    """A FastAPI dependency: the calling :class:`ApiKey`, if it has ``scope``."""

    def authorize(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
        key_id: Annotated[str | None, Security(_KEY_ID)] = None,
        secret: Annotated[str | None, Security(_SECRET)] = None,
        cookie: Annotated[str | None, Security(_COOKIE)] = None,
    ) -> ApiKey:
        return _authorize(ctx, request, scope)

    return authorize


def failure_response(ctx: AdminContext, request: Request, exc: AuthFailure) -> Response:
    """What a refused client gets: a browser (its Accept prefers a page, and it sent no JSON) is
    sent to the login page with 303; anything else gets JSON with ``WWW-Authenticate``."""
    if exc.status == 401 and prefers_html(request.headers):
        response: Response = RedirectResponse(login_path(ctx, request), status_code=303)
        if COOKIE_NAME in request.cookies:  # an ended session (or an old cookie): forget it
            response.delete_cookie(COOKIE_NAME, path=ctx.base(request) or "/")
        return response
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
