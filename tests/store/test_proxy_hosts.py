"""The rule set's ``proxy_hosts`` in the store, against SQLite and PostgreSQL: stored and read back,
checked as the loader checks a rules file (in its words), kept in revisions (diff, rollback), set by
imports in each mode, written by an export; and a database made before migration 4 upgraded in
place, its history still rewinding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from waypost.engine import Engine
from waypost.exceptions import SchemaError, ValidationError
from waypost.store import SetRuleSetSettings, UpsertRule, _sql
from waypost.store._sql import SqlStore
from waypost.store._state import Row, Write, rewind
from waypost.store.migrations import LATEST, MIGRATIONS
from waypost.store.model import ImportMode, RuleSetSettings, Snapshot
from waypost.store.transfer import dump_document, read_document

StoreFactory = Callable[..., SqlStore]

API = {"from": "/api/<path:rest>", "rewrite": "https://api.example.com/{rest}"}
BACKEND = {"from": "/b/<path:rest>", "rewrite": "https://eu.backend.example.org/{rest}"}


def proxied(store: SqlStore, path: str) -> str:
    """What an engine built from the store's snapshot decides for GET ``path``."""
    snapshot = store.load_snapshot()
    engine = Engine(
        snapshot.rules,
        defaults=snapshot.defaults,
        allowed_hosts=snapshot.allowed_hosts,
        proxy_hosts=snapshot.proxy_hosts,
    )
    return engine.resolve("GET", path).describe(detail=False)


def test_proxy_hosts_are_stored_and_a_proxy_rule_then_loads(store: SqlStore) -> None:
    assert store.get_settings().proxy_hosts == ()
    with pytest.raises(ValidationError) as refused:
        store.create_rule(API)
    ((_, message),) = refused.value.problems
    assert "proxies the request to 'api.example.com', and the file lists no proxy_hosts" in message
    assert store.current_revision() == 0

    settings = store.set_settings(proxy_hosts=["api.example.com", "*.backend.example.org"])
    assert settings.proxy_hosts == ("api.example.com", "*.backend.example.org")
    assert settings.to_dict()["proxy_hosts"] == ["api.example.com", "*.backend.example.org"]
    store.create_rule(API)
    store.create_rule(BACKEND)
    assert store.get_settings() == settings
    assert store.load_snapshot().proxy_hosts == settings.proxy_hosts
    assert proxied(store, "/api/items/4?q=1") == "proxy https://api.example.com/items/4?q=1"
    assert proxied(store, "/b/x") == "proxy https://eu.backend.example.org/x"

    # The other settings are left alone by a change of one, and the other way round.
    store.set_settings(allowed_hosts=["example.com"])
    assert store.get_settings().proxy_hosts == settings.proxy_hosts
    both = store.set_settings(proxy_hosts=["api.example.com", "*.example.org"])
    assert (both.allowed_hosts, both.proxy_hosts) == (
        ("example.com",),
        ("api.example.com", "*.example.org"),
    )


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (
            ["api.example.com:8443"],
            "proxy host 'api.example.com:8443' has a port; list the host alone "
            "('api.example.com') and write the port in the rewrite target",
        ),
        (["a/b"], "proxy host must be a host name like 'example.com', got 'a/b'"),
        (
            ["*api.example.com"],
            "a wildcard host is written '*.example.com', got '*api.example.com'",
        ),
    ],
    ids=["port", "slash", "wildcard"],
)
def test_proxy_hosts_are_checked_in_the_loaders_words(
    store: SqlStore, hosts: list[str], expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.set_settings(proxy_hosts=hosts)
    assert caught.value.problems == (("settings", expected),)
    with pytest.raises(ValidationError) as bulk:
        store.apply([SetRuleSetSettings(proxy_hosts=hosts)])
    assert bulk.value.problems == (("changes", expected),)
    assert store.current_revision() == 0


def test_a_proxy_host_in_use_cannot_be_taken_out(store: SqlStore) -> None:
    store.set_settings(proxy_hosts=["api.example.com"])
    rule = store.create_rule(API)
    with pytest.raises(ValidationError) as caught:
        store.set_settings(proxy_hosts=[])
    ((path, message),) = caught.value.problems
    assert path == f"rules[{rule.id}].rewrite"
    assert "to allow it, add the host to the top-level list (proxy_hosts: [api.example.com])" in (
        message
    )
    with pytest.raises(ValidationError) as text:
        store.apply([SetRuleSetSettings(proxy_hosts="api.example.com")])
    assert text.value.problems == (("changes[0].proxy_hosts", "must be a list of host names"),)
    # One bulk change may bring the host and the rule together.
    store.apply(
        [
            SetRuleSetSettings(proxy_hosts=["api.example.com", "*.backend.example.org"]),
            UpsertRule(BACKEND),
        ]
    )
    assert proxied(store, "/b/x") == "proxy https://eu.backend.example.org/x"


def test_revisions_keep_proxy_hosts_and_rollback_restores_them(store: SqlStore) -> None:
    store.set_settings(proxy_hosts=["api.example.com"], message="allow the API")  # 1
    store.create_rule(API)  # 2
    store.set_settings(proxy_hosts=["api.example.com", "*.backend.example.org"])  # 3
    store.create_rule(BACKEND)  # 4

    (change,) = store.get_revision(3).changes
    assert change.op == "settings"
    assert change.before == {
        "defaults": {},
        "allowed_hosts": [],
        "proxy_hosts": ["api.example.com"],
        "guards": {},
    }
    assert change.after is not None
    assert change.after["proxy_hosts"] == ["api.example.com", "*.backend.example.org"]
    assert store.get_revision(3).counts["settings"] == 1

    diff = store.diff(2, 3)
    assert diff.rules == () and diff.settings is not None
    assert [s.proxy_hosts for s in diff.settings] == [
        ("api.example.com",),
        ("api.example.com", "*.backend.example.org"),
    ]
    assert diff.to_dict()["settings"]["after"]["proxy_hosts"] == [
        "api.example.com",
        "*.backend.example.org",
    ]

    rollback = store.rollback(2)
    assert rollback is not None and rollback.counts["settings"] == 1
    assert store.get_settings().proxy_hosts == ("api.example.com",)
    assert proxied(store, "/api/x") == "proxy https://api.example.com/x"
    store.rollback(4)  # and forward again
    assert store.get_settings().proxy_hosts == ("api.example.com", "*.backend.example.org")
    assert proxied(store, "/b/x") == "proxy https://eu.backend.example.org/x"
    store.rollback(0)
    assert store.get_settings().proxy_hosts == () and store.load_snapshot().rules == ()


STORED = ("*.backend.example.org",)


@pytest.mark.parametrize(
    ("mode", "rules", "given", "expected"),
    [
        ("replace", [API], ["api.example.com"], ("api.example.com",)),
        ("merge", [API], ["api.example.com"], (*STORED, "api.example.com")),
        ("append", [API], ["api.example.com"], (*STORED, "api.example.com")),
        ("merge", [], None, STORED),
        ("replace", [BACKEND], None, STORED),
        ("merge", [], [*STORED, "api.example.com"], (*STORED, "api.example.com")),
        ("append", [API], "api.example.com", (*STORED, "api.example.com")),
        ("replace", [{"from": "/x", "to": "/y"}], [], ()),
    ],
    ids=[
        "replace-takes-the-files",
        "merge-adds",
        "append-adds",
        "none-keeps-merge",
        "none-keeps-replace",
        "no-duplicates",
        "one-host-as-text",
        "replace-with-an-empty-list-empties-it",
    ],
)
def test_imports_set_proxy_hosts_as_they_set_allowed_hosts(
    store: SqlStore,
    mode: ImportMode,
    rules: list[dict[str, str]],
    given: list[str] | str | None,
    expected: tuple[str, ...],
) -> None:
    store.replace_rules([BACKEND], proxy_hosts=STORED)
    outcome = store.import_rules(rules, mode=mode, proxy_hosts=given, confirm_deletes=1)
    assert store.get_settings().proxy_hosts == expected
    assert outcome.settings_changed == (expected != STORED)


def test_an_import_whose_rules_proxy_beyond_its_hosts_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValidationError) as caught:
        store.import_rules([{"from": "/ok", "to": "/fine"}, API], proxy_hosts=["other.example"])
    ((path, message),) = caught.value.problems
    assert path == "rules[1].rewrite"
    assert "the file lists proxy_hosts ['other.example']" in message
    assert store.current_revision() == 0


def test_merging_a_proxy_rule_again_replaces_it_in_place(store: SqlStore) -> None:
    store.import_rules([API], proxy_hosts=["api.example.com"])
    (first,) = store.load_snapshot().rule_ids
    edited = {**API, "rewrite": "https://api.example.com/v2/{rest}"}
    outcome = store.import_rules([edited], proxy_hosts=["api.example.com"])
    assert (outcome.created, outcome.updated) == (0, 1)
    assert store.load_snapshot().rule_ids == (first,)
    assert proxied(store, "/api/x") == "proxy https://api.example.com/v2/x"


def test_export_then_import_keeps_proxy_hosts(make_store: StoreFactory, tmp_path: Path) -> None:
    store = make_store()
    store.replace_rules(
        [API, {"from": "/old", "to": "https://example.com/new"}],
        allowed_hosts=["example.com"],
        proxy_hosts=["api.example.com"],
    )
    text = dump_document(store.load_snapshot())
    assert "proxy_hosts:\n- api.example.com\n" in text
    exported = tmp_path / "exported.yaml"
    exported.write_text(text, encoding="utf-8")
    document = read_document(exported)
    assert (document.allowed_hosts, document.proxy_hosts) == (
        ("example.com",),
        ("api.example.com",),
    )
    assert Engine.from_file(exported).ruleset.proxy_hosts == ("api.example.com",)

    other = make_store()
    other.replace_rules(
        document.rules,
        defaults=document.defaults,
        allowed_hosts=document.allowed_hosts,
        proxy_hosts=document.proxy_hosts,
    )
    assert other.get_settings().proxy_hosts == ("api.example.com",)
    assert proxied(other, "/api/x") == "proxy https://api.example.com/x"


def test_a_snapshot_document_lists_proxy_hosts_after_allowed_hosts() -> None:
    snapshot = Snapshot(3, {}, ("a.com",), (API,), proxy_hosts=("api.example.com",))
    assert list(snapshot.to_document()) == ["allowed_hosts", "proxy_hosts", "rules"]
    revision, defaults, hosts, rules = snapshot  # the unpacking from before proxy hosts
    assert (revision, defaults, hosts, rules) == (3, {}, ("a.com",), (API,))


def test_rewinding_a_settings_record_from_before_proxy_hosts_reads_none() -> None:
    old = Write("settings", None, {"defaults": {}, "allowed_hosts": ["a.com"]}, {})
    rows, settings = rewind([Row("r", API, 1)], RuleSetSettings({}, (), 0, ("x.com",)), [old])
    assert rows == [Row("r", API, 1)]
    assert (settings.allowed_hosts, settings.proxy_hosts) == (("a.com",), ())


# -- migration 4 on a database made before it ---------------------------------------------------


def test_a_database_from_before_migration_4_upgrades_in_place(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LATEST >= 4 and MIGRATIONS[3].number == 4
    with monkeypatch.context() as older:  # the Waypost that knew migrations 1 to 3
        older.setattr(_sql, "MIGRATIONS", MIGRATIONS[:3])
        older.setattr(_sql, "LATEST", 3)
        before = make_store(auto_upgrade=False)
        assert before.upgrade() == (0, 3)
        # Settings and rules as that Waypost wrote them (its records have no proxy_hosts).
        with before._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO waypost_revisions (number, created_at, key_id, message, counts) "
                "VALUES (1, ?, NULL, 'hosts', '{\"settings\":1}')",
                (before._time_param(datetime.now(UTC)),),
            )
            conn.execute(
                "INSERT INTO waypost_changes (revision, seq, op, before_rule, after_rule) "
                "VALUES (1, 0, 'settings', ?, ?)",
                (
                    '{"defaults":{},"allowed_hosts":[]}',
                    '{"defaults":{"status":302},"allowed_hosts":["example.com"]}',
                ),
            )
            conn.execute(
                "UPDATE waypost_state SET revision = 1, settings_version = 1, "
                "defaults = '{\"status\":302}', allowed_hosts = '[\"example.com\"]' WHERE id = 1"
            )
        columns = before._read("SELECT * FROM waypost_state")
        assert len(columns[0]) == 5
        before.close()

    stale = make_store(auto_upgrade=False)
    status = stale.schema_status()
    assert (status.version, status.pending) == (
        3,
        tuple(f"{m.number:04d} {m.name}" for m in MIGRATIONS[3:]),
    )
    with pytest.raises(
        SchemaError,
        match=rf"schema version 3, this Waypost needs {LATEST}: run `waypost db upgrade",
    ):
        stale.load_snapshot()

    after = make_store(auto_upgrade=False)
    assert after.upgrade() == (3, LATEST)
    assert after.upgrade() == (LATEST, LATEST)
    settings = after.get_settings()
    assert (settings.defaults, settings.allowed_hosts, settings.proxy_hosts, settings.version) == (
        {"status": 302},
        ("example.com",),
        (),
        1,
    )
    after.set_settings(proxy_hosts=["api.example.com"])  # 2
    after.create_rule(API)  # 3
    assert proxied(after, "/api/x") == "proxy https://api.example.com/x"
    assert after.diff(1, 2).settings is not None

    after.rollback(1)  # through the new records and onto the old one
    settings = after.get_settings()
    assert (settings.defaults, settings.allowed_hosts, settings.proxy_hosts) == (
        {"status": 302},
        ("example.com",),
        (),
    )
    after.rollback(0)  # the old record's before, which has no proxy_hosts either
    assert after.get_settings().to_dict() == {
        "defaults": {},
        "allowed_hosts": [],
        "proxy_hosts": [],
        "guards": {},
        "version": 5,
    }
