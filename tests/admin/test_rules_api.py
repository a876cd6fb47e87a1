"""The rules, settings and history API against SQLite and PostgreSQL: CRUD, ETags and If-Match,
422 problems in the loader's words, bulk all-or-nothing, attribution, rollback."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.admin.admin_support import API, Keys
from waypost.admin import ADMIN_PREFIX, create_admin_app
from waypost.exceptions import RulesError
from waypost.rules.load import parse_rules
from waypost.store._sql import SqlStore

Api = Callable[..., Any]


def _create(api: Api, rule: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = api("POST", "/rules", json={"rule": rule, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_get_list_and_delete(api: Api, keys: Keys, changes: list[int]) -> None:
    created = _create(api, {"from": "/old", "to": "/new"}, message="move the page")
    assert created["rule"] == {"from": "/old", "to": "/new"}
    response = api("GET", f"/rules/{created['id']}", "read")
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{created["version"]}"'
    assert response.json() == created
    listed = api("GET", "/rules", "read").json()
    assert listed == {"rules": [created], "next_cursor": None}
    deleted = api("DELETE", f"/rules/{created['id']}", "write")
    assert deleted.status_code == 200
    assert api("GET", f"/rules/{created['id']}").status_code == 404
    assert changes == [1, 2]
    revision = api("GET", "/revisions/1", "read").json()
    assert (revision["key_id"], revision["message"]) == (keys.id("admin"), "move the page")
    assert api("GET", "/revisions/2").json()["key_id"] == keys.id("write")


def test_list_filters_and_pages(api: Api) -> None:
    for index in range(5):
        _create(api, {"from": f"/docs/{index}", "to": f"/d/{index}"})
    _create(api, {"name": "gone", "from": "/gone", "respond": 410})
    page = api("GET", "/rules", params={"limit": 2, "from_prefix": "/docs/"}).json()
    seen = [rule["rule"]["from"] for rule in page["rules"]]
    while page["next_cursor"]:
        page = api(
            "GET",
            "/rules",
            params={"limit": 2, "from_prefix": "/docs/", "cursor": page["next_cursor"]},
        ).json()
        seen += [rule["rule"]["from"] for rule in page["rules"]]
    assert seen == [f"/docs/{index}" for index in range(5)]
    assert [r["rule"]["from"] for r in api("GET", "/rules?action=respond").json()["rules"]] == [
        "/gone"
    ]
    assert len(api("GET", "/rules?name=gone").json()["rules"]) == 1
    assert len(api("GET", "/rules?search=d/3").json()["rules"]) == 1
    bad = api("GET", "/rules?action=explode")
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "action"


BROKEN = [
    ({"from": "/<itn:id>", "to": "/items/{id}"}, "rule.from"),
    ({"from": "/a/<int:year>", "to": "/b/{yaer}"}, "rule.to"),
    ({"from": "/c", "to": "/d", "stauts": 302}, "rule.stauts"),
    ({"from": "/c", "to": "/d", "when": {"methods": ["GTE"]}}, "rule.when.methods"),
]


@pytest.mark.parametrize(
    ("rule", "path"), BROKEN, ids=["converter", "variable", "unknown-key", "method"]
)
def test_a_bad_rule_is_422_with_the_field_path_and_the_loaders_message(
    api: Api, rule: dict[str, Any], path: str
) -> None:
    response = api("POST", "/rules", json={"rule": rule})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid"
    [problem] = body["problems"]
    _, errors = parse_rules(json.dumps({"rules": [rule]}), format="json", file="x.json")
    assert [problem["message"]] == [error.message for error in errors]
    assert problem["path"] == path
    assert api("GET", "/rules").json()["rules"] == []


def test_every_problem_is_reported_at_once(api: Api) -> None:
    rule = {"from": "/<itn:id>", "to": "/{x}", "stauts": 1}
    problems = api("POST", "/rules", json={"rule": rule}).json()["problems"]
    assert {p["path"] for p in problems} >= {"rule.from", "rule.stauts"}


def test_a_stale_if_match_is_409_with_the_current_state(api: Api) -> None:
    created = _create(api, {"from": "/a", "to": "/b"})
    etag = api("GET", f"/rules/{created['id']}").headers["etag"]
    first = api(
        "PUT",
        f"/rules/{created['id']}",
        json={"rule": {"from": "/a", "to": "/c"}},
        headers={"If-Match": etag},
    )
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    for method, body in [
        ("PUT", {"rule": {"from": "/a", "to": "/d"}}),
        ("PATCH", {"rule": {"to": "/d"}}),
        ("DELETE", None),
    ]:
        stale = api(method, f"/rules/{created['id']}", json=body, headers={"If-Match": etag})
        assert stale.status_code == 409, (method, stale.text)
        assert stale.json()["current"]["rule"] == {"from": "/a", "to": "/c"}
        assert stale.json()["expected"] == created["version"]
        assert stale.headers["etag"] == first.headers["etag"]
    stale_field = api(
        "PUT",
        f"/rules/{created['id']}",
        json={"rule": {"from": "/a", "to": "/d"}, "version": created["version"]},
    )
    assert stale_field.status_code == 409
    assert api("GET", f"/rules/{created['id']}").json()["rule"]["to"] == "/c"


@pytest.mark.parametrize(
    ("if_match", "body_version", "status"),
    [('"x"', None, 400), ('"1"', 2, 400), ("*", None, 200), (None, None, 200)],
    ids=["not-a-version", "disagrees-with-body", "star", "absent-last-write-wins"],
)
def test_if_match_forms(
    api: Api, if_match: str | None, body_version: int | None, status: int
) -> None:
    created = _create(api, {"from": "/a", "to": "/b"})
    headers = {} if if_match is None else {"If-Match": if_match}
    body: dict[str, Any] = {"rule": {"from": "/a", "to": "/z"}}
    if body_version is not None:
        body["version"] = body_version
    response = api("PUT", f"/rules/{created['id']}", json=body, headers=headers)
    assert response.status_code == status, response.text


def test_require_if_match_refuses_a_blind_write(store: SqlStore, keys: Keys) -> None:
    app = create_admin_app(store, prefix=ADMIN_PREFIX, require_if_match=True)
    with TestClient(app) as client:
        rule = store.create_rule({"from": "/a", "to": "/b"})
        headers = keys.bearer("write")
        blind = client.put(
            f"{API}/rules/{rule.id}", json={"rule": {"from": "/a", "to": "/c"}}, headers=headers
        )
        assert blind.status_code == 428
        assert blind.json()["error"] == "if_match_required"
        matched = client.put(
            f"{API}/rules/{rule.id}",
            json={"rule": {"from": "/a", "to": "/c"}},
            headers={**headers, "If-Match": f'"{rule.version}"'},
        )
        assert matched.status_code == 200


def test_patch_merges_into_the_rule_and_moves_it(api: Api) -> None:
    first = _create(api, {"from": "/a", "to": "/b"})
    second = _create(api, {"from": "/c", "to": "/d", "status": 302})
    patched = api(
        "PATCH", f"/rules/{second['id']}", json={"rule": {"status": None}, "position": 0}
    ).json()
    assert patched["rule"] == {"from": "/c", "to": "/d"}
    assert patched["position"] == 0
    assert api("GET", f"/rules/{first['id']}").json()["position"] == 1


def test_bulk_is_all_or_nothing(api: Api) -> None:
    keep = _create(api, {"from": "/keep", "to": "/kept"})
    bad = api(
        "POST",
        "/rules/bulk",
        json={
            "changes": [
                {"op": "upsert", "rule": {"from": "/x", "to": "/y"}},
                {"op": "delete", "id": keep["id"]},
                {"op": "upsert", "rule": {"from": "/q", "to": "/{zz}"}},
            ]
        },
    )
    assert bad.status_code == 422
    assert [p["path"] for p in bad.json()["problems"]] == ["changes[2].rule.to"]
    assert [r["id"] for r in api("GET", "/rules").json()["rules"]] == [keep["id"]]
    stale = api(
        "POST",
        "/rules/bulk",
        json={"changes": [{"op": "delete", "id": keep["id"], "version": keep["version"] + 5}]},
    )
    assert stale.status_code == 409
    good = api(
        "POST",
        "/rules/bulk",
        json={
            "changes": [
                {"op": "upsert", "rule": {"from": "/x", "to": "/y"}},
                {"op": "delete", "id": keep["id"], "version": keep["version"]},
            ],
            "message": "swap",
        },
        scope="write",
    )
    assert good.status_code == 200
    assert good.json()["revision"]["counts"]["created"] == 1
    assert [r["rule"]["from"] for r in api("GET", "/rules").json()["rules"]] == ["/x"]


def test_settings_have_an_etag_and_are_checked(api: Api) -> None:
    current = api("GET", "/settings")
    assert current.json() == {
        "defaults": {},
        "allowed_hosts": [],
        "proxy_hosts": [],
        "guards": {},
        "version": 0,
    }
    changed = api(
        "PUT",
        "/settings",
        json={"defaults": {"status": 302}, "allowed_hosts": ["example.com"]},
        headers={"If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    stale = api("PUT", "/settings", json={"defaults": {}}, headers={"If-Match": '"0"'})
    assert stale.status_code == 409
    assert stale.json()["current"]["defaults"] == {"status": 302}
    bad = api("PUT", "/settings", json={"defaults": {"status": 999}})
    assert bad.status_code == 422
    assert "redirect status must be one of" in bad.json()["problems"][0]["message"]


def test_history_diff_and_rollback(api: Api, keys: Keys) -> None:
    rule = _create(api, {"from": "/a", "to": "/b"})
    api("PUT", f"/rules/{rule['id']}", json={"rule": {"from": "/a", "to": "/c"}})
    _create(api, {"from": "/x", "to": "/y"})
    revisions = api("GET", "/revisions", "read").json()["revisions"]
    assert [r["number"] for r in revisions] == [3, 2, 1]
    assert [r["number"] for r in api("GET", "/revisions?before=3&limit=1").json()["revisions"]] == [
        2
    ]
    diff = api("GET", "/revisions/diff", params={"from": 1}).json()
    assert sorted(d["kind"] for d in diff["rules"]) == ["added", "changed"]
    assert api("GET", "/revisions/9").status_code == 404
    assert api("POST", "/revisions/1/rollback", "read").status_code == 403
    rolled = api("POST", "/revisions/1/rollback", "write", json={"message": "undo"}).json()
    assert rolled["revision"]["rollback_of"] == 1
    assert rolled["revision"]["key_id"] == keys.id("write")
    assert [r["rule"] for r in api("GET", "/rules").json()["rules"]] == [{"from": "/a", "to": "/b"}]
    assert api("POST", "/revisions/4/rollback").json() == {"revision": None}


def test_loader_agrees_with_the_problems_for_a_whole_file() -> None:
    # The messages above are compared with the loader's; make sure the loader does report them.
    _, errors = parse_rules(json.dumps({"rules": [BROKEN[0][0]]}), format="json", file="x.json")
    assert errors and not isinstance(errors, RulesError)
