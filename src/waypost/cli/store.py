"""The rule store on the command line: ``waypost db ...``, ``waypost keys ...`` and
``waypost sessions ...``.

Thin click commands over :mod:`waypost.store`; :mod:`waypost.cli` registers the groups.
Every command takes ``--db URL`` (or ``WAYPOST_DB``): ``sqlite:///path/rules.db`` or
``postgresql://user@host:5432/db``. Exit codes: 0 fine; 1 the store refused (rules with errors,
an unreachable database, an unknown id, a replace that needs ``--yes``); 2 a usage mistake (an
output file that exists, without ``--force``).

``waypost keys create`` is the operator's own: whoever can write to the database can make any
key, so it is not limited the way the admin API's ``POST /api/keys`` is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import click

from waypost.cli._files import (
    check_output,
    import_into_store,
    mode_option,
    write_output,
    yes_option,
)
from waypost.cli._progress import quiet_option, stage_bars
from waypost.cli._report import reports_errors
from waypost.exceptions import ValidationError
from waypost.rules.load import collector_paused
from waypost.rules.model import AUDIENCE
from waypost.server.config import SETTING
from waypost.store import open_store
from waypost.store._sql import SqlStore
from waypost.store.keys import SCOPES, KeyScope, parse_expiry
from waypost.store.model import ImportMode, Revision
from waypost.store.postgres import redact_url
from waypost.store.transfer import dump_document, read_document

__all__ = ["db_group", "keys_group", "sessions_group"]

# The server's ``db`` setting, under the same variable (``waypost serve --db`` is this store).
_DB_ENV = SETTING["db"].env
_db_option = click.option(
    "--db",
    "db",
    envvar=_DB_ENV,
    required=True,
    metavar="URL",
    help=f"The store: sqlite:///path/rules.db or postgresql://user@host/db [env {_DB_ENV}].",
)


@contextmanager
def _store(url: str, **options: Any) -> Iterator[SqlStore]:
    store = open_store(url, **options)
    try:
        yield store
    finally:
        store.close()


# A session's user agent in the table (whole in --json): enough to tell browsers apart.
_AGENT_WIDTH = 40


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _cut(text: str | None, width: int) -> str:
    """``text`` in at most ``width`` characters ("-" for None; "…" where it was cut)."""
    if text is None:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _summary(revision: Revision) -> str:
    counts = revision.counts
    parts = [f"{counts.get(k, 0)} {k}" for k in ("created", "updated", "moved", "deleted")]
    if counts.get("settings"):
        parts.append("settings changed")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------
# waypost db


@click.group("db")
def db_group() -> None:
    """The rule store: schema, import and export, history and rollback."""


@db_group.command("upgrade")
@_db_option
@reports_errors
def db_upgrade(db: str) -> None:
    """Create the store's tables or apply pending migrations (running it again does nothing)."""
    with _store(db, auto_upgrade=False) as store:
        before, after = store.upgrade()
        if before == after:
            click.echo(f"{store.location}: schema already at version {after}")
        else:
            click.echo(f"{store.location}: schema upgraded from version {before} to {after}")


@db_group.command("status")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def db_status(db: str, as_json: bool) -> None:
    """Print the schema version, pending migrations and the current revision."""
    with _store(db, auto_upgrade=False) as store:
        status = store.schema_status()
        revision = rules = None
        if status.up_to_date:
            snapshot = store.load_snapshot()
            revision, rules = snapshot.revision, len(snapshot.rules)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "version": status.version,
                    "latest": status.latest,
                    "pending": list(status.pending),
                    "revision": revision,
                    "rules": rules,
                },
                indent=2,
            )
        )
        return
    click.echo(f"schema version {status.version} of {status.latest}")
    for name in status.pending:
        click.echo(f"  pending: {name}")
    if status.pending:
        click.echo("run `waypost db upgrade --db URL` to apply them")
    else:
        click.echo(f"revision {revision}, {rules} rules")


@db_group.command("import")
@click.argument("rules", type=click.Path(dir_okay=False))
@_db_option
@mode_option
@yes_option
@click.option("--dry-run", is_flag=True, help="Say what the import would change; write nothing.")
@click.option("-m", "--message", default=None, help="The revision's message.")
@quiet_option
@reports_errors
# A large table makes millions of objects and no cycle (see collector_paused()); between the
# steps that pause the collector themselves, it walked them again and again.
@collector_paused()
def db_import(
    rules: str, db: str, mode: str, yes: bool, dry_run: bool, message: str | None, quiet: bool
) -> None:
    """Import RULES (a .yaml, .yml, .toml, .json or .csv file) into the store as one revision:
    merged into the stored rules (the default), appended, or replacing them (--mode). Prints
    what changed and the `waypost db rollback` command that undoes it."""
    document = read_document(rules)
    # A CSV file has no settings of its own: the stored defaults and host lists stay.
    own_settings = Path(rules).suffix.lower() != ".csv"
    try:
        import_into_store(
            db,
            document.rules,
            defaults=document.defaults if own_settings else None,
            allowed_hosts=document.allowed_hosts if own_settings else None,
            proxy_hosts=document.proxy_hosts if own_settings else None,
            guards=document.guards if own_settings else None,
            mode=cast(ImportMode, mode),
            yes=yes,
            dry_run=dry_run,
            message=message or f"import {Path(rules).name}",
            source=rules,
            quiet=quiet,
        )
    except ValidationError as exc:
        # A CSV table's rows are checked by the store: its problems at their lines.
        raise document.located(exc) from None


@db_group.command("export")
@_db_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@quiet_option
@reports_errors
def db_export(db: str, output: str | None, force: bool, quiet: bool) -> None:
    """Print the store's rule set as a YAML rules file (or write it to --output, which must not
    exist unless --force)."""
    check_output(output, force=force)
    with stage_bars(redact_url(db), quiet=quiet) as progress:
        progress("reading", 0, 1)
        with _store(db) as store:
            snapshot = store.load_snapshot()
        progress("reading", 1, 1)
        # libyaml writes the whole document in one call: the bar moves when it is written.
        progress("writing", 0, len(snapshot.rules))
        text = dump_document(snapshot)
        progress("writing", len(snapshot.rules), len(snapshot.rules))
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text, force=force)


@db_group.command("history")
@_db_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def db_history(db: str, limit: int, as_json: bool) -> None:
    """List the latest revisions: number, time, API key, message and counts."""
    with _store(db) as store:
        revisions = store.list_revisions(limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in revisions], indent=2))
        return
    for revision in revisions:
        who = revision.key_id or "cli"
        click.echo(
            f"{revision.number:>6}  {_when(revision.created_at)}  {who:<14}  "
            f"{revision.message or '-'}  ({_summary(revision)})"
        )


@db_group.command("diff")
@click.argument("from_revision", type=int)
@click.argument("to_revision", type=int, required=False)
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def db_diff(from_revision: int, to_revision: int | None, db: str, as_json: bool) -> None:
    """Show how the rules changed from FROM_REVISION to TO_REVISION (default: the current)."""
    with _store(db) as store:
        diff = store.diff(from_revision, to_revision)
    if as_json:
        click.echo(json.dumps(diff.to_dict(), indent=2))
        return
    if diff.empty:
        click.echo(f"revisions {diff.from_revision} and {diff.to_revision} hold the same rules")
    if diff.settings is not None:
        before, after = diff.settings
        click.echo(f"~ settings: {json.dumps(before.to_dict())} -> {json.dumps(after.to_dict())}")
    signs = {"added": "+", "removed": "-", "changed": "~", "moved": ">"}
    for rule in diff.rules:
        shown = rule.after if rule.after is not None else rule.before
        where = f"#{rule.before_position}->{rule.after_position}"
        click.echo(f"{signs[rule.kind]} {rule.rule_id} {where} {json.dumps(shown)}")


@db_group.command("rollback")
@click.argument("revision", type=int)
@_db_option
@click.option("-m", "--message", default=None, help="The revision's message.")
@reports_errors
def db_rollback(revision: int, db: str, message: str | None) -> None:
    """Restore the rule set of REVISION, as a new revision."""
    with _store(db) as store:
        done = store.rollback(revision, message=message or "")
    if done is None:
        click.echo(f"the rules are already those of revision {revision}")
    else:
        click.echo(
            f"rolled back to revision {revision} as revision {done.number} ({_summary(done)})"
        )


# ------------------------------------------------------------------------------------------
# waypost keys


@click.group("keys")
def keys_group() -> None:
    """API keys: admin keys (--scope) for the admin API, access keys (--audience) for the
    paths api_key guards protect; create, list, revoke."""


@keys_group.command("create")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default=None,
    help="What the key may do in the admin API (leave out for an access key).",
)
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    metavar="NAME",
    help="The api_key guards' audience it opens (repeat for more); an access key.",
)
@click.option("--expires", default=None, help="A duration (30d, 12h, 2w) or an ISO date.")
@click.option("--note", default="", help="Whose key it is, what it is for.")
@click.option("--host", default=None, help="Only valid for requests to this host.")
@_db_option
@reports_errors
def keys_create(
    scope: str | None,
    audiences: tuple[str, ...],
    expires: str | None,
    note: str,
    host: str | None,
    db: str,
) -> None:
    """Create an API key and print it (once: only its hash is stored).

    --scope makes an admin key (the admin API), --audience an access key (the paths that
    api_key guards of that audience protect); a key with both opens both."""
    if scope is None and not audiences:
        raise click.UsageError(
            "give --scope (read, write, admin: a key for the admin API) or --audience NAME "
            "(a key for the paths an api_key guard with that audience protects), or both"
        )
    for audience in audiences:
        if not AUDIENCE.fullmatch(audience):
            raise click.BadParameter(
                f"{audience!r}: an audience is letters, digits, '.', '_' and '-', like partners "
                "(the audience an api_key guard names)",
                param_hint="'--audience'",
            )
    try:
        expires_at = parse_expiry(expires) if expires else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--expires'") from None
    with _store(db) as store:
        key, presented = store.create_key(
            cast(KeyScope | None, scope),
            expires_at=expires_at,
            note=note,
            host=host,
            audiences=audiences,
        )
    details = []
    if key.scope is not None:
        details.append(f"scope {key.scope}")
    if key.audiences:
        details.append(f"audience {', '.join(key.audiences)}")
    if key.expires_at:
        details.append(f"expires {_when(key.expires_at)}")
    if key.host:
        details.append(f"only for {key.host}")
    click.echo(
        f"created API key {key.id} ({', '.join(details)}); it is shown only once, store it now:",
        err=True,
    )
    click.echo(presented)


@keys_group.command("list")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def keys_list(db: str, as_json: bool) -> None:
    """List the API keys with their scope, status and last use (never their secrets)."""
    with _store(db) as store:
        keys = store.list_keys()
    if as_json:
        click.echo(json.dumps([key.to_dict() for key in keys], indent=2))
        return
    if not keys:
        click.echo("no API keys; create one with `waypost keys create --scope read --db URL`")
        return
    click.echo(
        f"{'ID':<14}{'SCOPE':<7}{'AUDIENCE':<14}{'STATUS':<9}{'HOST':<20}{'EXPIRES':<22}"
        f"{'LAST USED':<22}NOTE"
    )
    for key in keys:
        click.echo(
            f"{key.id:<14}{key.scope or '-':<7}{','.join(key.audiences) or '-':<14}"
            f"{key.status():<9}{key.host or '-':<20}"
            f"{_when(key.expires_at):<22}{_when(key.last_used_at):<22}{key.note}"
        )


@keys_group.command("revoke")
@click.argument("key_id")
@_db_option
@reports_errors
def keys_revoke(key_id: str, db: str) -> None:
    """Revoke the API key KEY_ID (running servers stop accepting it within seconds)."""
    with _store(db) as store:
        key = store.revoke_key(key_id)
    click.echo(f"revoked API key {key.id} at {_when(key.revoked_at)}")


# ------------------------------------------------------------------------------------------
# waypost sessions


@click.group("sessions")
def sessions_group() -> None:
    """Admin sign-in sessions (made by the login page): list, end."""


@sessions_group.command("list")
@_db_option
@click.option("--key", "key_id", default=None, metavar="KEY_ID", help="Only this key's sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def sessions_list(db: str, key_id: str | None, as_json: bool) -> None:
    """List the sign-in sessions that have not ended: id, API key, when made, last seen and
    expires, the client address and user agent that signed in (never their tokens). Expired
    sessions are deleted on the way."""
    with _store(db) as store:
        sessions = store.list_sessions(key_id=key_id)
        notes = {key.id: key.note for key in store.list_keys()} if sessions else {}
    if as_json:
        click.echo(json.dumps([session.to_dict() for session in sessions], indent=2))
        return
    if not sessions:
        whose = f" of API key {key_id}" if key_id else ""
        click.echo(f"no sign-in sessions{whose}")
        return
    click.echo(
        f"{'ID':<18}{'KEY':<14}{'SIGNED IN':<22}{'LAST SEEN':<22}{'EXPIRES':<22}"
        f"{'ADDRESS':<18}{'USER AGENT':<{_AGENT_WIDTH + 2}}NOTE"
    )
    for session in sessions:
        click.echo(
            f"{session.id:<18}{session.key_id:<14}{_when(session.created_at):<22}"
            f"{_when(session.last_seen_at):<22}{_when(session.expires_at):<22}"
            f"{session.client_address or '-':<17} "
            f"{_cut(session.user_agent, _AGENT_WIDTH):<{_AGENT_WIDTH}}  "
            f"{notes.get(session.key_id, '')}"
        )


@sessions_group.command("end")
@click.argument("session_id", required=False, metavar="[ID]")
@click.option("--key", "key_id", default=None, metavar="KEY_ID", help="End all of this key's.")
@_db_option
@reports_errors
def sessions_end(session_id: str | None, key_id: str | None, db: str) -> None:
    """End the sign-in session ID (from `waypost sessions list`), or every session of the API key
    --key KEY_ID. The key stays valid (to end it too, revoke it); running servers stop accepting
    the sessions within seconds."""
    if session_id is not None and key_id is None:
        with _store(db) as store:
            session = store.end_session_by_id(session_id)
        click.echo(f"ended sign-in session {session.id} of API key {session.key_id}")
    elif key_id is not None and session_id is None:
        with _store(db) as store:
            ended = store.end_key_sessions(key_id)
        count = len(ended)
        click.echo(f"ended {count} sign-in session{'s' if count != 1 else ''} of API key {key_id}")
    else:
        raise click.UsageError("give either a session ID or --key KEY_ID")
