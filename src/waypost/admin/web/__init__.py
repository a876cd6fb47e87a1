"""The admin web page: server-rendered HTML (Jinja2, every value escaped) with a little plain
JavaScript served from the package for what a page does better with it (trying a rule as you
type, the chart, copying a new key). Every page works without the script; nothing comes from a
CDN, and the Content-Security-Policy allows no inline script.

Pages talk to the same service layer and store as the JSON API: one copy of the business rules.
Forms post with the session's form token (:func:`waypost.admin._http.form_token`); read keys see
every page but get no button that changes anything, and the server refuses it anyway.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from waypost.admin._context import AdminContext
from waypost.admin.web.access import access_pages
from waypost.admin.web.docs import add_csrf_header, docs_router
from waypost.admin.web.history import history_pages
from waypost.admin.web.not_found import not_found_pages
from waypost.admin.web.overview import overview_router
from waypost.admin.web.rules import rules_pages
from waypost.admin.web.transfer import transfer_pages

__all__ = ["install_pages"]


def install_pages(app: FastAPI, ctx: AdminContext) -> None:
    """Add the pages, their static files (``{prefix}/static/``) and the offline API docs to the
    admin ``app``."""
    pages = APIRouter(include_in_schema=False)
    for router in (
        overview_router(ctx),
        rules_pages(ctx),
        not_found_pages(ctx),
        history_pages(ctx),
        transfer_pages(ctx),
        access_pages(ctx),
        docs_router(ctx),
    ):
        pages.include_router(router)
    app.include_router(pages, prefix=ctx.prefix)
    app.mount(
        f"{ctx.prefix}/static",
        StaticFiles(packages=[("waypost.admin", "static")]),
        name="waypost-admin-static",
    )
    add_csrf_header(app)
