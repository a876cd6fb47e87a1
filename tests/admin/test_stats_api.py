"""The analytics API against SQLite and PostgreSQL: rule hits (sorted, filtered, paged, one rule's
hourly series by store id and by ``file:line``), unused rules, the not-found log (status, bots,
pages), a redirect made from a 404 row (a revision, the row resolved; a bad one leaves it open),
dismissing, and who may do what. The tables are filled as a server's flush fills them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from unittest.mock import ANY
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.admin.admin_support import API, Keys
from waypost.admin import ADMIN_PREFIX, COOKIE_NAME, CSRF_HEADER
from waypost.store._sql import SqlStore
from waypost.store.stats import NotFoundDelta, RuleHitsDelta, not_found_id

Api = Callable[..., Any]
HOUR = 3600
DAY = 24 * HOUR
# Whole hours, relative to now: the filters take durations back from now ('90d').
NOW = float(int(time.time()) // HOUR * HOUR)
OLD = NOW - 200 * DAY


def iso(moment: float) -> str:
    """A moment as the API writes it (ISO 8601, UTC as 'Z')."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def hits(key: str, count: int, last: float = NOW, hours: dict[int, int] | None = None) -> Any:
    return RuleHitsDelta(key, count, last, last, hours or {int(last): count})


def missing(path: str, count: int, bot_hits: int = 0, last: float = NOW, **sources: Any) -> Any:
    return NotFoundDelta(
        path,
        count,
        bot_hits,
        last,
        last,
        sources.get("referrers", {}),
        sources.get("user_agents", {}),
    )


def create_rule(api: Api, rule: dict[str, Any]) -> str:
    response = api("POST", "/rules", json={"rule": rule})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def walk(api: Api, path: str, field: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a paged list, page by page, checking that no page is empty."""
    page = api("GET", path, "read", params=params).json()
    rows = list(page[field])
    while page["next_cursor"]:
        page = api("GET", path, "read", params={**params, "cursor": page["next_cursor"]}).json()
        assert page[field], "a cursor led to an empty page"
        rows += page[field]
    return rows


# -- rule hits --------------------------------------------------------------------------------


def test_rule_stats_sort_by_hits_or_last_hit(api: Api, store: SqlStore) -> None:
    store.add_rule_hits(
        [
            hits("r-old", 5, last=OLD),
            hits("r-busy", 9, last=NOW - HOUR),
            hits("rules.yaml:12", 1, last=NOW),
        ]
    )
    by_hits = api("GET", "/stats/rules", "read").json()
    assert [row["rule_key"] for row in by_hits["rules"]] == ["r-busy", "r-old", "rules.yaml:12"]
    assert by_hits["next_cursor"] is None
    assert by_hits["rules"][0] == {
        "rule_key": "r-busy",
        "hits": 9,
        "first_at": iso(NOW - HOUR),
        "last_at": iso(NOW - HOUR),
        "name": None,  # no such rule in the store
        "from_path": None,
    }
    latest = api("GET", "/stats/rules?sort=last_at", "read").json()["rules"]
    assert [row["rule_key"] for row in latest] == ["rules.yaml:12", "r-busy", "r-old"]
    fewest = api("GET", "/stats/rules?order=asc", "read").json()["rules"]
    assert [row["rule_key"] for row in fewest] == ["rules.yaml:12", "r-old", "r-busy"]


@pytest.mark.parametrize(
    ("unused_since", "expected"),
    [
        ("90d", ["r-old"]),
        ("2h", ["r-busy", "r-old"]),
        (iso(OLD + DAY), ["r-old"]),
        (datetime.fromtimestamp(OLD - DAY, UTC).date().isoformat(), []),
    ],
    ids=["days", "hours", "iso-time", "iso-date"],
)
def test_rule_stats_with_no_hit_since(
    api: Api, store: SqlStore, unused_since: str, expected: list[str]
) -> None:
    store.add_rule_hits([hits("r-old", 5, last=OLD), hits("r-busy", 9, last=NOW - 3 * HOUR)])
    rows = api("GET", "/stats/rules", "read", params={"unused_since": unused_since}).json()
    assert [row["rule_key"] for row in rows["rules"]] == expected


@pytest.mark.parametrize("sort", ["hits", "last_at"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_rule_stats_pages_walk_every_row_once(
    api: Api, store: SqlStore, sort: str, order: str
) -> None:
    # Ties on purpose: pages break them by key.
    store.add_rule_hits(
        [hits(f"r{index:02}", 1 + index % 3, last=NOW - (index % 4) * HOUR) for index in range(11)]
    )
    whole = api("GET", "/stats/rules", "read", params={"sort": sort, "order": order}).json()
    rows = walk(api, "/stats/rules", "rules", sort=sort, order=order, limit=3)
    assert rows == whole["rules"]
    assert len({row["rule_key"] for row in rows}) == 11


def test_one_rules_series_by_store_id(api: Api, store: SqlStore) -> None:
    rule_id = create_rule(api, {"name": "old", "from": "/old", "to": "/new"})
    first, second = int(NOW - 5 * HOUR), int(NOW - 2 * HOUR)
    store.add_rule_hits([hits(rule_id, 7, last=NOW - 2 * HOUR, hours={first: 3, second: 4})])
    series = api("GET", f"/stats/rules/{rule_id}", "read").json()
    assert series == {
        "rule_key": rule_id,
        "hits": 7,
        "first_at": iso(NOW - 2 * HOUR),
        "last_at": iso(NOW - 2 * HOUR),
        "name": "old",
        "from_path": "/old",
        "hours": [{"hour": iso(first), "hits": 3}, {"hour": iso(second), "hits": 4}],
    }
    since = api("GET", f"/stats/rules/{rule_id}", "read", params={"since": "3h"}).json()
    assert since["hours"] == [{"hour": iso(second), "hits": 4}]
    until = api("GET", f"/stats/rules/{rule_id}", "read", params={"until": iso(second)}).json()
    assert until["hours"] == [{"hour": iso(first), "hits": 3}]
    assert until["hits"] == 7


@pytest.mark.parametrize(
    "rule_key",
    ["rules.yaml:12", "conf/rules.yaml:12", "/srv/site/rules.yaml:3"],
    ids=["file-line", "with-a-slash", "absolute"],
)
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "encoded"])
def test_one_rules_series_by_file_and_line(
    api: Api, store: SqlStore, rule_key: str, encoded: bool
) -> None:
    store.add_rule_hits([hits(rule_key, 2)])
    path = quote(rule_key, safe="") if encoded else rule_key
    response = api("GET", f"/stats/rules/{path}", "read")
    assert response.status_code == 200, response.text
    assert response.json()["rule_key"] == rule_key
    assert response.json()["hours"] == [{"hour": iso(NOW), "hits": 2}]


def test_a_rule_without_hits_is_404(api: Api, store: SqlStore) -> None:
    rule_id = create_rule(api, {"from": "/old", "to": "/new"})
    for key in (rule_id, "rules.yaml:99"):
        response = api("GET", f"/stats/rules/{key}", "read")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert key in response.json()["message"]


def test_unused_rules(api: Api, store: SqlStore) -> None:
    used, stale, never = (
        create_rule(api, {"name": name, "from": f"/{name}", "to": "/x"})
        for name in ("used", "stale", "never")
    )
    store.add_rule_hits([hits(used, 3, last=NOW - HOUR), hits(stale, 4, last=OLD)])
    never_hit = api("GET", "/stats/unused-rules", "read").json()
    assert [rule["rule_id"] for rule in never_hit["rules"]] == [never]
    row = never_hit["rules"][0]
    assert (row["name"], row["from_path"], row["last_hit_at"]) == ("never", "/never", None)
    assert row["created_at"] is not None
    since = api("GET", "/stats/unused-rules?since=90d", "read").json()["rules"]
    assert [(rule["rule_id"], rule["last_hit_at"]) for rule in since] == [
        (stale, iso(OLD)),
        (never, None),
    ]
    # An hour-old hit is older than a minute ago whenever the test runs.
    paged = walk(api, "/stats/unused-rules", "rules", since="1m", limit=1)
    assert [rule["rule_id"] for rule in paged] == [used, stale, never]


# -- the not-found log ------------------------------------------------------------------------


@pytest.fixture
def logged(store: SqlStore) -> SqlStore:
    """A not-found log: a broken link people follow, a path only bots ask, a lighter one."""
    store.add_not_found(
        [
            missing(
                "/old-page",
                10,
                bot_hits=2,
                referrers={"https://blog.example/post": 6, "https://a.example/": 1},
                user_agents={"Firefox": 8, "Googlebot": 2},
            ),
            missing("/wp-login.php", 50, bot_hits=50, last=NOW - HOUR),
            missing("/typo", 3, last=NOW - 2 * HOUR),
        ],
        other=17,
    )
    return store


def test_not_found_lists_peoples_paths_by_default(api: Api, logged: SqlStore) -> None:
    page = api("GET", "/stats/not-found", "read").json()
    assert [row["path"] for row in page["not_found"]] == ["/old-page", "/typo"]
    assert (page["next_cursor"], page["other"]) == (None, 17)
    row = page["not_found"][0]
    assert row == {
        "id": not_found_id("/old-page"),
        "path": "/old-page",
        "hits": 10,
        "bot_hits": 2,
        "first_at": iso(NOW),
        "last_at": iso(NOW),
        "status": "open",
        "resolved_rule_id": None,
        "status_at": None,
        "referrers": [
            {"value": "https://blog.example/post", "hits": 6},
            {"value": "https://a.example/", "hits": 1},
        ],
        "user_agents": [{"value": "Firefox", "hits": 8}, {"value": "Googlebot", "hits": 2}],
        "nearly": None,
    }
    assert api("GET", f"/stats/not-found/{row['id']}", "read").json() == row


def test_each_404_row_says_which_rule_nearly_answered_it(api: Api, logged: SqlStore) -> None:
    beta = create_rule(
        api, {"name": "beta", "from": "/typo", "to": "/fixed", "when": {"headers": {"X-Beta": "1"}}}
    )
    old = create_rule(api, {"name": "old", "from": "/old-page/", "to": "/new-page"})
    rows = {row["path"]: row for row in api("GET", "/stats/not-found", "read").json()["not_found"]}
    assert rows["/typo"]["nearly"]["rule"] == {"id": beta, "name": "beta", "source": ANY}
    assert rows["/typo"]["nearly"]["reason"].startswith(
        "its pattern matches, but condition failed: header 'x-beta'"
    )
    # A rule made since the 404s: it answers the path now.
    assert rows["/old-page"]["nearly"] == {
        "rule": {"id": old, "name": "old", "source": ANY},
        "reason": "it answers the path now (redirect), since the 404s",
    }
    rows = api("GET", "/stats/not-found?bots=include", "read").json()["not_found"]
    assert {row["path"]: row["nearly"] for row in rows}["/wp-login.php"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"bots": "include"}, ["/wp-login.php", "/old-page", "/typo"]),
        ({"bots": "include", "order": "asc"}, ["/typo", "/old-page", "/wp-login.php"]),
        ({"sort": "last_at"}, ["/old-page", "/typo"]),
        (
            {"sort": "last_at", "order": "asc", "bots": "include"},
            ["/typo", "/wp-login.php", "/old-page"],
        ),
        ({"status": "dismissed"}, []),
        ({"status": "all"}, ["/old-page", "/typo"]),
    ],
    ids=["bots", "bots-asc", "latest", "earliest-with-bots", "dismissed", "all"],
)
def test_not_found_filters_and_sorts(
    api: Api, logged: SqlStore, params: dict[str, str], expected: list[str]
) -> None:
    page = api("GET", "/stats/not-found", "read", params=params)
    assert page.status_code == 200, page.text
    assert [row["path"] for row in page.json()["not_found"]] == expected


@pytest.mark.parametrize("bots", ["include", "exclude"])
@pytest.mark.parametrize("sort", ["hits", "last_at"])
def test_not_found_pages_walk_every_row_once(
    api: Api, store: SqlStore, bots: str, sort: str
) -> None:
    store.add_not_found(
        [
            missing(
                f"/gone/{index}", 1 + index % 3, bot_hits=index % 2, last=NOW - index % 4 * HOUR
            )
            for index in range(13)
        ]
    )
    params = {"bots": bots, "sort": sort}
    whole = api("GET", "/stats/not-found", "read", params=params).json()["not_found"]
    rows = walk(api, "/stats/not-found", "not_found", limit=4, **params)
    assert rows == whole
    # Paths that only bots asked for (1 hit, 1 from a bot: 3 and 9) count only with the bots.
    assert len({row["id"] for row in rows}) == len(rows) == (13 if bots == "include" else 11)


def test_a_redirect_from_a_404_row_is_a_revision_and_resolves_the_row(
    api: Api, logged: SqlStore, keys: Keys, changes: list[int]
) -> None:
    row_id = not_found_id("/old-page")
    response = api(
        "POST",
        f"/stats/not-found/{row_id}/rule",
        "write",
        json={"to": "/new-page", "status": 308, "name": "old-page"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    rule = body["rule"]
    assert rule["rule"] == {
        "from": "/old-page",
        "to": "/new-page",
        "status": 308,
        "name": "old-page",
    }
    assert response.headers["location"] == f"{ADMIN_PREFIX}/api/rules/{rule['id']}"
    assert body["not_found"]["status"] == "resolved"
    assert body["not_found"]["resolved_rule_id"] == rule["id"]
    assert body["not_found"]["status_at"] is not None
    assert api("GET", f"/rules/{rule['id']}", "read").json() == rule
    revision = api("GET", f"/revisions/{rule['version']}", "read").json()
    assert revision["key_id"] == keys.id("write")
    assert revision["message"] == "redirect /old-page (answered 404) to /new-page"
    assert [change["rule_id"] for change in revision["changes"]] == [rule["id"]]
    assert changes == [rule["version"]]
    assert [row["path"] for row in api("GET", "/stats/not-found").json()["not_found"]] == ["/typo"]
    resolved = api("GET", "/stats/not-found?status=resolved").json()["not_found"]
    assert [row["id"] for row in resolved] == [row_id]
    decision = api("GET", "/resolve", "read", params={"url": "http://x/old-page"}).json()
    assert (decision["status"], decision["location"]) == (308, "/new-page")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"to": "/items/{id}"}, "to"),
        ({"to": "/new", "status": 200}, "status"),
        ({"to": "/new", "position": 5, "name": 7}, "name"),
    ],
    ids=["unknown-variable", "not-a-redirect-status", "schema"],
)
def test_a_refused_redirect_is_422_and_the_row_stays_open(
    api: Api, logged: SqlStore, changes: list[int], body: dict[str, Any], path: str
) -> None:
    row_id = not_found_id("/old-page")
    response = api("POST", f"/stats/not-found/{row_id}/rule", "write", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
    assert path in [problem["path"] for problem in response.json()["problems"]]
    row = api("GET", f"/stats/not-found/{row_id}", "read").json()
    assert (row["status"], row["resolved_rule_id"]) == ("open", None)
    assert api("GET", "/rules").json()["rules"] == []
    assert api("GET", "/revisions").json()["revisions"] == []
    assert changes == []


def test_a_redirect_that_clashes_with_a_stored_rule_is_refused(api: Api, logged: SqlStore) -> None:
    create_rule(api, {"from": "/old-page", "to": "/elsewhere"})
    response = api(
        "POST", f"/stats/not-found/{not_found_id('/old-page')}/rule", json={"to": "/new-page"}
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["problems"]
    assert problem["path"] == ""  # the rule as a whole
    assert "duplicate rule" in problem["message"]
    assert logged.get_not_found(not_found_id("/old-page")).status == "open"


def test_a_path_that_is_no_pattern_is_422_naming_from(api: Api, store: SqlStore) -> None:
    store.add_not_found([missing("/a<b", 2)])
    response = api("POST", f"/stats/not-found/{not_found_id('/a<b')}/rule", json={"to": "/b"})
    assert response.status_code == 422, response.text
    assert [problem["path"] for problem in response.json()["problems"]] == ["from"]
    assert store.get_not_found(not_found_id("/a<b")).status == "open"


def test_dismissing_a_row(api: Api, logged: SqlStore) -> None:
    row_id = not_found_id("/typo")
    response = api("DELETE", f"/stats/not-found/{row_id}", "write")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["path"]) == ("dismissed", "/typo")
    assert [r["path"] for r in api("GET", "/stats/not-found").json()["not_found"]] == ["/old-page"]
    dismissed = api("GET", "/stats/not-found?status=dismissed").json()["not_found"]
    assert [row["id"] for row in dismissed] == [row_id]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/stats/not-found/0123456789abcdef", None),
        ("DELETE", "/stats/not-found/0123456789abcdef", None),
        ("POST", "/stats/not-found/0123456789abcdef/rule", {"to": "/new"}),
    ],
    ids=["get", "dismiss", "redirect"],
)
def test_an_unknown_row_is_404(
    api: Api, logged: SqlStore, method: str, path: str, body: Any
) -> None:
    response = api(method, path, json=body)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert api("GET", "/revisions").json()["revisions"] == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/stats/rules?cursor=nonsense", "cursor"),
        ("/stats/not-found?cursor=nonsense", "cursor"),
        ("/stats/unused-rules?cursor=nonsense", "cursor"),
        ("/stats/rules?unused_since=soon", "query.unused_since"),
        ("/stats/rules?unused_since=99999999999d", "query.unused_since"),
        ("/stats/rules/r1?since=1200-01-01", "query.since"),
        ("/stats/rules/r1?until=tomorrow", "query.until"),
        ("/stats/unused-rules?since=yesterday", "query.since"),
        ("/stats/rules?limit=0", "query.limit"),
        ("/stats/rules?limit=1001", "query.limit"),
        ("/stats/rules?sort=name", "query.sort"),
        ("/stats/not-found?status=closed", "query.status"),
        ("/stats/not-found?bots=only", "query.bots"),
    ],
)
def test_a_bad_query_is_422_naming_the_parameter(
    api: Api, store: SqlStore, path: str, field: str
) -> None:
    store.add_rule_hits([hits("r1", 1)])
    response = api("GET", path, "read")
    assert response.status_code == 422, response.text
    assert [problem["path"] for problem in response.json()["problems"]] == [field]


def test_a_cursor_of_another_sort_is_refused(api: Api, store: SqlStore) -> None:
    store.add_rule_hits([hits(f"r{index}", index + 1) for index in range(3)])
    cursor = api("GET", "/stats/rules?limit=1", "read").json()["next_cursor"]
    response = api(
        "GET", "/stats/rules", "read", params={"limit": 1, "cursor": cursor, "sort": "last_at"}
    )
    assert response.status_code == 422


# -- who may do what --------------------------------------------------------------------------

READS = ["/stats/rules", "/stats/rules/rules.yaml:12", "/stats/unused-rules", "/stats/not-found"]
WRITES = [
    ("POST", f"/stats/not-found/{not_found_id('/old-page')}/rule", {"to": "/new"}),
    ("DELETE", f"/stats/not-found/{not_found_id('/old-page')}", None),
]


@pytest.mark.parametrize("path", READS)
def test_a_read_key_reads_and_no_key_is_401(
    api: Api, client: TestClient, logged: SqlStore, path: str
) -> None:
    logged.add_rule_hits([hits("rules.yaml:12", 1)])
    assert api("GET", path, "read").status_code == 200
    anonymous = client.get(f"{API}{path}", headers={"Accept": "application/json"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=["redirect", "dismiss"])
def test_a_read_key_cannot_write(
    api: Api, client: TestClient, logged: SqlStore, method: str, path: str, body: Any
) -> None:
    response = api(method, path, "read", json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    anonymous = client.request(method, f"{API}{path}", json=body)
    assert anonymous.status_code == 401
    assert logged.get_not_found(not_found_id("/old-page")).status == "open"


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=["redirect", "dismiss"])
def test_a_signed_in_write_needs_the_csrf_header(
    client: TestClient, keys: Keys, logged: SqlStore, method: str, path: str, body: Any
) -> None:
    signed = client.post(f"{ADMIN_PREFIX}/login", data={"key": keys.write, "next": "/"})
    assert signed.status_code == 303, signed.text
    token = signed.cookies[COOKIE_NAME]
    client.cookies.clear()
    cookie = {"Cookie": f"{COOKIE_NAME}={token}", "Accept": "application/json"}
    refused = client.request(method, f"{API}{path}", json=body, headers=cookie)
    assert (refused.status_code, refused.json()["error"]) == (403, "csrf")
    assert logged.get_not_found(not_found_id("/old-page")).status == "open"
    csrf = {**cookie, CSRF_HEADER: "1", "Origin": "http://testserver"}
    done = client.request(method, f"{API}{path}", json=body, headers=csrf)
    assert done.status_code in (200, 201), done.text
    assert logged.get_not_found(not_found_id("/old-page")).status != "open"


def test_the_openapi_document_has_the_analytics(client: TestClient) -> None:
    document = client.get(f"{API}/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/stats/rules",
        "/stats/rules/{rule_key}",
        "/stats/unused-rules",
        "/stats/not-found",
        "/stats/not-found/{row_id}",
        "/stats/not-found/{row_id}/rule",
        "/stats/visits",
    ):
        assert f"{API}{path}" in paths, path
    assert set(paths[f"{API}/stats/not-found/{{row_id}}"]) == {"get", "delete"}
    schemas = document["components"]["schemas"]
    for name in ("RuleStatsOut", "RuleSeriesOut", "NotFoundOut", "NotFoundRuleOut", "VisitOut"):
        assert schemas[name]["additionalProperties"] is False
        assert all("description" in field for field in schemas[name]["properties"].values()) or (
            name == "NotFoundRuleOut"
        )


def test_visits_newest_first_by_rule_and_paged(api: Api, store: SqlStore) -> None:
    from waypost.stats.visits import Visit

    store.add_visits(
        [
            (
                Visit(
                    NOW - n, f"r{n % 2}", f"/to/{n}", "https://a.example/", "Firefox", "203.0.113.0"
                ),
                "DE",
            )
            for n in range(3)
        ]
    )
    page = api("GET", "/stats/visits?limit=2", "read").json()
    assert [v["location"] for v in page["visits"]] == ["/to/0", "/to/1"]
    assert page["visits"][0]["country"] == "DE" and page["visits"][0]["client"] == "203.0.113.0"
    rest = api("GET", f"/stats/visits?limit=2&cursor={page['next_cursor']}", "read").json()
    assert [v["location"] for v in rest["visits"]] == ["/to/2"] and rest["next_cursor"] is None
    only = api("GET", "/stats/visits?rule=r1", "read").json()["visits"]
    assert [v["location"] for v in only] == ["/to/1"]
