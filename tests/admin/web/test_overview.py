"""The overview's figures: hits per minute and the chart's hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from waypost.admin.web.overview import CHART_HOURS, _chart, per_minute
from waypost.store.stats import RuleHour

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


def hour(hours_ago: int, hits: int) -> RuleHour:
    start = NOW.replace(minute=0) - timedelta(hours=hours_ago)
    return RuleHour(start, hits)


def test_hits_per_minute_count_this_hour_and_the_one_before() -> None:
    hours = (hour(5, 1000), hour(1, 60), hour(0, 30))
    assert per_minute(hours, NOW) == 90 / 90  # 90 hits over the 90 minutes since 09:00


def test_the_chart_spans_every_hour_with_zeros() -> None:
    chart = _chart((hour(3, 7),), NOW)
    assert len(chart["x"]) == CHART_HOURS == len(chart["y"])
    assert chart["y"][-4] == 7 and sum(chart["y"]) == 7
    assert chart["x"][1] - chart["x"][0] == 3600
    assert _chart((), NOW) == {"x": [], "y": []}
