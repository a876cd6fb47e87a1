"""``POST /api/import`` never destroys stored rules by surprise: merge (the default) deletes
nothing, a replace that deletes more than it keeps needs ``confirm_deletes``, and every import
says what it changed and which revision undoes it. Against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from waypost.store._sql import SqlStore

Api = Callable[..., Any]

STORED = [
    {"name": "home", "from": "/home", "to": "/"},
    {"from": "/blog", "to": "/news"},
    {"from": "/blog", "to": "/nachrichten", "when": {"language": ["de"]}},
    {"from": "/posts/<int:id>", "to": "/p/{id}"},
]


def _seed(store: SqlStore) -> int:
    store.replace_rules(STORED, allowed_hosts=["example.com"], defaults={"status": 301})
    return store.current_revision()


def _import(api: Api, content: str, **body: Any) -> Any:
    return api("POST", "/import", "write", json={"format": "yaml", "content": content, **body})


@pytest.mark.parametrize(
    "content",
    ["", "rules: []\n", "[]\n"],
    ids=["empty-file", "empty-rules", "empty-list"],
)
def test_an_empty_import_merges_nothing_and_deletes_nothing(
    api: Api, store: SqlStore, content: str
) -> None:
    before = _seed(store)
    response = _import(api, content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["mode"], report["revision"], report["rollback_to"]) == ("merge", None, None)
    assert report["outcome"]["deleted"] == 0 and report["outcome"]["kept"] == len(STORED)
    assert store.current_revision() == before
    assert list(store.load_snapshot().rules) == STORED


def test_a_replace_that_deletes_more_than_it_keeps_needs_confirmation(
    api: Api, store: SqlStore
) -> None:
    before = _seed(store)
    refused = _import(api, "rules: []\n", mode="replace")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert (body["error"], body["deleted"], body["kept"]) == ("confirmation_required", 4, 0)
    assert '"confirm_deletes": 4' in body["message"] and "merge" in body["message"]
    assert store.current_revision() == before

    too_few = _import(api, "rules: []\n", mode="replace", confirm_deletes=3)
    assert too_few.status_code == 409 and store.current_revision() == before

    done = _import(api, "rules: []\n", mode="replace", confirm_deletes=4).json()
    assert done["outcome"]["deleted"] == 4 and done["revision"]["counts"]["deleted"] == 4
    assert done["rollback_to"] == before
    assert store.load_snapshot().rules == ()
    undo = api("POST", f"/revisions/{done['rollback_to']}/rollback", "write")
    assert undo.status_code == 200, undo.text
    assert list(store.load_snapshot().rules) == STORED


def test_a_replace_that_keeps_most_rules_goes_ahead(api: Api, store: SqlStore) -> None:
    before = _seed(store)
    edited = [dict(rule) for rule in STORED[:3]]
    edited[1]["to"] = "/articles"  # same from and conditions: the same rule, changed
    content = "defaults: {status: 301}\nallowed_hosts: [example.com]\nrules:\n" + "".join(
        f"  - {rule}\n" for rule in edited
    )
    report = _import(api, content, mode="replace").json()
    assert report["outcome"] == {
        "mode": "replace",
        "previous_revision": before,
        "created": 0,
        "updated": 1,
        "unchanged": 2,
        "deleted": 1,
        "kept": 3,
        "moved": 0,
        "settings_changed": False,
        "dry_run": False,
        "guards_added": [],
        "guards_changed": [],
        "guards_removed": [],
    }


def test_merge_replaces_the_same_rule_in_place_and_adds_the_rest(api: Api, store: SqlStore) -> None:
    _seed(store)
    ids = store.load_snapshot().rule_ids
    content = """\
rules:
  - name: home
    from: /start
    to: /welcome
  - from: /blog
    to: /journal
  - from: /posts/<int:number>
    to: /articles/{number}
  - from: /blog
    to: /blogue
    when: {language: [fr]}
  - from: /new
    to: /fresh
"""
    report = _import(api, content).json()
    assert report["outcome"]["created"] == 2 and report["outcome"]["updated"] == 3
    assert report["outcome"]["deleted"] == 0 and report["outcome"]["kept"] == 4
    snapshot = store.load_snapshot()
    assert snapshot.rule_ids[:4] == ids  # same rules, same ids, same places
    assert [rule.get("to") for rule in snapshot.rules] == [
        "/welcome",  # the same name
        "/journal",  # the same from and conditions
        "/nachrichten",  # the same from, other conditions: not in the file, untouched
        "/articles/{number}",  # the same pattern shape, whatever its variable is called
        "/blogue",  # new: other conditions
        "/fresh",  # new
    ]


def test_merge_adds_settings_and_keeps_the_stored_ones(api: Api, store: SqlStore) -> None:
    _seed(store)
    content = "defaults: {query: drop}\nallowed_hosts: [example.org]\nrules: []\n"
    report = _import(api, content).json()
    assert report["outcome"]["settings_changed"] is True
    settings = store.get_settings()
    assert dict(settings.defaults) == {"status": 301, "query": "drop"}
    assert settings.allowed_hosts == ("example.com", "example.org")


def test_another_format_keeps_the_stored_settings_in_every_mode(api: Api, store: SqlStore) -> None:
    """...but for its peer's order (Netlify: the first matching line), which a merge or append
    keeps out when it does not matter to the file's rules, and a replace takes."""
    _seed(store)
    for mode, path in (("merge", "/x"), ("append", "/y")):
        body = {"format": "netlify", "content": f"{path} /there 301\n", "mode": mode}
        response = api("POST", "/import", "write", json=body)
        assert response.status_code == 200, response.text
        settings = store.get_settings()
        assert (dict(settings.defaults), settings.allowed_hosts) == (
            {"status": 301},
            ("example.com",),
        )
    body = {"format": "netlify", "content": "/z /there 301\n", "mode": "replace"}
    response = api("POST", "/import", "write", json={**body, "confirm_deletes": 9})
    assert response.status_code == 200, response.text
    settings = store.get_settings()
    assert (dict(settings.defaults), settings.allowed_hosts) == (
        {"status": 301, "order": "first_match"},
        ("example.com",),
    )


def test_a_merge_whose_order_decides_is_refused(api: Api, store: SqlStore) -> None:
    before = _seed(store)
    content = "/splat/* /one/:splat 301!\n/splat/foo/* /two 301!\n"
    response = api(
        "POST", "/import", "write", json={"format": "netlify", "content": content, "mode": "merge"}
    )
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["path"] == "defaults.order"
    assert "'/splat/foo/wp/sample'" in problem["message"]
    assert store.current_revision() == before


def test_a_dry_run_counts_what_would_change_and_writes_nothing(api: Api, store: SqlStore) -> None:
    before = _seed(store)
    report = _import(api, "rules: []\n", mode="replace", dry_run=True).json()
    assert report["dry_run"] is True and report["revision"] is None
    assert (report["outcome"]["deleted"], report["outcome"]["kept"]) == (4, 0)
    assert store.current_revision() == before


def test_append_refuses_a_rule_the_store_has(api: Api, store: SqlStore) -> None:
    before = _seed(store)
    response = _import(api, "rules: [{from: /blog, to: /other}]\n", mode="append")
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["path"] == "rules[0]" and "duplicate rule" in problem["message"]
    assert store.current_revision() == before
