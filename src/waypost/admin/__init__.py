"""The admin API: rules, validation, resolve/explain, history, import/export, API keys and
sign-in sessions of a rule store, as JSON under ``/_waypost/api/``, with a small browser sign-in
page.

Inside your own ASGI app::

    from waypost.admin import create_admin_app
    from waypost.store import open_store

    app.mount("/_waypost", create_admin_app(open_store("sqlite:///waypost.db")))

In the standalone server (which keeps ``/_waypost/health`` and ``/_waypost/metrics``)::

    admin = create_admin_app(store, prefix=ADMIN_PREFIX, on_change=reload_now)
    ...
    if is_admin_path(scope["path"]):
        await admin(scope, receive, send)

Layers: ``_http`` (sans-io HTTP decisions), ``_ratelimit`` (failures per address),
``service`` (answers from the store and the engine, no HTTP), ``schemas`` (request and
response bodies), ``auth`` and ``login`` (keys, cookie, CSRF), ``routes_*`` and ``app``.
"""

from __future__ import annotations

from waypost.admin import _requires  # noqa: F401 - first: one line for a missing extra
from waypost.admin._context import COOKIE_NAME, CSRF_HEADER
from waypost.admin.app import ADMIN_PREFIX, create_admin_app, is_admin_path

__all__ = ["ADMIN_PREFIX", "COOKIE_NAME", "CSRF_HEADER", "create_admin_app", "is_admin_path"]
