"""``waypost stats ...`` through click's CliRunner, on SQLite and PostgreSQL: the tables for known
counts (added with the store's flush methods, as a server would), --json, --unused-since, the CSV
export read back, dismissing a path, empty stores, and mistakes told in one line."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from waypost.cli import main
from waypost.store import open_store
from waypost.store._sql import SqlStore
from waypost.store.stats import NotFoundDelta, RuleHitsDelta, not_found_id

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
EXAMPLES = Path(__file__).parents[2] / "examples" / "rules.yaml"
T0 = 1_699_999_200.0  # on the hour: 2023-11-14 22:00 UTC (well in the past, for --unused-since)
HOUR = 3600
OLD_PAGE, LOGIN = not_found_id("/old/page"), not_found_id("/wp-login.php")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An upgraded store holding examples/rules.yaml, no counts yet, on SQLite and PostgreSQL
    (a fresh schema through the URL's search_path)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rules.db'}"
    else:
        schema = request.getfixturevalue("postgres_schema")
        assert POSTGRES_URL is not None  # postgres_schema skipped otherwise
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    assert run("db", "upgrade", "--db", url).exit_code == 0
    assert run("db", "import", str(EXAMPLES), "--db", url).exit_code == 0
    return url


@pytest.fixture
def store(db: str) -> Iterator[SqlStore]:
    opened = open_store(db)
    try:
        yield opened
    finally:
        opened.close()


def _rule_ids(store: SqlStore) -> list[str]:
    """The store's rule ids in priority order."""
    return [rule.id for rule in store.list_rules().rules]


def _fill(store: SqlStore) -> list[str]:
    """Known counts: three rules hit (one of the store's, two of a rules file), two paths
    answered 404 (one only by bots) and 4 rare ones; the store's rule ids."""
    ids = _rule_ids(store)
    store.add_rule_hits(
        [
            RuleHitsDelta(ids[0], 120, T0, T0 + HOUR),
            RuleHitsDelta("rules.yaml:12", 7, T0 + 10, T0 + 2 * HOUR),
            RuleHitsDelta("rules.yaml:30", 7, T0 + 20, T0 + 30),
        ]
    )
    store.add_not_found(
        [
            NotFoundDelta(
                "/old/page",
                10,
                3,
                T0,
                T0 + 60,
                referrers={"https://example.com/links": 4, "https://other.example/": 1},
                user_agents={"Googlebot/2.1": 3, "Firefox/128.0": 7},
            ),
            NotFoundDelta("/wp-login.php", 5, 5, T0, T0 + 5, user_agents={"scanner": 5}),
        ],
        other=4,
        when=T0,
    )
    return ids


# -- stats rules ---------------------------------------------------------------------------


def test_rules_are_listed_heaviest_first(db: str, store: SqlStore) -> None:
    ids = _fill(store)
    result = run("stats", "rules", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == (
        "RULE           FROM       HITS  FIRST HIT             LAST HIT\n"
        f"{ids[0]}  /old-page   120  2023-11-14 22:00:00Z  2023-11-14 23:00:00Z\n"
        "rules.yaml:12  -             7  2023-11-14 22:00:10Z  2023-11-15 00:00:00Z\n"
        "rules.yaml:30  -             7  2023-11-14 22:00:20Z  2023-11-14 22:00:30Z\n"
    )


def test_rules_sort_by_last_hit_and_stop_at_top(db: str, store: SqlStore) -> None:
    ids = _fill(store)
    result = run("stats", "rules", "--db", db, "--sort", "last", "--top", "2")
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "RULE",
        "rules.yaml:12",
        ids[0],
        "(the",
    ]
    assert result.stdout.endswith("(the first 2; --top N shows more)\n")


def test_rules_as_json(db: str, store: SqlStore) -> None:
    ids = _fill(store)
    rows = json.loads(run("stats", "rules", "--db", db, "--json").stdout)
    assert rows[0] == {
        "rule_key": ids[0],
        "hits": 120,
        "first_at": "2023-11-14T22:00:00+00:00",
        "last_at": "2023-11-14T23:00:00+00:00",
        "name": None,
        "from_path": "/old-page",
    }
    assert [row["rule_key"] for row in rows] == [ids[0], "rules.yaml:12", "rules.yaml:30"]


def test_unused_since_lists_the_store_rules_without_a_recent_hit(db: str, store: SqlStore) -> None:
    ids = _fill(store)
    recent = time.time() - 3 * 24 * HOUR
    store.add_rule_hits([RuleHitsDelta(ids[1], 1, recent, recent)])
    result = run("stats", "rules", "--db", db, "--unused-since", "30d")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RULE", "NAME", "FROM", "LAST", "HIT"]
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == [ids[0], *ids[2:]]  # in priority order; ids[1] was hit 3 days ago
    assert lines[1].split()[1:] == ["-", "/old-page", "2023-11-14", "23:00:00Z"]
    assert lines[2].split()[1:] == ["-", "/second", "-"]  # never hit

    by_date = json.loads(
        run("stats", "rules", "--db", db, "--unused-since", "2023-11-14T23:30:00Z", "--json").stdout
    )
    assert [rule["rule_id"] for rule in by_date] == [ids[0], *ids[2:]]
    assert by_date[0]["from_path"] == "/old-page"
    assert by_date[0]["last_hit_at"] == "2023-11-14T23:00:00+00:00"
    early = run("stats", "rules", "--db", db, "--unused-since", "2023-11-14T22:30:00Z")
    assert ids[0] not in early.stdout  # its last hit is after that


def test_unused_since_says_when_every_rule_was_hit(db: str, store: SqlStore) -> None:
    now = time.time()
    store.add_rule_hits([RuleHitsDelta(rule_id, 1, now, now) for rule_id in _rule_ids(store)])
    result = run("stats", "rules", "--db", db, "--unused-since", "1h")
    assert result.exit_code == 0
    assert result.stdout.startswith("every rule in the store has had a hit since ")


# -- stats not-found -----------------------------------------------------------------------


def test_not_found_paths_leave_bots_out_by_default(db: str, store: SqlStore) -> None:
    _fill(store)
    result = run("stats", "not-found", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == (
        "ID                PATH       HITS  BOTS  FIRST SEEN            LAST SEEN             "
        "TOP REFERRER\n"
        f"{OLD_PAGE}  /old/page     7     3  2023-11-14 22:00:00Z  2023-11-14 22:01:00Z  "
        "https://example.com/links\n"
        "and 4 404s of paths too rare to keep one by one\n"
    )


def test_not_found_paths_with_bots(db: str, store: SqlStore) -> None:
    _fill(store)
    result = run("stats", "not-found", "--db", db, "--bots", "--top", "1")
    lines = result.stdout.splitlines()
    assert lines[1].split()[:4] == [OLD_PAGE, "/old/page", "10", "3"]
    assert lines[2:] == [
        "(the first 1; --top N shows more)",
        "and 4 404s of paths too rare to keep one by one",
    ]
    both = run("stats", "not-found", "--db", db, "--bots").stdout.splitlines()
    assert both[2].split()[:4] == [LOGIN, "/wp-login.php", "5", "5"]
    assert both[2].endswith("2023-11-14 22:00:05Z  -")  # no referrer


def test_not_found_as_json(db: str, store: SqlStore) -> None:
    _fill(store)
    rows = json.loads(run("stats", "not-found", "--db", db, "--bots", "--json").stdout)
    assert rows == [row.to_dict() for row in store.not_found_stats(include_bots=True).rows]
    assert rows[0]["path"] == "/old/page" and rows[0]["hits"] == 10
    assert rows[0]["referrers"][0] == {"value": "https://example.com/links", "hits": 4}
    assert rows[0]["user_agents"][0] == {"value": "Firefox/128.0", "hits": 7}


def test_not_found_says_which_rule_nearly_answered_each_path(db: str, store: SqlStore) -> None:
    _fill(store)
    rows = json.loads(run("stats", "not-found", "--db", db, "--bots", "--nearly", "--json").stdout)
    near = {row["path"]: row["nearly"] for row in rows}
    # examples/rules.yaml's /old/<path:rest> rewrites it to a page the app does not have.
    assert near["/old/page"]["rule"]["id"] in _rule_ids(store)
    assert near["/old/page"]["reason"] == (
        "it rewrites the path to '/new/page?sling=academy', which answered 404"
    )
    assert near["/wp-login.php"] is None
    text = run("stats", "not-found", "--db", db, "--nearly").stdout
    assert f"{OLD_PAGE}: nearly " in text and "which answered 404" in text
    assert "nearly" not in json.loads(run("stats", "not-found", "--db", db, "--json").stdout)[0]


def test_visits_are_listed_newest_first(db: str, store: SqlStore) -> None:
    from waypost.stats.visits import Visit

    assert "no visits logged" in run("stats", "visits", "--db", db).stdout
    store.add_visits(
        [
            (Visit(T0, "r1", "/new/a", "https://a.example/", "Firefox", "203.0.113.0"), "DE"),
            (Visit(T0 + 60, "r2", "/new/b\x1b[31m", None, None, None), None),
        ]
    )
    text = run("stats", "visits", "--db", db).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["WHEN", "RULE", "TO", "COUNTRY", "CLIENT", "REFERRER"]
    assert "r2" in lines[1] and "\\x1b" in lines[1] and "\x1b" not in text
    assert "DE" in lines[2] and "203.0.113.0" in lines[2] and "https://a.example/" in lines[2]
    rows = json.loads(run("stats", "visits", "--db", db, "--rule", "r1", "--json").stdout)
    assert [(row["location"], row["country"]) for row in rows] == [("/new/a", "DE")]


def test_dismiss_takes_a_path_off_the_open_list(db: str, store: SqlStore) -> None:
    _fill(store)
    dismissed = run("stats", "dismiss", OLD_PAGE, "--db", db)
    assert dismissed.exit_code == 0
    assert dismissed.stdout == "dismissed /old/page (10 hits, last 2023-11-14 22:01:00Z)\n"
    assert OLD_PAGE not in run("stats", "not-found", "--db", db).stdout
    listed = run("stats", "not-found", "--db", db, "--status", "dismissed").stdout
    assert listed.splitlines()[1].split()[:2] == [OLD_PAGE, "/old/page"]
    every = json.loads(run("stats", "not-found", "--db", db, "--status", "all", "--json").stdout)
    assert [row["status"] for row in every] == ["dismissed"]  # /wp-login.php: bots only


# -- stats export --------------------------------------------------------------------------


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_rules_as_csv(db: str, store: SqlStore, tmp_path: Path) -> None:
    ids = _fill(store)
    printed = run("stats", "export", "--db", db)
    assert printed.exit_code == 0
    rows = _csv(printed.stdout)
    assert rows[0] == {
        "rule_key": ids[0],
        "hits": "120",
        "first_at": "2023-11-14T22:00:00+00:00",
        "last_at": "2023-11-14T23:00:00+00:00",
        "name": "",
        "from_path": "/old-page",
    }
    assert [row["rule_key"] for row in rows] == [ids[0], "rules.yaml:12", "rules.yaml:30"]
    assert run("stats", "export", "--db", db, "--output", "-").stdout == printed.stdout
    out = tmp_path / "rules.csv"
    assert run("stats", "export", "--db", db, "-o", str(out)).stdout == ""
    assert out.read_text(encoding="utf-8") == printed.stdout


def test_export_not_found_as_csv_every_status_and_bots(db: str, store: SqlStore) -> None:
    _fill(store)
    store.set_not_found_status(LOGIN, "dismissed")
    rows = _csv(run("stats", "export", "--db", db, "--what", "not-found").stdout)
    assert [(row["path"], row["hits"], row["bot_hits"], row["status"]) for row in rows] == [
        ("/old/page", "10", "3", "open"),
        ("/wp-login.php", "5", "5", "dismissed"),
    ]
    assert rows[0]["top_referrer"] == "https://example.com/links"
    assert rows[0]["top_user_agent"] == "Firefox/128.0"
    assert rows[0]["first_at"] == "2023-11-14T22:00:00+00:00" and rows[0]["status_at"] == ""
    assert rows[1]["top_referrer"] == "" and rows[1]["status_at"] != ""


def test_export_pages_through_more_than_a_page(db: str, store: SqlStore) -> None:
    store.add_rule_hits([RuleHitsDelta(f"rules.yaml:{n}", n, T0, T0) for n in range(1, 1203)])
    rows = _csv(run("stats", "export", "--db", db).stdout)
    assert [row["rule_key"] for row in rows] == [f"rules.yaml:{n}" for n in range(1202, 0, -1)]


def test_export_keeps_what_clients_sent_from_running_as_a_formula(db: str, store: SqlStore) -> None:
    store.add_not_found([NotFoundDelta("/x", 1, 0, T0, T0, {"=HYPERLINK(1)": 1}, {"@SUM(1)": 1})])
    (row,) = _csv(run("stats", "export", "--db", db, "--what", "not-found").stdout)
    assert (row["top_referrer"], row["top_user_agent"]) == ("'=HYPERLINK(1)", "'@SUM(1)")


def test_a_table_escapes_what_clients_sent(db: str, store: SqlStore) -> None:
    store.add_not_found([NotFoundDelta("/\x1b[2Jx", 1, 0, T0, T0, {"ref\x07": 1})])
    (row,) = run("stats", "not-found", "--db", db).stdout.splitlines()[1:]
    assert "\x1b" not in row and "/\\x1b[2Jx" in row and row.endswith("ref\\x07")
    assert json.loads(run("stats", "not-found", "--db", db, "--json").stdout)[0]["path"] == (
        "/\x1b[2Jx"
    )


def test_export_refuses_to_overwrite_a_file(db: str, tmp_path: Path) -> None:
    out = tmp_path / "stats.csv"
    out.write_text("mine", encoding="utf-8")
    refused = CliRunner().invoke(main, ["stats", "export", "--db", db, "-o", str(out)])
    assert refused.exit_code == 2 and "add --force" in refused.output
    assert out.read_text(encoding="utf-8") == "mine"
    forced = run("stats", "export", "--db", db, "-o", str(out), "--force")
    assert forced.exit_code == 0
    assert out.read_text(encoding="utf-8") == "rule_key,hits,first_at,last_at,name,from_path\n"


# -- empty stores and mistakes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["rules"], "no rule hits recorded; a server with this store records them"),
        (["rules", "--json"], "[]"),
        (["not-found"], "no open not-found paths recorded (without bots; --bots counts them)"),
        (["not-found", "--bots", "--status", "all"], "no not-found paths recorded; a server"),
        (["export", "--what", "not-found"], "id,path,hits,bot_hits,first_at,last_at,status,"),
    ],
    ids=["rules", "rules-json", "not-found", "not-found-all", "export"],
)
def test_an_empty_store_says_so_in_one_line(db: str, args: list[str], said: str) -> None:
    result = run("stats", *args, "--db", db)
    assert result.exit_code == 0
    assert result.stdout.startswith(said) and result.stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["rules", "--unused-since", "soon"], 2, "'soon' is not a duration or a date"),
        (["rules", "--unused-since", "90"], 2, "'90' is not a duration or a date"),
        (["rules", "--unused-since", "2999-01-01"], 2, "'2999-01-01' is in the future"),
        (["rules", "--unused-since", "9d", "--sort", "hits"], 2, "give one or the other"),
        (["rules", "--sort", "name"], 2, "'name' is not one of 'hits', 'last'"),
        (["rules", "--top", "0"], 2, "0 is not in the range 1<=x<=1000"),
        (["not-found", "--status", "gone"], 2, "'gone' is not one of 'open'"),
        (["export", "--what", "visits"], 2, "'visits' is not one of 'rules', 'not-found'"),
        (["dismiss", "0123456789abcdef"], 1, "no not-found path with id '0123456789abcdef'"),
    ],
    ids=[
        "bad-duration",
        "no-unit",
        "future",
        "sort-and-unused",
        "bad-sort",
        "top-zero",
        "bad-status",
        "bad-what",
        "unknown-row",
    ],
)
def test_mistakes_are_one_line_without_a_traceback(
    db: str, args: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(main, ["stats", *args, "--db", db])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_store_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    result = CliRunner().invoke(main, ["stats", "rules", "--db", url])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "Traceback" not in result.output


def test_times_are_shown_in_utc(db: str, store: SqlStore) -> None:
    moment = datetime(2024, 6, 1, 12, 30, tzinfo=UTC).timestamp()
    store.add_rule_hits([RuleHitsDelta("rules.yaml:1", 1, moment, moment)])
    assert "2024-06-01 12:30:00Z" in run("stats", "rules", "--db", db).stdout
