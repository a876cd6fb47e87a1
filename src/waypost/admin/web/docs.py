"""The API's interactive docs (Swagger UI), served whole by Waypost: its script and style come
from the package, so the page works without internet access, and the page's own script adds the
CSRF header to every request it sends, so a signed-in browser can try the writing calls too.

The OpenAPI document names that header on every unsafe operation (see :func:`add_csrf_header`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from waypost.admin._context import CSRF_HEADER, AdminContext
from waypost.admin.web._render import PAGE_HEADERS, environment

__all__ = ["add_csrf_header", "docs_router"]

# Swagger UI sets style attributes from its script; nothing else is loosened.
DOCS_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}
_UNSAFE = ("post", "put", "patch", "delete")


def docs_router(ctx: AdminContext) -> APIRouter:
    """``GET /api/docs``."""
    router = APIRouter(include_in_schema=False)
    env: Environment = environment()

    @router.get("/api/docs")
    def docs(request: Request) -> HTMLResponse:
        base = ctx.base(request)
        html = env.get_template("docs.html").render(base=base, csrf_header=CSRF_HEADER)
        return HTMLResponse(html, headers=DOCS_HEADERS)

    return router


def add_csrf_header(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document name the CSRF header on every unsafe operation: a
    request signed in by the login cookie must send it (an API key needs no such header)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            for operations in schema.get("paths", {}).values():
                for method, operation in operations.items():
                    if method not in _UNSAFE:
                        continue
                    operation.setdefault("parameters", []).append(
                        {
                            "name": CSRF_HEADER,
                            "in": "header",
                            "required": False,
                            "description": (
                                "Any value. Required when signed in by the login cookie (a "
                                "page of this site sends it, another site cannot); not with an "
                                "API key."
                            ),
                            "schema": {"type": "string"},
                        }
                    )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
