"""Routes for the analytics: what each rule does (``/api/stats/rules``), which stored rules
nothing uses (``/api/stats/unused-rules``), and what visitors ask for that answers 404
(``/api/stats/not-found``), with a redirect made from a 404 row in one call.

Lists are keyset pages, as for rules: ``next_cursor`` goes back as ``cursor``. A cursor belongs to
its list, sort and order; another one is refused with 422. Counts move while someone pages, so a
row whose count changed in between may show twice or not at all.

A rule's key is its id in the store or its ``file:line`` in a rules file; it may hold ``/`` and
``:`` as they are (``/api/stats/rules/conf/rules.yaml:12``) or percent-encoded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from waypost.admin._context import AdminContext, ApiError
from waypost.admin.auth import authorizer
from waypost.admin.schemas import (
    NotFoundOut,
    NotFoundPageOut,
    NotFoundRuleBody,
    NotFoundRuleOut,
    RuleSeriesOut,
    RuleStatsPageOut,
    UnusedRulePageOut,
    VisitPageOut,
)
from waypost.admin.service import nearly_answered, redirect_not_found
from waypost.store.keys import ApiKey
from waypost.store.stats import NotFoundStats, NotFoundStatus, parse_since

__all__ = ["stats_router"]

RowId = Annotated[
    str, Path(min_length=1, max_length=64, description="The not-found row's id (its 'id')")
]
Order = Annotated[
    Literal["desc", "asc"], Query(description="desc: most (or latest) first; asc: the reverse")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page")]
Cursor = Annotated[str | None, Query(max_length=400, description="The previous page's next_cursor")]
_MOMENT = "a duration back from now (90d, 12h, 2w) or an ISO 8601 date or time (UTC by default)"


def _moment(name: str, text: str | None) -> datetime | None:
    """The query parameter ``name`` as a moment (None when absent); otherwise 422 naming it as
    the API's own checks name a query parameter (``query.since``)."""
    if text is None:
        return None
    try:
        return parse_since(text, allow_future=name == "until")
    except ValueError as exc:
        raise ApiError.of_problems(
            422,
            "invalid",
            "the request does not have the expected shape",
            [(f"query.{name}", str(exc))],
        ) from None


def _rows_out(ctx: AdminContext, rows: list[NotFoundStats]) -> list[dict[str, object]]:
    """The rows as JSON, each with the rule that nearly answered it (``nearly``)."""
    out = []
    for row, near in zip(rows, nearly_answered(ctx.engines, [r.path for r in rows]), strict=True):
        shown = row.to_dict()
        shown["nearly"] = near
        out.append(shown)
    return out


def stats_router(ctx: AdminContext) -> APIRouter:
    """``/api/stats/...``: rule hits, unused rules and the not-found log."""
    router = APIRouter(prefix="/api/stats", tags=["analytics"])
    read = Depends(authorizer(ctx, "read"))
    write = Depends(authorizer(ctx, "write"))
    store = ctx.store

    @router.get("/rules", response_model=RuleStatsPageOut)
    def rule_stats(
        key: ApiKey = read,
        sort: Annotated[Literal["hits", "last_at"], Query(description="Sort by")] = "hits",
        order: Order = "desc",
        unused_since: Annotated[
            str | None,
            Query(max_length=64, description=f"Only rules with no hit since then: {_MOMENT}"),
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, object]:
        """Rules with hits recorded, by hits or last hit. With ``unused_since``, only those
        whose last hit is older (a stored rule never hit has no row: see
        ``/api/stats/unused-rules``)."""
        page = store.rule_stats(
            sort=sort,
            descending=order == "desc",
            unused_since=_moment("unused_since", unused_since),
            limit=limit,
            cursor=cursor,
        )
        return {"rules": [row.to_dict() for row in page.rows], "next_cursor": page.next_cursor}

    @router.get("/visits", response_model=VisitPageOut)
    def visits(
        key: ApiKey = read,
        rule: Annotated[
            str | None, Query(max_length=400, description="Only this rule's (its key)")
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, object]:
        """The redirects logged one by one (``--stats-visits``), newest first."""
        page = store.visits(rule_key=rule, limit=limit, cursor=cursor)
        return {"visits": [row.to_dict() for row in page.rows], "next_cursor": page.next_cursor}

    @router.get("/rules/{rule_key:path}", response_model=RuleSeriesOut)
    def rule_series(
        rule_key: Annotated[
            str,
            Path(
                min_length=1,
                max_length=2000,
                description="The rule's id, or its file:line ('/' and ':' as they are or encoded)",
            ),
        ],
        key: ApiKey = read,
        since: Annotated[
            str | None, Query(max_length=64, description=f"Hours from then: {_MOMENT}")
        ] = None,
        until: Annotated[
            str | None, Query(max_length=64, description=f"Hours before then: {_MOMENT}")
        ] = None,
    ) -> dict[str, object]:
        """One rule's hits, first and last hit, and its hits per hour (oldest first; hours
        without hits left out). 404 when it has no hits recorded."""
        totals = store.get_rule_stats(rule_key)
        hours = store.rule_hours(rule_key, _moment("since", since), _moment("until", until))
        return {**totals.to_dict(), "hours": [hour.to_dict() for hour in hours]}

    @router.get("/unused-rules", response_model=UnusedRulePageOut)
    def unused_rules(
        key: ApiKey = read,
        since: Annotated[
            str | None,
            Query(max_length=64, description=f"No hit since then: {_MOMENT}; default: never hit"),
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, object]:
        """Rules in the store, in priority order, with no hit since ``since`` (a rule created
        after it is listed too: its ``created_at`` says so)."""
        page = store.unused_rules(_moment("since", since), limit=limit, cursor=cursor)
        return {"rules": [rule.to_dict() for rule in page.rules], "next_cursor": page.next_cursor}

    @router.get("/not-found", response_model=NotFoundPageOut)
    def not_found(
        key: ApiKey = read,
        status: Annotated[
            Literal["open", "dismissed", "resolved", "all"], Query(description="Rows with status")
        ] = "open",
        bots: Annotated[
            Literal["include", "exclude"],
            Query(description="exclude: count people only, and leave out paths only bots ask"),
        ] = "exclude",
        sort: Annotated[Literal["hits", "last_at"], Query(description="Sort by")] = "hits",
        order: Order = "desc",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, object]:
        """Paths answered 404, heaviest (or latest) first, each with its heaviest referrers and
        user agents; ``other`` counts the 404s of paths too rare to keep a row."""
        chosen: NotFoundStatus | None = None if status == "all" else status
        page = store.not_found_stats(
            status=chosen,
            include_bots=bots == "include",
            sort=sort,
            descending=order == "desc",
            limit=limit,
            cursor=cursor,
        )
        return {
            "not_found": _rows_out(ctx, list(page.rows)),
            "next_cursor": page.next_cursor,
            "other": store.stats_other(),
        }

    @router.get("/not-found/{row_id}", response_model=NotFoundOut)
    def get_not_found(row_id: RowId, key: ApiKey = read) -> dict[str, object]:
        """One path answered 404, with its referrers and user agents."""
        return _rows_out(ctx, [store.get_not_found(row_id)])[0]

    @router.post("/not-found/{row_id}/rule", response_model=NotFoundRuleOut, status_code=201)
    def rule_from_not_found(
        row_id: RowId,
        body: NotFoundRuleBody,
        request: Request,
        response: Response,
        key: ApiKey = write,
    ) -> dict[str, object]:
        """Redirect the row's path: a rule ``{"from": <path>, "to": ...}`` made as
        ``POST /api/rules`` makes one (checked with the whole rule set, a new revision), then
        the row is marked resolved by it. A refused rule is 422 (its problems name this body's
        fields) and the row stays as it was. Serving a rules file, 409 ``rules_in_file``:
        the rule belongs in the file."""
        if ctx.rules_file is not None:
            raise ApiError(
                409,
                "rules_in_file",
                f"the rules are in the file {ctx.rules_file!r}: add the redirect there (a "
                f'line "from: {store.get_not_found(row_id).path}" with its "to:"); the server '
                "reloads it",
            )
        redirect = body.model_dump(include={"to", "status", "name", "query"}, exclude_none=True)
        stored, row = redirect_not_found(
            store,
            row_id,
            redirect,
            position=body.position,
            key_id=key.id,
            message=body.message,
        )
        ctx.changed_to(stored.version)
        response.headers["Location"] = f"{ctx.base(request)}/api/rules/{stored.id}"
        return {"rule": stored.to_dict(), "not_found": _rows_out(ctx, [row])[0]}

    @router.delete("/not-found/{row_id}", response_model=NotFoundOut)
    def dismiss_not_found(row_id: RowId, key: ApiKey = write) -> dict[str, object]:
        """Dismiss the row (status ``dismissed``): it does not matter. Its hits keep counting;
        it leaves the default list, which shows open rows."""
        return _rows_out(ctx, [store.set_not_found_status(row_id, "dismissed")])[0]

    return router
