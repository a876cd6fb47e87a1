"""The overview page: how many rules, which revision, whether the server serves them, how busy
the rules are, the busiest rules, the heaviest unresolved 404s and a chart of hits per hour."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from waypost.admin._context import AdminContext
from waypost.admin.auth import authorizer
from waypost.admin.web._render import render
from waypost.store.keys import ApiKey
from waypost.store.stats import RuleHour

__all__ = ["overview_router", "per_minute"]

#: How far back the chart of hits goes.
CHART_HOURS = 48


def per_minute(hours: tuple[RuleHour, ...], now: datetime) -> float:
    """Hits per minute over the current hour and the one before it (what the flushed counts
    know: up to a flush interval behind)."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    hits = sum(hour.hits for hour in hours if hour.hour >= start)
    minutes = max(1.0, (now - start).total_seconds() / 60)
    return hits / minutes


def _chart(hours: tuple[RuleHour, ...], now: datetime) -> dict[str, list[Any]]:
    """The hits of each of the last :data:`CHART_HOURS` hours as two columns (Unix seconds of
    the hour's start, hits), hours without hits as 0."""
    if not hours:
        return {"x": [], "y": []}
    by_hour = {int(hour.hour.timestamp()): hour.hits for hour in hours}
    last = int(now.replace(minute=0, second=0, microsecond=0).timestamp())
    xs = list(range(last - (CHART_HOURS - 1) * 3600, last + 1, 3600))
    return {"x": xs, "y": [by_hour.get(x, 0) for x in xs]}


def _health(ctx: AdminContext) -> Mapping[str, object]:
    if ctx.health is not None:
        return ctx.health()
    # Mounted in a user's app: the page knows the store answers, not what serves it.
    return {"status": "ok", "reason": None}


def overview_router(ctx: AdminContext) -> APIRouter:
    """``GET /``: the overview."""
    router = APIRouter(include_in_schema=False)
    read = Depends(authorizer(ctx, "read"))
    store = ctx.store

    @router.get("/")
    def overview(request: Request, key: ApiKey = read) -> HTMLResponse:
        now = datetime.now(UTC)
        hours = store.hours_total(now - timedelta(hours=CHART_HOURS))
        return render(
            ctx,
            request,
            key,
            "overview.html",
            section="overview",
            rule_count=store.count_rules(),
            revision=store.current_revision(),
            health=_health(ctx),
            per_minute=per_minute(hours, now),
            top_rules=store.rule_stats(limit=5).rows,
            top_not_found=store.not_found_stats(limit=5).rows,
            chart=_chart(hours, now),
            chart_hours=hours,
        )

    return router
