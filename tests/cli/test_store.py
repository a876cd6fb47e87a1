"""``waypost db ...``, ``waypost keys ...`` and ``waypost sessions ...`` through click's
CliRunner."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from waypost.cli import main
from waypost.engine import Engine
from waypost.exceptions import WaypostError
from waypost.store import open_store
from waypost.store.migrations import LATEST
from waypost.store.sessions import hash_token, token_session_id

EXAMPLES = Path(__file__).parents[2] / "examples" / "rules.yaml"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rules.db'}"


def test_upgrade_and_status(db: str) -> None:
    before = run("db", "status", "--db", db)
    assert before.exit_code == 0
    assert f"schema version 0 of {LATEST}" in before.output and "pending: 0001" in before.output
    assert "waypost db upgrade" in before.output
    first = run("db", "upgrade", "--db", db)
    assert first.exit_code == 0 and f"from version 0 to {LATEST}" in first.output
    again = run("db", "upgrade", "--db", db)
    assert again.exit_code == 0 and f"already at version {LATEST}" in again.output
    status = run("db", "status", "--db", db, "--json")
    assert json.loads(status.output) == {
        "version": LATEST,
        "latest": LATEST,
        "pending": [],
        "revision": 0,
        "rules": 0,
    }


def test_import_export_history_diff_rollback(db: str, tmp_path: Path) -> None:
    imported = run("db", "import", str(EXAMPLES), "--db", db, "-m", "first import")
    assert imported.exit_code == 0, imported.output
    assert "8 rules imported as revision 1 (8 created" in imported.output
    assert "no changes" in run("db", "import", str(EXAMPLES), "--db", db).output

    exported = run("db", "export", "--db", db)
    assert exported.exit_code == 0
    out = tmp_path / "out.yaml"
    out.write_text(exported.output, encoding="utf-8")
    original, back = Engine.from_file(EXAMPLES), Engine.from_file(out)
    assert [r.to_mapping() for r in back.rules] == [r.to_mapping() for r in original.rules]
    assert run("db", "export", "--db", db, "-o", str(tmp_path / "o.yaml")).exit_code == 0
    assert (tmp_path / "o.yaml").read_text(encoding="utf-8") == exported.output

    edited = tmp_path / "edited.yaml"
    edited.write_text(EXAMPLES.read_text().replace("status: 308", "status: 301"), encoding="utf-8")
    assert "revision 2 (0 created, 1 updated" in run("db", "import", str(edited), "--db", db).output

    history = run("db", "history", "--db", db)
    lines = history.output.splitlines()
    assert len(lines) == 2 and "import edited.yaml" in lines[0] and "first import" in lines[1]
    assert json.loads(run("db", "history", "--db", db, "--json").output)[1]["number"] == 1

    diff = run("db", "diff", "1", "--db", db)
    assert diff.output.startswith("~ ") and '"status": 301' in diff.output
    assert (
        json.loads(run("db", "diff", "1", "2", "--db", db, "--json").output)["rules"][0]["kind"]
        == "changed"
    )
    assert "same rules" in run("db", "diff", "2", "2", "--db", db).output

    rolled = run("db", "rollback", "1", "--db", db)
    assert rolled.exit_code == 0 and "as revision 3" in rolled.output
    assert run("db", "export", "--db", db).output.replace("revision 3", "revision 1") == (
        exported.output
    )
    assert "already" in run("db", "rollback", "3", "--db", db).output


def test_import_reports_file_errors_without_a_traceback(db: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - from: /a\n    to: /b\n  - from: /<itn:x>\n    to: /c\n")
    result = CliRunner().invoke(main, ["db", "import", str(broken), "--db", db])
    assert result.exit_code == 1
    assert f"{broken}:4:" in result.output and "did you mean 'int'?" in result.output
    assert "Traceback" not in result.output


def test_a_csv_tables_problems_are_at_its_lines_and_nothing_is_written(
    db: str, tmp_path: Path
) -> None:
    # A CSV table is read, then built and checked once, by the store: its problems (the
    # loader's and the engine's duplicates alike) still name the file and the row's line.
    table = tmp_path / "moves.csv"
    table.write_text(
        "from,to,status\n/a,/b,301\n/c,/d,399\n/<itn:x>,/e,301\n/a,/f,302\n/g,/h,\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["db", "import", str(table), "--db", db])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{table}:3: status: redirect status must be one of" in result.output
    assert f"{table}:4: from: unknown converter 'itn'" in result.output
    assert f"{table}:6:" not in result.output  # a row without status takes 301: no problem
    # The engine's duplicates come once the rows build.
    table.write_text("from,to,status\n/a,/b,301\n/c,/d,301\n/a,/f,302\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["db", "import", str(table), "--db", db])
    assert result.exit_code == 1, result.output
    assert f"{table}:4:" in result.output and "'/a'" in result.output, result.output
    assert run("db", "status", "--db", db, "--json").output.count('"revision": 0') == 1


def test_a_csv_table_is_stored_as_its_rows(db: str, tmp_path: Path) -> None:
    table = tmp_path / "moves.csv"
    table.write_text("from,to,status,name\n/a,/b,302,\n/c,/d,,moved\n", encoding="utf-8")
    assert run("db", "import", str(table), "--db", db).exit_code == 0
    exported = run("db", "export", "--db", db).output
    assert "- from: /a\n  to: /b\n  status: 302\n" in exported
    assert "- name: moved\n  from: /c\n  to: /d\n  status: 301\n" in exported


def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "export", "--db", f"sqlite:///{tmp_path}"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot use the SQLite database")
    result = CliRunner().invoke(main, ["db", "status", "--db", "mysql://x/y"])
    assert result.exit_code == 1 and "unknown database URL" in result.output
    assert "Traceback" not in result.output
    assert (
        CliRunner().invoke(main, ["db", "rollback", "9", "--db", str(tmp_path / "a.db")]).exit_code
        == 1
    )


def test_keys_create_list_revoke(db: str) -> None:
    created = CliRunner().invoke(
        main,
        [
            "keys",
            "create",
            "--scope",
            "write",
            "--expires",
            "30d",
            "--note",
            "ci bot",
            "--host",
            "admin.example.com",
            "--db",
            db,
        ],
    )
    assert created.exit_code == 0
    presented = created.stdout.strip()
    assert presented.startswith("wp_") and len(created.stdout.splitlines()) == 1
    assert "shown only once" in created.stderr and "only for admin.example.com" in created.stderr
    key_id = presented.split("_")[1]

    listed = run("keys", "list", "--db", db)
    assert key_id in listed.output and "active" in listed.output and "ci bot" in listed.output
    assert presented.split("_", 2)[2] not in listed.output
    as_json = json.loads(run("keys", "list", "--db", db, "--json").output)
    assert as_json[0]["host"] == "admin.example.com" and as_json[0]["last_used_at"] is None

    revoked = run("keys", "revoke", key_id, "--db", db)
    assert revoked.exit_code == 0 and f"revoked API key {key_id}" in revoked.output
    assert "revoked" in run("keys", "list", "--db", db).output
    assert CliRunner().invoke(main, ["keys", "revoke", "nope", "--db", db]).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "root"], "'root' is not one of"),
        (["--scope", "read", "--expires", "soon"], "'soon' is not an expiry"),
    ],
    ids=["scope", "expiry"],
)
def test_keys_create_usage_mistakes(db: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["keys", "create", *args, "--db", db])
    assert result.exit_code == 2 and message in result.output


def test_no_keys_yet(db: str) -> None:
    assert "no API keys" in run("keys", "list", "--db", db).output


def _signed_in(db: str, note: str, count: int, **seen: str) -> tuple[str, list[str]]:
    """A new admin key in ``db`` (with ``note``) and the tokens of ``count`` sessions of it
    (``seen``: the user_agent and client_address they signed in with)."""
    store = open_store(db)
    try:
        key, _ = store.create_key("admin", note=note)
        return key.id, [
            store.create_session(key.id, lifetime=3600, **seen)[1] for _ in range(count)
        ]
    finally:
        store.close()


def test_sessions_list_and_end(db: str) -> None:
    assert run("db", "upgrade", "--db", db).exit_code == 0
    assert run("sessions", "list", "--db", db).output == "no sign-in sessions\n"
    person, (first, second) = _signed_in(
        db, "ops person", 2, user_agent=FIREFOX, client_address="192.0.2.10"
    )
    robot, (third,) = _signed_in(db, "robot", 1)
    ids = [token_session_id(token) for token in (first, second, third)]

    listed = run("sessions", "list", "--db", db)
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == [
        *("ID", "KEY", "SIGNED", "IN", "LAST", "SEEN", "EXPIRES"),
        *("ADDRESS", "USER", "AGENT", "NOTE"),
    ]
    assert [line.split()[:2] for line in lines[1:]] == [
        [ids[0], person],
        [ids[1], person],
        [ids[2], robot],
    ]
    assert lines[1].endswith("ops person") and lines[3].endswith("robot")
    # The address whole, the user agent cut to the table's column (whole in --json).
    assert f" 192.0.2.10 {' ' * 6} {FIREFOX[:39]}\u2026  ops person" in lines[1]
    assert lines[3].split()[-3:] == ["-", "-", "robot"]  # made before anything was recorded
    assert len({line.index("ops person") for line in lines[1:3]}) == 1  # the columns line up
    for token in (first, second, third):
        assert token not in listed.output and hash_token(token) not in listed.output
    as_json = json.loads(run("sessions", "list", "--key", robot, "--db", db, "--json").output)
    assert [(s["id"], s["key_id"], s["last_seen_at"]) for s in as_json] == [(ids[2], robot, None)]
    assert (as_json[0]["user_agent"], as_json[0]["client_address"]) == (None, None)
    mine = json.loads(run("sessions", "list", "--key", person, "--db", db, "--json").output)
    assert {(s["user_agent"], s["client_address"]) for s in mine} == {(FIREFOX, "192.0.2.10")}

    ended = run("sessions", "end", ids[0], "--db", db)
    assert ended.exit_code == 0
    assert ended.output == f"ended sign-in session {ids[0]} of API key {person}\n"
    all_of_key = run("sessions", "end", "--key", person, "--db", db)
    assert all_of_key.output == f"ended 1 sign-in session of API key {person}\n"
    assert run("sessions", "end", "--key", person, "--db", db).output.startswith("ended 0 sign-in")
    assert [s["id"] for s in json.loads(run("sessions", "list", "--db", db, "--json").output)] == [
        ids[2]
    ]
    assert "active" in run("keys", "list", "--db", db).output  # the keys stay valid
    assert run("sessions", "list", "--key", person, "--db", db).output == (
        f"no sign-in sessions of API key {person}\n"
    )


def test_sessions_list_shows_no_control_character_a_client_sent(db: str) -> None:
    assert run("db", "upgrade", "--db", db).exit_code == 0
    hostile = "evil\x1b]0;pwned\x07\x1b[2J\r\nkey  admin\u202e"
    _signed_in(db, "person", 1, user_agent=hostile, client_address="10.0.0.1\x1b[31m")
    for args in ((), ("--json",)):
        listed = run("sessions", "list", "--db", db, *args)
        assert listed.exit_code == 0
        assert not any(c in listed.output for c in "\x1b\x07\r\u202e"), repr(listed.output)
    assert len(run("sessions", "list", "--db", db).output.splitlines()) == 2  # no line injected


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["end", "0123456789abcdef"], 1, "error: there is no sign-in session '0123456789abcdef'"),
        (["end", "nonsense"], 1, "error: there is no sign-in session 'nonsense'"),
        (["end", "--key", "nope"], 1, "error: there is no API key 'nope'"),
        (["list", "--key", "nope"], 1, "error: there is no API key 'nope'"),
        (["end"], 2, "give either a session ID or --key KEY_ID"),
        (["end", "0123456789abcdef", "--key", "nope"], 2, "give either a session ID or --key"),
    ],
    ids=["unknown-id", "malformed-id", "unknown-key", "list-unknown-key", "neither", "both"],
)
def test_sessions_mistakes_are_one_line(db: str, args: list[str], code: int, message: str) -> None:
    assert run("db", "upgrade", "--db", db).exit_code == 0
    result = CliRunner().invoke(main, ["sessions", *args, "--db", db])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, WaypostError | AssertionError)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set WAYPOST_TEST_POSTGRES_URL=postgresql://... to run against PostgreSQL")
    psycopg = pytest.importorskip("psycopg")
    schema = f"waypost_cli_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_needs_an_explicit_upgrade(postgres_url: str) -> None:
    refused = CliRunner().invoke(main, ["db", "import", str(EXAMPLES), "--db", postgres_url])
    assert refused.exit_code == 1 and "run `waypost db upgrade" in refused.output
    assert run("db", "upgrade", "--db", postgres_url).exit_code == 0
    assert run("db", "import", str(EXAMPLES), "--db", postgres_url).exit_code == 0
    assert "revision 1, 8 rules" in run("db", "status", "--db", postgres_url).output
    key_id, (token,) = _signed_in(postgres_url, "person", 1)
    assert run("sessions", "list", "--db", postgres_url).output.splitlines()[1].split()[:2] == [
        token_session_id(token),
        key_id,
    ]
    ended = run("sessions", "end", str(token_session_id(token)), "--db", postgres_url)
    assert ended.exit_code == 0 and "ended sign-in session" in ended.output
    assert run("sessions", "list", "--db", postgres_url).output == "no sign-in sessions\n"


# -- imports never destroy by surprise -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store holding examples/rules.yaml at revision 1, on SQLite and on PostgreSQL."""
    url = (
        f"sqlite:///{tmp_path / 'rules.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    assert run("db", "upgrade", "--db", url).exit_code == 0
    assert run("db", "import", str(EXAMPLES), "--db", url).exit_code == 0
    return url


def _rule_count(url: str) -> tuple[int, int]:
    """(revision, number of rules) of the store."""
    with open_store(url) as store:
        snapshot = store.load_snapshot()
    return snapshot.revision, len(snapshot.rules)


def _undo_command(output: str) -> list[str]:
    """The arguments of the `waypost db rollback` command an import printed."""
    command = output.split("undo it with: ", 1)[1].split()
    assert command[:3] == ["waypost", "db", "rollback"], output
    return command[1:]


@pytest.mark.parametrize(
    "text",
    ["", "rules: []\n", "defaults: {status: 301}\n"],
    ids=["empty-file", "empty-rules", "settings-only"],
)
def test_importing_an_empty_file_deletes_nothing(store_url: str, tmp_path: Path, text: str) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(text, encoding="utf-8")
    result = run("db", "import", str(empty), "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "the file has no rules, so --mode merge changes nothing" in result.output
    assert "the store stays at revision 1 (8 rules)" in result.output
    assert _rule_count(store_url) == (1, 8)


def test_a_replace_that_deletes_more_than_it_keeps_needs_yes(
    store_url: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("rules: []\n", encoding="utf-8")
    refused = CliRunner().invoke(
        main, ["db", "import", str(empty), "--mode", "replace", "--db", store_url]
    )
    assert refused.exit_code == 1
    assert refused.output == (
        f"error: {empty}: --mode replace deletes 8 stored rules and keeps 0; nothing was "
        "written: add --yes to delete 8 rules and keep 0 (or use --mode merge, which deletes "
        "nothing)\n"
    )
    assert _rule_count(store_url) == (1, 8)

    dry = run("db", "import", str(empty), "--mode", "replace", "--dry-run", "--db", store_url)
    assert dry.exit_code == 0 and "would make 0 created, 0 updated, 8 deleted, 0 kept" in dry.output
    assert _rule_count(store_url) == (1, 8)

    done = run("db", "import", str(empty), "--mode", "replace", "--yes", "--db", store_url)
    assert done.exit_code == 0 and "as revision 2 (0 created, 0 updated, 8 deleted" in done.output
    assert _rule_count(store_url) == (2, 0)
    undo = run(*_undo_command(done.output))
    assert undo.exit_code == 0 and "rolled back to revision 1" in undo.output
    assert _rule_count(store_url) == (3, 8)


def test_a_replace_that_keeps_more_than_it_deletes_needs_no_yes(
    store_url: str, tmp_path: Path
) -> None:
    lines = EXAMPLES.read_text(encoding="utf-8").split("\n  - from: /gone\n")[0]
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(lines.replace("/new-page", "/newer-page") + "\n", encoding="utf-8")
    result = run("db", "import", str(fewer), "--mode", "replace", "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "(0 created, 1 updated, 3 deleted, 5 kept; --mode replace)" in result.output


@pytest.mark.parametrize(
    ("mode", "rules", "summary"),
    [
        ("merge", "[{from: /old-page, to: /elsewhere}, {from: /new, to: /x}]", "1 created, 1 upd"),
        ("append", "[{from: /new, to: /x}]", "1 created, 0 updated, 0 deleted, 8 kept"),
        ("replace", "[{from: /old-page, to: /new-page}]", "0 created, 0 updated, 7 deleted"),
    ],
    ids=["merge", "append", "replace"],
)
def test_every_import_prints_its_revision_and_the_rollback_that_undoes_it(
    store_url: str, tmp_path: Path, mode: str, rules: str, summary: str
) -> None:
    with open_store(store_url) as store:
        before = store.load_snapshot()
    source = tmp_path / "more.yaml"
    source.write_text(f"rules: {rules}\n", encoding="utf-8")
    result = run("db", "import", str(source), "--mode", mode, "--yes", "--db", store_url)
    assert result.exit_code == 0, result.output
    assert f"as revision 2 ({summary}" in result.output
    command = _undo_command(result.output)
    assert command[:3] == ["db", "rollback", "1"]
    assert run(*command).exit_code == 0
    with open_store(store_url) as store:
        after = store.load_snapshot()
    assert (after.rules, after.rule_ids) == (before.rules, before.rule_ids)


def test_merge_replaces_the_same_rule_and_keeps_the_others(store_url: str, tmp_path: Path) -> None:
    source = tmp_path / "edit.yaml"
    source.write_text(
        "rules:\n"
        "  - {name: article, from: '/<int:y>/<int:m>/<slug>', to: '/a/{slug}'}\n"
        "  - {from: /promo, to: /fr/promo, when: {host: shop.example.com, language: [fr]}}\n"
        "  - {from: /gone, respond: 404}\n",
        encoding="utf-8",
    )
    result = run("db", "import", str(source), "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "(1 created, 2 updated, 0 deleted, 8 kept; --mode merge)" in result.output
    with open_store(store_url) as store:
        rules = store.load_snapshot().rules
    assert [r.get("to", r.get("respond")) for r in rules[:2]] == ["/new-page", "/a/{slug}"]
    assert rules[5] == {"from": "/gone", "respond": 404}  # in place
    assert rules[-1]["to"] == "/fr/promo" and rules[-2]["to"] == "/de/promo"


def test_import_mode_mistakes_are_one_line(db: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "import", str(EXAMPLES), "--mode", "sync", "--db", db])
    assert result.exit_code == 2 and "'sync' is not one of 'merge', 'append', 'replace'" in (
        result.output
    )


def test_db_export_does_not_overwrite_a_file_without_force(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rules.yaml"
    out.write_text("precious\n", encoding="utf-8")
    refused = CliRunner().invoke(main, ["db", "export", "--db", db, "-o", str(out)])
    assert refused.exit_code == 2
    assert refused.output == f"error: {out} already exists; add --force to overwrite it\n"
    assert out.read_text(encoding="utf-8") == "precious\n"
    assert run("db", "export", "--db", db, "-o", str(out), "--force").exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("# Exported from the Waypost rule store")
