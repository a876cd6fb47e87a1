"""``create_admin_app(store)``: the admin API as an ASGI app (FastAPI), and how its errors look.

Every error is JSON ``{"error": code, "message": sentence, ...}``:

=====  ==========================  =========================================================
400    ``bad_if_match``            an If-Match that names no version
401    ``unauthorized``            no key, or a refused one (a browser goes to the login page)
403    ``forbidden`` / ``csrf``    the key's scope is too small; a cookie request without the
                                   CSRF header
404    ``not_found``               no rule, revision, key, sign-in session or not-found row
                                   with that id; no hits recorded for that rule
409    ``conflict``                a stale If-Match/version; ``current`` is the current state
422    ``invalid``                 ``problems``: every ``{"path", "message"}``, in the rules
                                   loader's words
428    ``if_match_required``       only with ``require_if_match=True``
429    ``too_many_failures``       too many refused keys from this address; see Retry-After
503    ``unavailable``             the database cannot be reached (or needs ``waypost db
                                   upgrade``); see Retry-After
=====  ==========================  =========================================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRouter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

import waypost
from waypost.admin._context import AdminContext, ApiError, AuthFailure
from waypost.admin._http import prefers_html
from waypost.admin._ratelimit import FailureLimiter
from waypost.admin.auth import failure_response
from waypost.admin.login import login_router
from waypost.admin.routes_rules import rules_router
from waypost.admin.routes_stats import stats_router
from waypost.admin.routes_tools import keys_router, sessions_router, tools_router
from waypost.admin.schemas import ErrorOut
from waypost.admin.service import problems_out
from waypost.admin.web import install_pages
from waypost.admin.web._render import render_error
from waypost.engine import Engine
from waypost.exceptions import (
    ConfirmationError,
    ConflictError,
    NotFoundError,
    RulesError,
    SchemaError,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from waypost.store.base import Store

__all__ = ["ADMIN_PREFIX", "create_admin_app", "is_admin_path"]

log = logging.getLogger("waypost.admin")

#: Where the standalone server mounts the admin app (``/_waypost/api/...``, ``/_waypost/login``).
ADMIN_PREFIX = "/_waypost"
_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in [
        (400, "A malformed If-Match"),
        (401, "No API key, or a refused one"),
        (403, "The key's scope does not allow this (or a cookie request without the CSRF header)"),
        (404, "No such rule, revision, key, sign-in session or not-found row"),
        (409, "A stale version: `current` holds the current state"),
        (422, "Every problem, with the path of its field"),
        (428, "If-Match required (require_if_match=True)"),
        (429, "Too many refused keys from this address (Retry-After)"),
        (503, "The database cannot be reached (Retry-After)"),
    ]
}
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
# What a path in a Location may carry unencoded (RFC 3986 pchar and '/').
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def is_admin_path(path: str, prefix: str = ADMIN_PREFIX) -> bool:
    """True for the paths an admin app made with this ``prefix`` answers: ``{prefix}`` and
    everything below it (the pages, ``{prefix}/api/...``, ``{prefix}/login``, the static files)
    but ``{prefix}/health`` and ``{prefix}/metrics``, which the standalone server keeps for
    itself."""
    if path == prefix:
        return True
    if not path.startswith(prefix + "/"):
        return False
    return path[len(prefix) :] not in ("/health", "/metrics")


def _path(location: Sequence[object]) -> str:
    parts = list(location[1:] if location and location[0] == "body" else location)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


def _problem_path(path: str) -> str:
    # The store labels a single rule's fields '.rule.to' (it has no index); here they are
    # the fields of the request body: 'rule.to'.
    return path.lstrip(".")


def _error(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


def _install_handlers(app: FastAPI, ctx: AdminContext) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if isinstance(exc, AuthFailure):
            return failure_response(ctx, request, exc)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError)
        problems = problems_out((_problem_path(p), m) for p, m in exc.problems)
        count = len(problems)
        return _error(
            422,
            "invalid",
            f"the change was rejected: {count} problem{'s' if count != 1 else ''}; nothing "
            "was written",
            problems=problems,
        )

    async def schema_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"path": _path(tuple(error.get("loc", ()))), "message": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        return _error(
            422, "invalid", "the request does not have the expected shape", problems=problems
        )

    async def conflict(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConflictError)
        current = exc.current.to_dict() if hasattr(exc.current, "to_dict") else None
        response = _error(409, "conflict", str(exc), current=current, expected=exc.expected)
        if current is not None and "version" in current:
            response.headers["ETag"] = f'"{current["version"]}"'
        return response

    async def unconfirmed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConfirmationError)
        return _error(
            409,
            "confirmation_required",
            f'{exc}: send "confirm_deletes": {exc.deleted} to delete them (a dry run lists the '
            'counts), or import with mode "merge", which deletes nothing',
            deleted=exc.deleted,
            kept=exc.kept,
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not_found", str(exc))

    # The store's own messages name the database (a file path, a host and user) and quote the
    # driver's error: they go to the server's log, never into a body anyone may read (these are
    # reached before the key is checked, as checking it needs the store).
    async def unavailable(request: Request, exc: Exception) -> Response:
        log.error("waypost admin: %s %s: %s", request.method, request.url.path, exc)
        if isinstance(exc, SchemaError):
            message = (
                "the rule store's schema does not match this Waypost (the server's log says "
                "which); run `waypost db upgrade --db URL`, or upgrade Waypost"
            )
        else:
            message = "the rule store cannot be reached right now (the server's log says why)"
        response = _error(503, "unavailable", message)
        response.headers["Retry-After"] = "5"
        return response

    async def store_error(request: Request, exc: Exception) -> Response:
        log.error("waypost admin: %s %s: %s", request.method, request.url.path, exc)
        return _error(500, "store_error", "the rule store failed (the server's log says why)")

    async def rules_error(request: Request, exc: Exception) -> Response:
        return _error(500, "rules_error", f"the stored rules do not load: {exc}")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(
            {"error": code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    handlers: list[tuple[type[Exception], Callable[[Request, Exception], Awaitable[Response]]]] = [
        (ApiError, api_error),
        (ValidationError, invalid),
        (RequestValidationError, schema_invalid),
        (ConflictError, conflict),
        (ConfirmationError, unconfirmed),
        (NotFoundError, not_found),
        (StoreUnavailable, unavailable),
        (SchemaError, unavailable),
        (StoreError, store_error),
        (RulesError, rules_error),
        (StarletteHTTPException, http_error),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, _as_page(ctx, handler))


def _as_page(
    ctx: AdminContext, handler: Callable[[Request, Exception], Awaitable[Response]]
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """``handler``, but a browser on one of the admin pages (not the API) gets the error as a
    page: its status and message, and a way back."""

    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if response.status_code < 400 or not _is_page(ctx, request):
            return response
        try:
            message = str(json.loads(bytes(response.body))["message"])
        except (ValueError, KeyError, TypeError):
            message = "the request failed"
        page = render_error(ctx, request, response.status_code, message)
        for name in ("retry-after", "www-authenticate"):
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page

    return handle


def _is_page(ctx: AdminContext, request: Request) -> bool:
    """True for a browser asking for one of the admin pages (not the API, not a static file)."""
    path = str(request.scope.get("path", ""))
    base = ctx.base(request)
    rest = path[len(base) :] if path.startswith(base) else path
    if rest == "/api" or rest.startswith(("/api/", "/static/")):
        return False
    return prefers_html(request.headers) or request.method == "POST"


def _relative_slash_redirects(router: APIRouter) -> None:
    """Redirect ``/api/rules/`` to ``/api/rules`` (and the reverse) with a relative Location.

    Starlette's own ``redirect_slashes`` builds an absolute URL from the request's Host header,
    so ``Host: evil.example.com`` got ``Location: http://evil.example.com/...`` (issue #12). The
    same redirect, with only the path (mount point included) and the query, cannot leave the
    site whatever the client sent as its Host.
    """
    router.redirect_slashes = False
    not_found = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path.strip("/"):
            other = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
            location = quote(other["path"], safe=_PATH_SAFE)
            # A path that became '//host' would be read by a browser as another host.
            if (
                location.startswith("/")
                and not location.startswith("//")
                and any(route.matches(other)[0] is not Match.NONE for route in router.routes)
            ):
                query = scope.get("query_string", b"").decode("latin-1")
                if query:
                    location += "?" + quote(query, safe=_PATH_SAFE + "?%")
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await not_found(scope, receive, send)

    router.default = default


def create_admin_app(
    store: Store,
    *,
    on_change: Callable[[int], object] | None = None,
    prefix: str = "",
    require_if_match: bool = False,
    failure_limit: int = 10,
    failure_window: float = 60.0,
    cookie_max_age: int = 8 * 3600,
    health: Callable[[], Mapping[str, object]] | None = None,
    key_store: Store | None = None,
    rules_file: str | None = None,
    served: Callable[[], Engine] | None = None,
) -> FastAPI:
    """The admin API for ``store`` as an ASGI app.

    Its routes are ``{prefix}/api/...`` (JSON; the OpenAPI document at
    ``{prefix}/api/openapi.json``, interactive docs at ``{prefix}/api/docs``) and
    ``{prefix}/login`` / ``{prefix}/logout`` (the browser sign-in page).

    - Inside your own app, mount it: ``app.mount("/_waypost", create_admin_app(store))``; the
      mount point (and any ``root_path``) is respected in redirects and the cookie's path.
    - In the standalone server, make it with ``prefix=ADMIN_PREFIX`` and send it every request
      for which :func:`is_admin_path` is true.

    ``on_change(revision)`` is called after each write that made a revision (to reload an
    engine at once rather than at the next poll). ``require_if_match`` makes ``PUT`` and
    ``DELETE`` without If-Match (or a ``version``) fail with 428 instead of last-write-wins.
    ``failure_limit`` refused keys per ``failure_window`` seconds from one address get 429.

    ``key_store``: where the API keys and sign-in sessions are, when not in ``store``.
    ``rules_file``: ``store`` holds only the statistics of a server serving this rules file
    (``served()`` is its engine): the app is the analytics API alone, and a redirect made from a
    404 row is refused with where to write it.
    """
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ValueError(f"prefix must start with '/' and not end with one, got {prefix!r}")
    ctx = AdminContext(
        store,
        prefix=prefix,
        on_change=on_change,
        require_if_match=require_if_match,
        cookie_max_age=cookie_max_age,
        limiter=FailureLimiter(limit=failure_limit, window=failure_window),
        health=health,
        keys=key_store,
        rules_file=rules_file,
        served=served,
    )
    app = FastAPI(
        title="Waypost admin API",
        version=waypost.__version__,
        summary=(
            "Rules, revisions, import and export, analytics, API keys and sign-in sessions "
            "of a Waypost rule store."
        ),
        openapi_url=f"{prefix}/api/openapi.json",
        docs_url=None,  # served from the package, offline: waypost.admin.web.docs
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    routers = (
        (stats_router(ctx),)
        if rules_file is not None
        else (
            rules_router(ctx),
            stats_router(ctx),
            tools_router(ctx),
            keys_router(ctx),
            sessions_router(ctx),
        )
    )
    for router in routers:
        app.include_router(router, prefix=prefix, responses=_ERRORS)
    app.include_router(login_router(ctx), prefix=prefix)
    if rules_file is None:
        install_pages(app, ctx)
    _install_handlers(app, ctx)
    _relative_slash_redirects(app.router)
    app.state.waypost_admin = ctx
    return app
