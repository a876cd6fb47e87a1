"""The rule set's ``guards`` in the store, against SQLite and PostgreSQL: stored and read back,
checked as declarations with the whole rule set (in the loader's words, naming the field, nothing
half-written), kept in revisions (diff, rollback), combined by imports in each mode, read from a
guarded rules file and written back by an export that loads as the same rule set; and a database
made before migration 5 upgraded in place, its history still rewinding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from waypost.exceptions import ValidationError
from waypost.rules.load import read_rules
from waypost.store import DeleteRule, SetRuleSetSettings, UpsertRule, _sql
from waypost.store._sql import SqlStore
from waypost.store.migrations import LATEST, MIGRATIONS
from waypost.store.model import ImportMode, RuleSetSettings, Snapshot
from waypost.store.transfer import dump_document, read_document

StoreFactory = Callable[..., SqlStore]

STAFF = {"basic": {"htpasswd": "/etc/waypost/staff.htpasswd", "realm": "Staff"}}
PARTNERS = {"api_key": {"audience": "partners"}, "login_url": "/login"}
LOGIN = {"session": {"secret_env": "FLASK_SECRET_KEY"}, "login_url": "/login"}
ADMIN = {"from": "/admin/<path:rest>", "require": "staff"}
REPORTS = {"from": "/reports/<path:rest>", "require": ["staff", "login"], "rewrite": "/r/{rest}"}


def test_guards_are_stored_and_a_guarded_rule_then_loads(store: SqlStore) -> None:
    assert store.get_settings().guards == {}
    with pytest.raises(ValidationError) as refused:
        store.create_rule(ADMIN)
    ((path, message),) = refused.value.problems
    assert path.endswith("require")
    assert "unknown guard 'staff'; the rule set declares no guards" in message
    assert store.current_revision() == 0

    settings = store.set_settings(guards={"staff": STAFF, "login": LOGIN})
    assert settings.guards == {"staff": STAFF, "login": LOGIN}
    assert settings.to_dict()["guards"] == {"staff": STAFF, "login": LOGIN}
    store.create_rule(ADMIN)
    store.create_rule(REPORTS)
    snapshot = store.load_snapshot()
    assert snapshot.guards == {"staff": STAFF, "login": LOGIN}
    assert snapshot.rules == (ADMIN, REPORTS)
    assert store.get_settings() == settings

    # The other settings are left alone by a change of the guards, and the other way round.
    store.set_settings(allowed_hosts=["example.com"])
    assert store.get_settings().guards == settings.guards
    changed = store.set_settings(guards={"staff": STAFF, "login": {**LOGIN, "login_url": "/in"}})
    assert (changed.allowed_hosts, changed.guards["login"]["login_url"]) == (
        ("example.com",),
        "/in",
    )


@pytest.mark.parametrize(
    ("guards", "rules", "path", "expected"),
    [
        (
            {"staff": STAFF},
            [{"from": "/admin/<path:rest>", "require": "staf"}],
            "rules[0].require",
            "unknown guard 'staf'; did you mean 'staff'?",
        ),
        (
            {"staff": {"basik": {"htpasswd": "/x"}}},
            [],
            "guards.staff",
            "unknown guard kind 'basik'; did you mean 'basic'?",
        ),
        (
            {"staff": {"basic": {"htpasswd": "/x", "realn": "Staff"}}},
            [],
            "guards.staff",
            "unknown option 'realn'; did you mean 'realm'?",
        ),
        (
            {"staff": {"basic": {}}},
            [],
            "guards.staff",
            "a 'basic' guard needs 'htpasswd', like basic: {htpasswd: ...}",
        ),
        (
            {"staff": {"basic": {"htpasswd": "staff.htpasswd"}}},
            [],
            "guards.staff.basic.htpasswd",
            "'staff.htpasswd' is a relative path, and the rule store has no rules file for it "
            "to be relative to; give an absolute path (like '/etc/waypost/staff.htpasswd') that "
            "the server can read",
        ),
        (
            {"members": {"jwt": {"public_key": "keys/jwt.pem", "audience": "site"}}},
            [],
            "guards.members.jwt.public_key",
            "'keys/jwt.pem' is a relative path, and the rule store has no rules file",
        ),
        (
            {"staff": {"basic": {"htpasswd": "/x"}, "login_url": "https://evil.example/"}},
            [],
            "guards.staff",
            "login_url",
        ),
        (
            {"staff": {**STAFF, "login_url": "/admin/login"}},
            [ADMIN],
            "rules[0]",
            "login_url '/admin/login' is inside the area guard 'staff' protects",
        ),
        (
            {"staff": {"forward_auth": {}}},
            [],
            "guards.staff",
            "a 'forward_auth' guard needs 'url'",
        ),
    ],
    ids=[
        "unknown-require",
        "unknown-kind",
        "unknown-option",
        "missing-option",
        "relative-htpasswd",
        "relative-public-key",
        "off-site-login-url",
        "login-loop",
        "forward_auth-without-url",
    ],
)
def test_a_rule_set_whose_guards_do_not_load_is_refused_whole(
    store: SqlStore,
    guards: dict[str, Any],
    rules: list[dict[str, Any]],
    path: str,
    expected: str,
) -> None:
    store.create_rule({"from": "/old", "to": "/new"})
    with pytest.raises(ValidationError) as refused:
        store.replace_rules(
            [{"from": "/old", "to": "/new"}, {"from": "/b", "to": "/c"}, *rules], guards=guards
        )
    found = [(where, text) for where, text in refused.value.problems if expected in text]
    assert found, refused.value.problems
    assert found[0][0] == path.replace("rules[0]", "rules[2]")
    # Nothing half-written: the store is as it was.
    assert store.current_revision() == 1
    assert store.load_snapshot().rules == ({"from": "/old", "to": "/new"},)
    assert store.get_settings().guards == {}


def test_guards_must_be_a_mapping(store: SqlStore) -> None:
    with pytest.raises(ValidationError) as refused:
        store.set_settings(guards=["staff"])  # type: ignore[arg-type]
    ((path, message),) = refused.value.problems
    assert path == "guards" and message.startswith("maps a guard name to one kind")


def test_a_guard_a_rule_requires_cannot_be_removed(store: SqlStore) -> None:
    store.set_settings(guards={"staff": STAFF, "login": LOGIN})
    rule = store.create_rule(ADMIN)
    for guards, hint in (
        ({"login": LOGIN}, "declared guards: login"),
        ({}, "the rule set declares no guards"),
    ):
        with pytest.raises(ValidationError) as refused:
            store.set_settings(guards=guards)
        ((path, message),) = refused.value.problems
        assert path == f"rules[{rule.id}].require"
        assert message.startswith("unknown guard 'staff'; ") and hint in message
    # In one bulk change the rule may go with its guard.
    with pytest.raises(ValidationError):
        store.apply([SetRuleSetSettings(guards={"login": LOGIN})])
    store.apply([DeleteRule(rule.id), SetRuleSetSettings(guards={"login": LOGIN})])
    assert store.get_settings().guards == {"login": LOGIN}
    assert store.load_snapshot().rules == ()


def test_no_secret_is_stored_only_references(store: SqlStore) -> None:
    """The option schema has no place for a secret: a password or key given inline is an
    unknown option, refused before anything is written."""
    for inline in (
        {"basic": {"htpasswd": "/x", "password": "hunter2"}},
        {"session": {"secret_env": "K", "secret": "s3cret"}},
        {"jwt": {"secret": "s3cret", "audience": "a"}},
    ):
        with pytest.raises(ValidationError):
            store.set_settings(guards={"g": inline})
    assert store.current_revision() == 0


def test_revisions_keep_guards_and_rollback_restores_them(store: SqlStore) -> None:
    store.set_settings(guards={"staff": STAFF}, message="declare staff")  # 1
    store.create_rule(ADMIN)  # 2
    moved = {"basic": {"htpasswd": "/srv/staff.htpasswd", "realm": "Staff"}}
    store.set_settings(guards={"staff": moved}, message="move the users")  # 3

    revision = store.get_revision(3)
    assert revision.counts["settings"] == 1
    (change,) = revision.changes
    assert change.op == "settings"
    assert change.before is not None and change.after is not None
    assert (change.before["guards"], change.after["guards"]) == ({"staff": STAFF}, {"staff": moved})

    diff = store.diff(1)
    assert diff.settings is not None
    before, after = diff.settings
    assert (before.guards, after.guards) == ({"staff": STAFF}, {"staff": moved})
    assert diff.to_dict()["settings"]["after"]["guards"] == {"staff": moved}
    assert store.diff(2, 2).settings is None

    rolled = store.rollback(1)
    assert rolled is not None and rolled.rollback_of == 1
    assert store.get_settings().guards == {"staff": STAFF}
    assert store.load_snapshot().rules == ()
    # Back to before the guards: the rule that required them goes first, then the guards.
    store.rollback(0)
    assert store.get_settings().guards == {}


@pytest.mark.parametrize(
    ("mode", "given", "expected"),
    [
        ("replace", {"login": LOGIN}, {"login": LOGIN}),
        ("merge", {"login": LOGIN}, {"staff": STAFF, "login": LOGIN}),
        (
            "merge",
            {"staff": {**STAFF, "login_url": "/in"}},
            {"staff": {**STAFF, "login_url": "/in"}},
        ),
        ("append", {"login": LOGIN}, {"staff": STAFF, "login": LOGIN}),
        ("append", {"staff": STAFF}, {"staff": STAFF}),
        ("merge", None, {"staff": STAFF}),
    ],
    ids=[
        "replace-takes-the-files",
        "merge-adds",
        "merge-overrides-by-name",
        "append-adds",
        "append-same-declaration",
        "no-guards-keeps-stored",
    ],
)
def test_imports_combine_guards_by_mode(
    store: SqlStore,
    mode: ImportMode,
    given: dict[str, Any] | None,
    expected: dict[str, Any],
) -> None:
    store.replace_rules([{"from": "/a", "to": "/b"}], guards={"staff": STAFF})
    rules = (
        [{"from": "/account/<path:rest>", "require": "login"}] if given and "login" in given else []
    )
    outcome = store.import_rules(rules, mode=mode, guards=given, confirm_deletes=1)
    assert store.get_settings().guards == expected
    assert outcome.guards_added == tuple(n for n in expected if n != "staff")
    changed = given is not None and mode == "merge" and given.get("staff") not in (None, STAFF)
    assert outcome.guards_changed == (("staff",) if changed else ())
    assert outcome.guards_removed == (("staff",) if "staff" not in expected else ())


def test_append_refuses_a_guard_declared_otherwise(store: SqlStore) -> None:
    store.replace_rules([ADMIN], guards={"staff": STAFF})
    other = {"basic": {"htpasswd": "/srv/other.htpasswd"}}
    dry = store.import_rules([], mode="merge", guards={"staff": other}, dry_run=True)
    assert (dry.guards_changed, dry.revision) == (("staff",), None)
    assert "guard staff changed" in dry.summary()
    with pytest.raises(ValidationError) as refused:
        store.import_rules([], mode="append", guards={"staff": other})
    ((path, message),) = refused.value.problems
    assert path == "guards.staff"
    assert "the stored rule set declares guard 'staff' otherwise" in message
    assert "import with mode merge" in message
    assert store.get_settings().guards == {"staff": STAFF}


GUARDED_FILE = """\
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, realm: Staff}
  partners:
    api_key: {audience: partners}
    login_url: /login
  login:
    session: {secret_env: FLASK_SECRET_KEY}
    login_url: /login
rules:
  - from: /admin/<path:rest>
    require: staff
  - from: /api/partners/<path:rest>
    require: partners
    login_url: /partner-login
  - from: /reports/<path:rest>
    require: [staff, login]
    rewrite: /internal/reports/{rest}
  - from: /old
    to: /new
"""


def _meaning(path: Path) -> tuple[Any, ...]:
    """What a rules file means: its rules and its guards as the loader reads them."""
    ruleset, errors = read_rules(path)
    assert not errors, errors
    return (
        tuple(rule.to_mapping() for rule in ruleset.rules),
        tuple((g.name, g.kind, dict(g.options), g.login_url) for g in ruleset.guards),
    )


def test_a_guarded_file_round_trips_through_the_store(store: SqlStore, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    rules = folder / "rules.yaml"
    rules.write_text(GUARDED_FILE)
    document = read_document(rules)
    # A path relative to the file is the file next to it: absolute in the store.
    htpasswd = str(folder / "staff.htpasswd")
    assert document.guards["staff"] == {"basic": {"htpasswd": htpasswd, "realm": "Staff"}}
    assert document.guards["partners"] == {
        "api_key": {"audience": "partners"},
        "login_url": "/login",
    }
    store.replace_rules(document.rules, defaults=document.defaults, guards=document.guards)

    exported = tmp_path / "elsewhere" / "exported.yaml"
    exported.parent.mkdir()
    text = dump_document(store.load_snapshot())
    exported.write_text(text)
    assert yaml.safe_load(text)["guards"]["staff"]["basic"]["htpasswd"] == htpasswd
    assert _meaning(exported) == _meaning(rules)


def test_snapshot_to_document_writes_guards_before_rules() -> None:
    snapshot = Snapshot(3, {}, (), (ADMIN,), ("r1",), (), {"staff": STAFF})
    assert list(snapshot.to_document()) == ["guards", "rules"]
    assert Snapshot(3, {}, (), (), ()).to_document() == {"rules": []}


def test_settings_keep_positional_construction() -> None:
    assert RuleSetSettings({}, (), 4).guards == {}
    assert RuleSetSettings({}, (), 4, (), {"staff": STAFF}).to_dict()["guards"] == {"staff": STAFF}


def test_apply_sets_guards_with_rules_in_one_revision(store: SqlStore) -> None:
    revision = store.apply(
        [SetRuleSetSettings(guards={"staff": STAFF}), UpsertRule(ADMIN)], message="guard admin"
    )
    assert revision is not None and revision.counts["settings"] == 1
    with pytest.raises(ValidationError) as refused:
        store.apply([SetRuleSetSettings(guards={"staff": {"basic": {"htpasswd": "rel"}}})])
    assert refused.value.problems[0][0] == "changes.guards.staff.basic.htpasswd"


# -- migration 5 on a database made before it --------------------------------------------------


def _columns(store: SqlStore) -> int:
    return len(store._read("SELECT * FROM waypost_state")[0])


def test_a_database_from_before_the_guards_column_upgrades_in_place(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MIGRATIONS[4].number == 5 and "guards" in MIGRATIONS[4].name
    with monkeypatch.context() as older:  # the Waypost that knew migrations 1 to 4
        older.setattr(_sql, "MIGRATIONS", MIGRATIONS[:4])
        older.setattr(_sql, "LATEST", 4)
        before = make_store(auto_upgrade=False)
        assert before.upgrade() == (0, 4)
        with before._begin(write=True) as conn:
            conn.execute(
                "INSERT INTO waypost_revisions (number, created_at, key_id, message, counts) "
                "VALUES (1, ?, NULL, 'old', '{}')",
                (before._time_param(datetime.now(UTC)),),
            )
            conn.execute(
                "INSERT INTO waypost_changes (revision, seq, op, rule_id, before_rule, "
                "after_rule) VALUES (1, 0, 'settings', NULL, ?, ?)",
                (
                    '{"defaults":{},"allowed_hosts":[],"proxy_hosts":[]}',
                    '{"defaults":{"status":302},"allowed_hosts":[],"proxy_hosts":[]}',
                ),
            )
            conn.execute(
                "UPDATE waypost_state SET revision = 1, settings_version = 1, "
                "defaults = '{\"status\":302}' WHERE id = 1"
            )
        assert _columns(before) == 6
        before.close()

    after = make_store(auto_upgrade=False)
    assert after.upgrade() == (4, LATEST)
    assert after.get_settings().guards == {}
    assert after.load_snapshot().guards == {}
    # A record from before the column rewinds as "no guards", and rolls back to it.
    assert after.diff(0, 1).settings is not None
    after.set_settings(guards={"staff": STAFF})
    after.rollback(1)
    settings = after.get_settings()
    assert (settings.defaults, settings.guards) == ({"status": 302}, {})
