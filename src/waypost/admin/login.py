"""The login page: a small server-rendered form where a person pastes an API key.

On success a sign-in session is made for the key (:mod:`waypost.store.sessions`), recording the
browser's User-Agent and the client's address (the peer's, as for counting failures), and its
token, never the key, goes into an HttpOnly, SameSite=Strict cookie scoped to the admin path
(Secure over https), so a stolen cookie is not a stolen key and signing out ends it on the server.
The browser is then sent to ``next`` if that is a path on this site (checked with the rule
language's own open-redirect guard), else to the admin page's overview. Failures count against
the client's address like any refused key, and the form is not served in a frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from waypost.admin._context import COOKIE_NAME, AdminContext, AuthFailure
from waypost.admin._http import header_text, safe_next, same_origin
from waypost.admin.auth import authenticate_key
from waypost.exceptions import AuthError

__all__ = ["login_router"]

_MAX_FORM = 16 * 1024
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the
    # form's POST, and the login CSRF check below (rightly) refuses a null origin.
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>Waypost admin: sign in</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 32rem; margin: 4rem auto;
  padding: 0 1rem; }}
input[type=password] {{ width: 100%; font: inherit; padding: .4rem; box-sizing: border-box; }}
button {{ font: inherit; padding: .4rem 1rem; margin-top: .8rem; }}
.error {{ color: #a00; }}
</style>
</head>
<body>
<h1>Waypost admin</h1>
{message}
<form method="post" action="{action}">
<label for="key">API key</label>
<input type="password" id="key" name="key" autocomplete="off" required
 placeholder="wp_..." autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form>
<p>Create a key with <code>waypost keys create --scope read --db URL</code>.</p>
</body>
</html>
"""


def _page(ctx: AdminContext, request: Request, next: str, message: str, status: int) -> Response:
    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    html = _PAGE.format(
        message=note,
        action=escape(f"{ctx.base(request)}/login"),
        next=escape(next),
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _landing(ctx: AdminContext, request: Request) -> str:
    return f"{ctx.base(request)}/"


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            raise AuthFailure(413, "too_large", "the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items() if values}


def login_router(ctx: AdminContext) -> APIRouter:
    """``GET /login`` (the form), ``POST /login`` (sign in: a new session) and ``POST /logout``
    (sign out: the session is deleted, not just the cookie)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    def login_form(request: Request, next: str = "") -> Response:
        return _page(ctx, request, next, "", 200)

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            # Login CSRF: another site must not sign a visitor in with the attacker's key.
            return _page(ctx, request, "", "Sign in from this site's own login page.", 403)
        form = await _form(request)
        next = form.get("next", "")
        try:
            key = authenticate_key(ctx, request, form.get("key", ""))  # any scope may sign in
            session, token = ctx.key_store.create_session(
                key.id,
                lifetime=ctx.cookie_max_age,
                # What signed in, for whoever lists the sessions; the store cleans and trims it.
                user_agent=header_text(request.headers.get("user-agent")),
                client_address=ctx.peer(request),
            )
        except AuthFailure as exc:
            response = _page(ctx, request, next, exc.message, exc.status)
            if "Retry-After" in exc.headers:
                response.headers["Retry-After"] = exc.headers["Retry-After"]
            return response
        except AuthError as exc:  # revoked elsewhere since the (cached) check above
            return _page(ctx, request, next, str(exc), 401)
        previous = request.cookies.get(COOKIE_NAME)
        if previous:  # signing in again (perhaps with another key) ends the old session
            ctx.key_store.end_session(previous)
        location = safe_next(next, _landing(ctx, request))
        response = RedirectResponse(
            location, status_code=303, headers={"Cache-Control": "no-store"}
        )
        # The session ends when its key does, if that is sooner: so does the cookie.
        left = (session.expires_at - datetime.now(UTC)).total_seconds()
        response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=max(1, min(ctx.cookie_max_age, int(left))),
            path=ctx.base(request) or "/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        # Ended on the server, so a copy of the cookie is worthless from now on. If the store
        # cannot be reached this is a 503 and the cookie stays: better than a sign-out that
        # only looks done.
        token = request.cookies.get(COOKIE_NAME)
        if token:
            ctx.key_store.end_session(token)
        response = RedirectResponse(f"{ctx.base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path=ctx.base(request) or "/")
        return response

    return router
