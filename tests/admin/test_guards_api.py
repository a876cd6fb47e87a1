"""The rule set's ``guards`` through the admin API, against SQLite and PostgreSQL: read and
written at ``/settings`` (422s naming the field), shown by the revision history and rolled back,
given to ``/validate``, brought by a Waypost document's import (a dry run says which guards it
adds, changes and removes), written by ``/export`` in Waypost's formats and refused by the
others, and used by ``/resolve``."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.guards.conftest import htpasswd_line
from waypost.store._sql import SqlStore

Api = Callable[..., Any]

STAFF = {"basic": {"htpasswd": "/etc/waypost/staff.htpasswd", "realm": "Staff"}}
ADMIN = {"from": "/admin/<path:rest>", "require": "staff"}


def test_settings_read_and_write_guards(api: Api, store: SqlStore) -> None:
    current = api("GET", "/settings", "read")
    assert current.json()["guards"] == {}
    changed = api(
        "PUT",
        "/settings",
        json={"guards": {"staff": STAFF}, "message": "declare staff"},
        headers={"If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["guards"] == {"staff": STAFF}
    assert store.get_settings().guards == {"staff": STAFF}
    created = api("POST", "/rules", json={"rule": ADMIN})
    assert created.status_code == 201, created.text

    # A field left out stays.
    kept = api("PUT", "/settings", json={"allowed_hosts": ["example.com"]}).json()
    assert kept["guards"] == {"staff": STAFF}

    in_use = api("PUT", "/settings", json={"guards": {}})
    assert in_use.status_code == 422, in_use.text
    ((problem,),) = [in_use.json()["problems"]]
    assert problem["path"] == f"rules[{created.json()['id']}].require"
    assert problem["message"].startswith("unknown guard 'staff'")
    assert store.get_settings().guards == {"staff": STAFF}


@pytest.mark.parametrize(
    ("guards", "path", "message"),
    [
        (
            {"staff": {"basic": {"htpasswd": "staff.htpasswd"}}},
            "guards.staff.basic.htpasswd",
            "relative path",
        ),
        ({"staff": {"basik": {}}}, "guards.staff", "did you mean 'basic'?"),
        (
            {"staff": {"session": {"secret_env": "K", "cookie": 3}}},
            "guards.staff",
            "'cookie' is text without quotes, got 3",
        ),
    ],
    ids=["relative-path", "unknown-kind", "bad-option"],
)
def test_settings_refuse_guards_that_do_not_load(
    api: Api, guards: dict[str, Any], path: str, message: str
) -> None:
    response = api("PUT", "/settings", json={"guards": guards})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid"
    assert body["problems"][0]["path"] == path
    assert message in body["problems"][0]["message"]


@pytest.mark.parametrize(
    "guards", [["staff"], {"staff": "basic"}, "staff"], ids=["list", "text-body", "text"]
)
def test_settings_refuse_guards_of_the_wrong_shape(api: Api, guards: Any) -> None:
    response = api("PUT", "/settings", json={"guards": guards})
    assert response.status_code == 422, response.text
    assert any("guards" in p["path"] for p in response.json()["problems"])


def test_the_history_shows_guard_changes_and_rollback_restores_them(
    api: Api, store: SqlStore
) -> None:
    api("PUT", "/settings", json={"guards": {"staff": STAFF}})
    moved = {"basic": {"htpasswd": "/srv/staff.htpasswd"}}
    api("PUT", "/settings", json={"guards": {"staff": moved}, "message": "move the users"})
    revision = api("GET", "/revisions/2", "read").json()
    (change,) = revision["changes"]
    assert change["op"] == "settings"
    assert (change["before"]["guards"], change["after"]["guards"]) == (
        {"staff": STAFF},
        {"staff": moved},
    )
    diff = api("GET", "/revisions/diff", "read", params={"from": 1}).json()
    assert diff["settings"]["after"]["guards"] == {"staff": moved}
    rolled = api("POST", "/revisions/1/rollback", "write")
    assert rolled.status_code == 200, rolled.text
    assert store.get_settings().guards == {"staff": STAFF}


def test_validate_takes_guards(api: Api, store: SqlStore) -> None:
    alone = {"rules": [ADMIN], "guards": {"staff": STAFF}}
    assert api("POST", "/validate", json=alone).json() == {"valid": True, "problems": []}
    bad = api("POST", "/validate", json={"rules": [ADMIN], "guards": {}}).json()
    assert bad["valid"] is False and bad["problems"][0]["path"] == "rules[0].require"
    store.set_settings(guards={"staff": STAFF})
    assert api("POST", "/validate", json={"rule": ADMIN}).json()["valid"] is True


def test_a_waypost_document_brings_its_guards(api: Api, store: SqlStore) -> None:
    content = yaml.safe_dump({"guards": {"staff": STAFF}, "rules": [ADMIN]})
    dry = api(
        "POST", "/import", "write", json={"format": "yaml", "content": content, "dry_run": True}
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["guards"] == ["staff"]
    assert dry.json()["outcome"]["guards_added"] == ["staff"]
    assert store.current_revision() == 0

    done = api("POST", "/import", "write", json={"format": "yaml", "content": content})
    assert done.status_code == 200, done.text
    assert store.get_settings().guards == {"staff": STAFF}
    assert store.load_snapshot().rules == (ADMIN,)

    other = yaml.safe_dump({"guards": {"staff": {"basic": {"htpasswd": "/srv/x"}}}, "rules": []})
    clash = api(
        "POST", "/import", "write", json={"format": "yaml", "content": other, "mode": "append"}
    )
    assert clash.status_code == 422, clash.text
    assert clash.json()["problems"][0]["path"] == "guards.staff"
    relative = yaml.safe_dump({"guards": {"staff": {"basic": {"htpasswd": "x"}}}, "rules": []})
    refused = api("POST", "/import", "write", json={"format": "yaml", "content": relative})
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["path"] == "guards.staff.basic.htpasswd"
    shape = api(
        "POST",
        "/import",
        "write",
        json={"format": "json", "content": '{"guards": [1], "rules": []}'},
    )
    assert shape.status_code == 422
    assert shape.json()["problems"][0]["path"] == "content.guards"


@pytest.mark.parametrize("format", ["yaml", "json"])
def test_export_writes_guards(api: Api, store: SqlStore, format: str) -> None:
    store.replace_rules([ADMIN, {"from": "/a", "to": "/b"}], guards={"staff": STAFF})
    body = api("GET", "/export", "read", params={"format": format}).json()
    document = yaml.safe_load(body["content"])  # JSON is YAML too
    assert document["guards"] == {"staff": STAFF}
    assert document["rules"][0] == ADMIN


@pytest.mark.parametrize("format", ["netlify", "nginx", "csv"])
def test_other_export_formats_refuse_a_guarded_rule_set(
    api: Api, store: SqlStore, format: str
) -> None:
    store.replace_rules([ADMIN, {"from": "/a", "to": "/b"}], guards={"staff": STAFF})
    response = api("GET", "/export", "read", params={"format": format})
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert problems[0]["path"] == "format"
    assert "would serve the guarded areas open" in problems[0]["message"]
    rule_id = store.load_snapshot().rule_ids[0]
    assert problems[1]["path"] == f"rules[{rule_id}].require"


def test_resolve_runs_the_stored_guards(api: Api, store: SqlStore, tmp_path: Path) -> None:
    htpasswd = tmp_path / "staff.htpasswd"
    htpasswd.write_text(htpasswd_line("ann", "s3cret") + "\n")
    store.replace_rules(
        [ADMIN, {"from": "/admin/x", "to": "/y"}],
        guards={"staff": {"basic": {"htpasswd": str(htpasswd)}}},
    )
    denied = api("POST", "/resolve", json={"url": "/admin/x"}).json()
    assert denied["status"] == 401
    ann = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    allowed = api("POST", "/resolve", json={"url": "/admin/x", "headers": {"Authorization": ann}})
    assert (allowed.json()["status"], allowed.json()["location"]) == (301, "/y")
