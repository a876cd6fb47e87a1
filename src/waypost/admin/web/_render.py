"""How the admin page's HTML is made: one Jinja2 environment (every value escaped), the headers
every page carries (a strict Content-Security-Policy: no inline script or style, nothing from
another origin), who is looking, and the dependency that checks a posted form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from waypost.admin._context import COOKIE_NAME, AdminContext
from waypost.admin._http import form_token
from waypost.admin.auth import authorize_form
from waypost.store.keys import ApiKey, KeyScope

__all__ = [
    "PAGE_HEADERS",
    "Viewer",
    "environment",
    "form_authorizer",
    "page_url",
    "render",
    "render_error",
    "viewer",
]

#: Every page's headers. The policy allows the package's own scripts and styles only: a value
#: that slipped past escaping still could not run.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _when(value: datetime | None) -> str:
    """A moment as people read it in a table: ``2026-12-07 11:40 UTC``; ``never`` for None."""
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: int | None) -> str:
    return "0" if value is None else f"{value:,}"


_ENV = Environment(
    loader=PackageLoader("waypost.admin", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["when"] = _when
_ENV.filters["number"] = _number


def environment() -> Environment:
    """The one Jinja2 environment of the admin page's templates."""
    return _ENV


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a page: the key, its form token (empty when not signed in by the
    cookie: then forms need no token, as the API needs no CSRF header), and what it may do."""

    key: ApiKey
    token: str

    @property
    def can_write(self) -> bool:
        return self.key.allows("write")

    @property
    def can_admin(self) -> bool:
        return self.key.allows("admin")


def viewer(request: Request, key: ApiKey) -> Viewer:
    """The :class:`Viewer` of ``request``, signed in as ``key``."""
    cookie = request.cookies.get(COOKIE_NAME)
    return Viewer(key, form_token(cookie) if cookie else "")


def page_url(base: str, path: str, query: Mapping[str, object] | None = None) -> str:
    """``base + path`` with the non-empty values of ``query``."""
    values = {k: v for k, v in (query or {}).items() if v not in (None, "", False)}
    return f"{base}{path}" + (f"?{urlencode(values, doseq=True)}" if values else "")


def render(
    ctx: AdminContext,
    request: Request,
    key: ApiKey,
    template: str,
    *,
    section: str,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered for ``key``, with the page's headers. Every template gets ``base``
    (the admin path), ``viewer``, ``section`` (the menu entry to mark) and ``url(path,
    **query)``."""
    base = ctx.base(request)

    def url(path: str, **query: object) -> str:
        return page_url(base, path, query)

    html = _ENV.get_template(template).render(
        base=base, viewer=viewer(request, key), section=section, url=url, **values
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def render_error(ctx: AdminContext, request: Request, status: int, message: str) -> HTMLResponse:
    """An error page without a signed-in viewer (the message only, and a way back)."""
    html = _ENV.get_template("error.html").render(
        base=ctx.base(request), status=status, message=message
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def form_authorizer(ctx: AdminContext, scope: KeyScope) -> Callable[..., ApiKey]:
    """A FastAPI dependency for a form's POST: the calling key, if it has ``scope`` and (signed
    in by cookie) the form carries its session's token."""

    def authorize(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> ApiKey:
        return authorize_form(ctx, request, scope, csrf)

    return authorize
