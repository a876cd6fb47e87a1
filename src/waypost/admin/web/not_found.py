"""The 404 page: paths visitors asked for that nothing answered, heaviest first, bots hidden
by default, with the rule that nearly answered each; "create redirect" opens the rule form
with the path filled in and the closest existing targets suggested; dismiss hides a row."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from waypost.admin._context import AdminContext
from waypost.admin.auth import authorizer
from waypost.admin.service import nearly_answered
from waypost.admin.web._render import form_authorizer, page_url, render
from waypost.store.keys import ApiKey

__all__ = ["not_found_pages"]

PAGE_SIZE = 50
RowId = Annotated[str, Path(min_length=1, max_length=64)]


def not_found_pages(ctx: AdminContext) -> APIRouter:
    """``/not-found`` and below."""
    router = APIRouter(include_in_schema=False)
    read = Depends(authorizer(ctx, "read"))
    write_form = Depends(form_authorizer(ctx, "write"))
    store = ctx.store

    @router.get("/not-found")
    def not_found(
        request: Request,
        key: ApiKey = read,
        bots: Annotated[bool, Query()] = False,
        status: Annotated[Literal["open", "dismissed", "resolved"], Query()] = "open",
        cursor: Annotated[str, Query(max_length=400)] = "",
        notice: Annotated[str, Query(max_length=40)] = "",
    ) -> HTMLResponse:
        page = store.not_found_stats(
            status=status, include_bots=bots, limit=PAGE_SIZE, cursor=cursor or None
        )
        nearly = nearly_answered(ctx.engines, [row.path for row in page.rows])
        next_url = None
        if page.next_cursor:
            next_url = page_url(
                ctx.base(request),
                "/not-found",
                {"bots": "true" if bots else "", "status": status, "cursor": page.next_cursor},
            )
        return render(
            ctx,
            request,
            key,
            "not_found.html",
            section="not-found",
            rows=list(zip(page.rows, nearly, strict=True)),
            bots=bots,
            shown=status,
            other=store.stats_other(),
            next_url=next_url,
            notice="The row was dismissed." if notice == "dismissed" else "",
        )

    @router.post("/not-found/{row_id}/dismiss")
    def dismiss(request: Request, row_id: RowId, key: ApiKey = write_form) -> Response:
        store.set_not_found_status(row_id, "dismissed")
        return RedirectResponse(
            page_url(ctx.base(request), "/not-found", {"notice": "dismissed"}), status_code=303
        )

    return router
