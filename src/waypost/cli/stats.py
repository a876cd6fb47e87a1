"""Analytics on the command line: ``waypost stats rules``, ``stats not-found``, ``stats export``
and ``stats dismiss``.

Thin click commands over the store's analytics (:mod:`waypost.store.stats`); a server with a
store records into them, and these read them back. Every command takes ``--db URL`` (or
``WAYPOST_DB``), like ``waypost db``. Exit codes: 0 fine; 1 the store refused (an unreachable
database, an unknown id); 2 a usage mistake (a bad duration, an output file that exists without
``--force``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, cast

import click

from waypost.cli._files import check_output, write_output
from waypost.cli._report import reports_errors
from waypost.cli.store import _cut, _db_option, _store, _when
from waypost.store._sql import SqlStore
from waypost.store._sql_base import MAX_PAGE
from waypost.store.stats import (
    NOT_FOUND_STATUSES,
    NotFoundPage,
    NotFoundStats,
    NotFoundStatus,
    RuleStats,
    RuleStatsSort,
    parse_since,
)
from waypost.tools.stored import EngineCache, nearly_answered

__all__ = ["stats_group"]

# The widest a rule key or a path gets in a table (whole in --json and in the CSV export).
_KEY_WIDTH = 48
_PATH_WIDTH = 60
_REFERRER_WIDTH = 40
_SORTS: dict[str, RuleStatsSort] = {"hits": "hits", "last": "last_at"}
_top_option = click.option(
    "--top",
    default=50,
    show_default=True,
    type=click.IntRange(1, MAX_PAGE),
    help="Show at most this many rows.",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int]) -> None:
    """Print ``rows`` under ``header`` in columns as wide as their widest cell, two spaces apart
    (the columns numbered in ``right`` aligned right: counts); no padding after the last."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())


def _cell(text: str | None, width: int) -> str:
    """``text`` for a table cell: control characters escaped (a path, a referrer or a user agent
    is whatever a client sent, and must not move the cursor or recolour the terminal), then cut
    to ``width``."""
    if text is not None and not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return _cut(text, width)


def _more(shown: int, more: bool) -> None:
    if more:
        click.echo(f"(the first {shown}; --top N shows more)")


@click.group("stats")
def stats_group() -> None:
    """Analytics: hits per rule, rules no one uses, and the paths answered 404.

    A server with this store records them (counted in memory and flushed every few seconds);
    these commands read them back."""


# ------------------------------------------------------------------------------------------
# waypost stats rules


@stats_group.command("rules")
@_db_option
@click.option(
    "--unused-since",
    default=None,
    metavar="WHEN",
    help="List the store's rules with no hit since WHEN instead: how long ago (90d, 12h, 2w) "
    "or a date (2026-01-31).",
)
@click.option(
    "--sort",
    type=click.Choice(tuple(_SORTS)),
    default=None,
    help="Heaviest first (hits, the default) or most recently hit first (last).",
)
@_top_option
@_json_option
@reports_errors
def stats_rules(
    db: str, unused_since: str | None, sort: str | None, top: int, as_json: bool
) -> None:
    """Hits per rule, heaviest first: the rule (its id in the store, or FILE:LINE in a rules
    file), its hits, its first and its last hit. With --unused-since, the store's rules that
    have had no hit since then, in priority order (dead weight to review)."""
    if unused_since is not None:
        if sort is not None:
            raise click.UsageError(
                "--sort orders the rules with hits; --unused-since lists the store's rules in "
                "priority order: give one or the other"
            )
        try:
            since = parse_since(unused_since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--unused-since'") from None
        _unused_rules(db, since=since, top=top, as_json=as_json)
        return
    with _store(db) as store:
        page = store.rule_stats(sort=_SORTS[sort or "hits"], limit=top)
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in page.rows], indent=2))
        return
    if not page.rows:
        click.echo(
            "no rule hits recorded; a server with this store records them as requests match rules"
        )
        return
    _table(
        ("RULE", "FROM", "HITS", "FIRST HIT", "LAST HIT"),
        [
            (
                _cell(row.rule_key, _KEY_WIDTH),
                _cell(row.from_path, _PATH_WIDTH),
                str(row.hits),
                _when(row.first_at),
                _when(row.last_at),
            )
            for row in page.rows
        ],
        right=frozenset({2}),
    )
    _more(len(page.rows), page.next_cursor is not None)


def _unused_rules(db: str, *, since: datetime, top: int, as_json: bool) -> None:
    with _store(db) as store:
        page = store.unused_rules(since, limit=top)
    if as_json:
        click.echo(json.dumps([rule.to_dict() for rule in page.rules], indent=2))
        return
    if not page.rules:
        click.echo(f"every rule in the store has had a hit since {_when(since)}")
        return
    # LAST HIT "-": never hit, or not since the kept counts begin (retention purged them).
    _table(
        ("RULE", "NAME", "FROM", "LAST HIT"),
        [
            (
                rule.rule_id,
                _cell(rule.name, _KEY_WIDTH),
                _cell(rule.from_path, _PATH_WIDTH),
                _when(rule.last_hit_at),
            )
            for rule in page.rules
        ],
        right=frozenset(),
    )
    _more(len(page.rules), page.next_cursor is not None)


# ------------------------------------------------------------------------------------------
# waypost stats not-found


@stats_group.command("not-found")
@_db_option
@_top_option
@click.option("--bots", is_flag=True, help="Count bots' requests too (left out by default).")
@click.option(
    "--status",
    type=click.Choice((*NOT_FOUND_STATUSES, "all")),
    default="open",
    show_default=True,
    help="Which paths: still open, dismissed, resolved by a rule, or all.",
)
@click.option(
    "--nearly",
    is_flag=True,
    help="Say for each path which stored rule nearly answered it, as explain would (a "
    "condition that failed, a rewrite to a missing page, a trailing slash); builds the "
    "stored rules first.",
)
@_json_option
@reports_errors
def stats_not_found(
    db: str, top: int, bots: bool, status: str, nearly: bool, as_json: bool
) -> None:
    """The paths answered 404, most asked for first: the row's id (for `waypost stats
    dismiss`), the path, its hits (people's; everyone's with --bots) and bots' hits, first and
    last seen, and the heaviest referrer."""
    chosen = None if status == "all" else cast(NotFoundStatus, status)
    near: dict[str, dict[str, object] | None] = {}
    with _store(db) as store:
        page = store.not_found_stats(status=chosen, include_bots=bots, limit=top)
        other = store.stats_other()
        if nearly:
            found = nearly_answered(EngineCache(store), [row.path for row in page.rows])
            near = dict(zip((row.id for row in page.rows), found, strict=True))
    if as_json:
        shown = [
            {**row.to_dict(), **({"nearly": near[row.id]} if nearly else {})} for row in page.rows
        ]
        click.echo(json.dumps(shown, indent=2))
        return
    if not page.rows:
        which = "" if chosen is None else f"{chosen} "
        by = "" if bots else " (without bots; --bots counts them)"
        click.echo(
            f"no {which}not-found paths recorded{by}; a server with this store records the "
            "requests it answers 404"
        )
    else:
        _table(
            ("ID", "PATH", "HITS", "BOTS", "FIRST SEEN", "LAST SEEN", "TOP REFERRER"),
            [
                (
                    row.id,
                    _cell(row.path, _PATH_WIDTH),
                    str(row.hits if bots else row.people_hits),
                    str(row.bot_hits),
                    _when(row.first_at),
                    _when(row.last_at),
                    _cell(row.referrers[0].value if row.referrers else None, _REFERRER_WIDTH),
                )
                for row in page.rows
            ],
            right=frozenset({2, 3}),
        )
        for row in page.rows if nearly else ():
            said = near[row.id]
            if said is not None:
                rule = cast(dict[str, str], said["rule"])
                click.echo(f"{row.id}: nearly {rule['source']} ({rule['id']}): {said['reason']}")
        _more(len(page.rows), page.next_cursor is not None)
    if other:
        click.echo(f"and {other} 404s of paths too rare to keep one by one")


# ------------------------------------------------------------------------------------------
# waypost stats visits


@stats_group.command("visits")
@_db_option
@click.option("--rule", "rule_key", default=None, metavar="KEY", help="Only this rule's visits.")
@_top_option
@_json_option
@reports_errors
def stats_visits(db: str, rule_key: str | None, top: int, as_json: bool) -> None:
    """The redirects logged one by one (serve --stats-visits), newest first: when, the rule,
    where the visitor was sent, the country, the client address as kept, the referrer."""
    with _store(db) as store:
        page = store.visits(rule_key=rule_key, limit=top)
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in page.rows], indent=2))
        return
    if not page.rows:
        click.echo(
            "no visits logged; a server with this store logs them with --stats "
            "--stats-visits 0.01 (one redirect in a hundred)"
        )
        return
    _table(
        ("WHEN", "RULE", "TO", "COUNTRY", "CLIENT", "REFERRER"),
        [
            (
                _when(row.at),
                _cell(row.rule_key, _KEY_WIDTH),
                _cell(row.location, _PATH_WIDTH),
                row.country or "-",
                row.client or "-",
                _cell(row.referrer, _REFERRER_WIDTH),
            )
            for row in page.rows
        ],
        right=frozenset(),
    )
    _more(len(page.rows), page.next_cursor is not None)


@stats_group.command("dismiss")
@click.argument("row_id", metavar="ID")
@_db_option
@reports_errors
def stats_dismiss(row_id: str, db: str) -> None:
    """Dismiss the not-found path ID (from `waypost stats not-found`): it no longer shows among
    the open ones (--status dismissed lists it); its hits keep adding up."""
    with _store(db) as store:
        row = store.set_not_found_status(row_id, "dismissed")
    click.echo(f"dismissed {row.path} ({row.hits} hits, last {_when(row.last_at)})")


# ------------------------------------------------------------------------------------------
# waypost stats export

T = TypeVar("T", covariant=True)


class _Page(Protocol[T]):
    """A page of a list the store pages (RuleStatsPage, NotFoundPage)."""

    @property
    def rows(self) -> tuple[T, ...]: ...

    @property
    def next_cursor(self) -> str | None: ...


_RULE_FIELDS = ("rule_key", "hits", "first_at", "last_at", "name", "from_path")
_NOT_FOUND_FIELDS = (
    "id",
    "path",
    "hits",
    "bot_hits",
    "first_at",
    "last_at",
    "status",
    "resolved_rule_id",
    "status_at",
    "top_referrer",
    "top_user_agent",
)
# A cell a spreadsheet would run as a formula (CSV injection): referrers and user agents are
# whatever clients sent, so those start with a quote mark when they start with one of these.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(text: str | None) -> str:
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def _every_row(fetch: Callable[[str | None], _Page[T]]) -> Iterator[T]:
    """Every row of a list the store pages, page by page (``fetch(cursor)`` reads one)."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _rule_rows(store: SqlStore) -> Iterator[list[str]]:
    for row in _every_row(lambda cursor: store.rule_stats(limit=MAX_PAGE, cursor=cursor)):
        yield _rule_cells(row)


def _rule_cells(row: RuleStats) -> list[str]:
    return [
        _inert(row.rule_key),
        str(row.hits),
        _iso(row.first_at),
        _iso(row.last_at),
        _inert(row.name),
        _inert(row.from_path),
    ]


def _not_found_rows(store: SqlStore) -> Iterator[list[str]]:
    def fetch(cursor: str | None) -> NotFoundPage:
        return store.not_found_stats(status=None, include_bots=True, limit=MAX_PAGE, cursor=cursor)

    for row in _every_row(fetch):
        yield _not_found_cells(row)


def _not_found_cells(row: NotFoundStats) -> list[str]:
    return [
        row.id,
        row.path,
        str(row.hits),
        str(row.bot_hits),
        _iso(row.first_at),
        _iso(row.last_at),
        row.status,
        row.resolved_rule_id or "",
        _iso(row.status_at),
        _inert(row.referrers[0].value if row.referrers else None),
        _inert(row.user_agents[0].value if row.user_agents else None),
    ]


@stats_group.command("export")
@_db_option
@click.option(
    "--what",
    type=click.Choice(("rules", "not-found")),
    default="rules",
    show_default=True,
    help="Hits per rule, or the paths answered 404 (every status, bots included).",
)
@click.option(
    "-o", "--output", default=None, metavar="FILE", help="Write to FILE ('-': standard output)."
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@reports_errors
def stats_export(db: str, what: str, output: str | None, force: bool) -> None:
    """Every row of one table as CSV with a header row, heaviest first, times in ISO 8601
    (UTC): hits per rule (--what rules) or the paths answered 404 (--what not-found), to
    standard output or --output FILE."""
    target = None if output in (None, "-") else output
    check_output(target, force=force)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with _store(db) as store:
        if what == "rules":
            writer.writerow(_RULE_FIELDS)
            writer.writerows(_rule_rows(store))
        else:
            writer.writerow(_NOT_FOUND_FIELDS)
            writer.writerows(_not_found_rows(store))
    if target is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        write_output(target, buffer.getvalue(), force=force)
