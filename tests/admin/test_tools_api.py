"""Validate, resolve and explain, import and export, and API keys, against SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.admin.admin_support import Keys
from waypost.store._sql import SqlStore

Api = Callable[..., Any]


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({"rule": {"from": "/new", "to": "/x"}}, []),
        ({"rule": {"from": "/old", "to": "/x"}}, [("rule", "duplicate rule")]),
        ({"rule": {"from": "/q", "to": "/{zz}"}}, [("rule.to", "target variable 'zz'")]),
        (
            {"changes": [{"op": "upsert", "rule": {"from": "/q", "to": "/{zz}"}}]},
            [("changes[0].rule.to", "target variable 'zz'")],
        ),
        ({"changes": [{"op": "delete", "id": "nope"}]}, [("changes[0].id", "no rule 'nope'")]),
        (
            {"rules": [{"from": "/a", "to": "/b"}, {"from": "/a", "to": "/c"}]},
            [("rules[1]", "duplicate rule")],
        ),
        ({"rules": [], "defaults": {"status": 999}}, [("settings", "redirect status")]),
    ],
    ids=[
        "good-rule",
        "duplicate-of-stored",
        "bad-target",
        "bulk",
        "bulk-unknown-id",
        "rule-set",
        "defaults",
    ],
)
def test_validate_reports_every_problem_and_writes_nothing(
    api: Api, store: SqlStore, body: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    store.create_rule({"from": "/old", "to": "/new"})
    before = store.current_revision()
    response = api("POST", "/validate", "read", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["valid"] is (not problems)
    assert len(got["problems"]) == len(problems), got
    for problem, (path, text) in zip(got["problems"], problems, strict=True):
        assert problem["path"] == path
        assert text in problem["message"]
    assert store.current_revision() == before


def test_validate_a_rule_in_place_of_a_stored_one(api: Api, store: SqlStore) -> None:
    rule = store.create_rule({"from": "/old", "to": "/new"})
    body = {"rule": {"from": "/old", "to": "/newer"}, "id": rule.id}
    assert api("POST", "/validate", json=body).json() == {"valid": True, "problems": []}
    assert api("POST", "/validate", json={}).status_code == 422


def test_resolve_and_explain_follow_the_stored_rules(api: Api, store: SqlStore) -> None:
    rule = store.create_rule({"name": "post", "from": "/p/<int:id>", "to": "/posts/{id}"})
    decision = api("GET", "/resolve", "read", params={"url": "/p/7?x=1"}).json()
    assert (decision["action"], decision["status"], decision["location"]) == (
        "redirect",
        301,
        "/posts/7?x=1",
    )
    assert decision["rule"]["id"] == rule.id
    assert decision["revision"] == 1
    # A change made elsewhere (another process) is seen: the engine is rebuilt by revision.
    store.update_rule(rule.id, {"name": "post", "from": "/p/<int:id>", "to": "/articles/{id}"})
    posted = api(
        "POST",
        "/resolve",
        json={"url": "/p/7", "method": "head", "headers": {"Accept": "text/html"}},
    ).json()
    assert (posted["location"], posted["revision"]) == ("/articles/7", 2)
    trace = api("POST", "/explain", json={"url": "/p/x"}).json()
    assert trace["decision"]["action"] == "pass"
    trace = api("GET", "/explain", params={"url": "/p/7"}).json()
    assert [step["outcome"] for step in trace["steps"]] == ["applied"]
    assert trace["steps"][0]["rule"]["id"] == rule.id


def test_the_engine_is_built_once_per_revision(api: Api, store: SqlStore, app: Any) -> None:
    store.create_rule({"from": "/a", "to": "/b"})
    cache = app.state.waypost_admin.engines
    api("GET", "/resolve", params={"url": "/a"})
    first = cache.get()
    api("GET", "/resolve", params={"url": "/a"})
    assert cache.get() is first
    store.create_rule({"from": "/c", "to": "/d"})
    assert cache.get() is not first


NETLIFY = "/a /b 301\n/c /d 302\nthis is not a rule\n"
YAML = """\
defaults: {status: 302}
allowed_hosts: [example.com]
rules:
  - from: /x
    to: /y
"""


def test_import_replaces_with_a_waypost_document(api: Api, store: SqlStore, keys: Keys) -> None:
    store.create_rule({"from": "/old", "to": "/new"})
    response = api(
        "POST",
        "/import",
        "write",
        json={"format": "yaml", "content": YAML, "mode": "replace", "confirm_deletes": 1},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["imported"], report["skipped"], report["dry_run"]) == (1, [], False)
    assert report["revision"]["key_id"] == keys.id("write")
    snapshot = store.load_snapshot()
    assert snapshot.rules == ({"from": "/x", "to": "/y"},)
    assert (dict(snapshot.defaults), snapshot.allowed_hosts) == ({"status": 302}, ("example.com",))


def test_import_appends_another_format_and_reports_skipped_lines(api: Api, store: SqlStore) -> None:
    store.create_rule({"from": "/old", "to": "/new"})
    dry = api(
        "POST",
        "/import",
        json={"content": NETLIFY, "filename": "_redirects", "mode": "append", "dry_run": True},
    ).json()
    assert (dry["format"], dry["imported"], dry["dry_run"], dry["revision"]) == (
        "netlify",
        2,
        True,
        None,
    )
    assert store.current_revision() == 1
    report = api(
        "POST", "/import", json={"content": NETLIFY, "format": "netlify", "mode": "append"}
    ).json()
    assert report["imported"] == 2
    assert [s["line"] for s in report["skipped"]] == [3]
    assert report["summary"].startswith("2 imported, 1 skipped")
    assert [rule["from"] for rule in store.load_snapshot().rules] == ["/old", "/a", "/c"]


@pytest.mark.parametrize(
    "body",
    [
        {"format": "htaccess"},
        {"format": "auto", "filename": "public/.htaccess"},
    ],
    ids=["format", "file-name"],
)
def test_import_reads_a_htaccess_as_one(api: Api, body: dict[str, Any]) -> None:
    content = "RewriteEngine On\nRewriteRule ^old$ /new [R=301]\nRewriteRule ^/gone$ /x [R]\n"
    report = api("POST", "/import", json={**body, "content": content, "dry_run": True}).json()
    assert (report["format"], report["imported"]) == ("htaccess", 1)
    assert [s["line"] for s in report["skipped"]] == [3]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"format": "yaml", "content": "rules: [{from: /a, to: '/{x}'}]"}, "rules[0].to"),
        ({"format": "yaml", "content": "rules: [oops"}, "content"),
        ({"format": "json", "content": "[1, 2"}, "content"),
        ({"format": "klingon", "content": ""}, "format"),
        ({"format": "auto", "content": "??", "filename": "x.bin"}, "format"),
    ],
    ids=["bad-rule", "bad-yaml", "bad-json", "unknown-format", "undetectable"],
)
def test_a_bad_import_is_422_and_writes_nothing(
    api: Api, store: SqlStore, body: dict[str, Any], path: str
) -> None:
    response = api("POST", "/import", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["path"] == path
    assert store.current_revision() == 0


@pytest.mark.parametrize("format", ["yaml", "json", "nginx", "netlify", "csv"])
def test_export(api: Api, store: SqlStore, format: str) -> None:
    store.replace_rules([{"from": "/a", "to": "/b"}, {"from": "/c", "respond": 410}])
    body = api("GET", "/export", "read", params={"format": format}).json()
    assert (body["format"], body["revision"]) == (format, 1)
    assert "/a" in body["content"]
    assert body["exported"] + len(body["unsupported"]) == 2
    for item in body["unsupported"]:
        assert item["rule_id"] and item["reason"]
    assert body["notes"] == []


def test_export_lists_the_notes_of_rules_carried_with_a_difference(
    api: Api, store: SqlStore
) -> None:
    store.replace_rules([{"from": "/blog/<path:rest>", "to": "/new/{rest}"}])
    body = api("GET", "/export", "read", params={"format": "apache"}).json()
    assert body["exported"] == 1 and body["unsupported"] == []
    (note,) = body["notes"]
    assert note["index"] == 0 and note["rule_id"]
    assert note["note"].startswith("rule 1 (from '/blog/<path:rest>'): note: ")


def test_export_of_an_unknown_format_is_422(api: Api) -> None:
    response = api("GET", "/export", params={"format": "word"})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == "format"


def test_keys_create_once_list_and_revoke(api: Api, keys: Keys) -> None:
    created = api("POST", "/keys", json={"scope": "read", "note": "dashboard", "expires": "30d"})
    assert created.status_code == 201, created.text
    body = created.json()
    secret, key = body["secret"], body["key"]
    assert secret.startswith(f"wp_{key['id']}_")
    assert key["created_by"] == keys.id("admin")
    listed = api("GET", "/keys").json()
    assert key["id"] in [k["id"] for k in listed]
    assert secret not in str(listed)
    own = {"Authorization": f"Bearer {secret}"}
    assert api("GET", "/me", headers=own).json()["id"] == key["id"]
    revoked = api("DELETE", f"/keys/{key['id']}").json()
    assert revoked["status"] == "revoked"
    refused = api("GET", "/me", headers=own)
    assert refused.status_code == 401  # at once in this process
    assert api("DELETE", "/keys/nosuchkey").status_code == 404
    bad = api("POST", "/keys", json={"scope": "read", "expires": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "expires"


def test_export_narrows_a_host_from_the_request_to_the_allowed_hosts(
    api: Api, store: SqlStore
) -> None:
    store.replace_rules(
        [{"from": "/out/<site>/<path:rest>", "to": "https://{site}/{rest}"}],
        allowed_hosts=["*.example.org"],
    )
    body = api("GET", "/export", "read", params={"format": "nginx"}).json()
    assert body["exported"] == 1 and body["unsupported"] == []
    assert "[eE][xX][aA][mM][pP][lL][eE]" in body["content"]  # only the allowed hosts match
