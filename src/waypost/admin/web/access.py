"""The keys page (admin scope): create a key (shown once, with a copy button), list the keys
with their last use, revoke one; the sign-in sessions, ending one or every other one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from waypost.admin._context import COOKIE_NAME, AdminContext, ApiError
from waypost.admin.auth import authorizer
from waypost.admin.routes_tools import new_key, sessions_out
from waypost.admin.web._render import form_authorizer, page_url, render
from waypost.store.keys import ApiKey
from waypost.store.sessions import token_session_id

__all__ = ["access_pages"]

KeyId = Annotated[str, Path(min_length=1, max_length=200)]
_NOTICES = {
    "revoked": "The key was revoked; its sign-in sessions ended with it.",
    "ended": "The session was ended.",
    "ended-others": "Every other sign-in session was ended.",
}


def access_pages(ctx: AdminContext) -> APIRouter:
    """``/keys`` and below."""
    router = APIRouter(include_in_schema=False)
    admin = Depends(authorizer(ctx, "admin"))
    admin_form = Depends(form_authorizer(ctx, "admin"))
    store = ctx.store

    def page(
        request: Request,
        key: ApiKey,
        *,
        status: int = 200,
        created: ApiKey | None = None,
        secret: str = "",
        problems: list[str] | None = None,
        notice: str = "",
    ) -> HTMLResponse:
        return render(
            ctx,
            request,
            key,
            "keys.html",
            section="keys",
            status=status,
            keys=store.list_keys(),
            sessions=sessions_out(request, store.list_sessions()),
            created=created,
            secret=secret,
            problems=problems or [],
            notice=_NOTICES.get(notice, ""),
        )

    @router.get("/keys")
    def keys(request: Request, key: ApiKey = admin, notice: str = "") -> HTMLResponse:
        return page(request, key, notice=notice)

    @router.post("/keys")
    def create(
        request: Request,
        scope: Annotated[Literal["read", "write", "admin", "access"], Form()] = "read",
        audiences: Annotated[str, Form(max_length=2000)] = "",
        note: Annotated[str, Form(max_length=500)] = "",
        host: Annotated[str, Form(max_length=253)] = "",
        expires: Annotated[str, Form(max_length=64)] = "",
        key: ApiKey = admin_form,
    ) -> HTMLResponse:
        try:
            created, secret = new_key(
                ctx,
                request,
                key,
                None if scope == "access" else scope,
                [a.strip() for a in audiences.split(",") if a.strip()],
                note,
                host.strip() or None,
                expires.strip() or None,
            )
        except ApiError as exc:
            return page(request, key, status=exc.status, problems=[exc.message])
        # The key is in this page only: it is not stored, and the page is not cached.
        return page(request, key, status=201, created=created, secret=secret)

    @router.post("/keys/{key_id}/revoke")
    def revoke(request: Request, key_id: KeyId, key: ApiKey = admin_form) -> Response:
        store.get_key(key_id)  # 404 for an unknown id
        store.revoke_key(key_id)
        return RedirectResponse(
            page_url(ctx.base(request), "/keys", {"notice": "revoked"}), status_code=303
        )

    @router.post("/sessions/{session_id}/end")
    def end_session(request: Request, session_id: KeyId, key: ApiKey = admin_form) -> Response:
        store.end_session_by_id(session_id)
        return RedirectResponse(
            page_url(ctx.base(request), "/keys", {"notice": "ended"}), status_code=303
        )

    @router.post("/sessions/end-others")
    def end_others(request: Request, key: ApiKey = admin_form) -> Response:
        mine = token_session_id(request.cookies.get(COOKIE_NAME))
        for session in store.list_sessions():
            if session.id != mine:
                store.end_session_by_id(session.id)
        return RedirectResponse(
            page_url(ctx.base(request), "/keys", {"notice": "ended-others"}), status_code=303
        )

    return router
