"""The store's schema, as numbered migrations: one schema for SQLite and PostgreSQL.

Each :class:`Migration` holds the statements for both databases (they differ only where the types
do: timestamps are ``TIMESTAMPTZ`` in PostgreSQL and ISO 8601 text in SQLite). The applied ones are
recorded in ``waypost_schema``; ``waypost db upgrade`` applies the rest in one transaction (both
databases have transactional DDL), so a failed upgrade leaves the schema as it was. Never edit a
released migration: add the next number.

Tables (all prefixed ``waypost_`` so that they can share a PostgreSQL schema):

- ``waypost_state``: one row: the current revision, the defaults, allowed hosts, proxy hosts and
  guards (JSON; ``proxy_hosts`` from migration 4; ``guards`` from migration 5: each guard's
  declaration as a rules file writes it, which names its secrets (an htpasswd path, an
  environment variable) and never holds them);
- ``waypost_rules``: one row per rule: id, sort key (priority), the mapping (JSON), version, and
  columns derived from the rule for filtering (name, from, action, search text);
- ``waypost_revisions``: who (API key id), when, why, and counts of what changed;
- ``waypost_changes``: every row a revision wrote, with the row before (to diff and roll back);
- ``waypost_keys``: API keys: the public id and the SHA-256 of the secret, never the secret;
  from migration 5 the audiences an access key opens (JSON) and whether it opens the admin API
  (``waypost_state.keys_version`` counts changes of the keys);
- ``waypost_sessions``: admin sign-in sessions: the SHA-256 of the token (never the token), the
  key it signs in as, when it was made, expires and was last seen, and the User-Agent and client
  address that signed in (migration 3; NULL for sessions made before it);
- analytics (migration 6; written by flushes of the servers' in-memory counters, whose upserts
  add and never overwrite, so several instances on one database see the sum):
  ``waypost_rule_hits`` (per rule key, a store rule id or a rules file's ``file:line``: hits,
  first and last hit), ``waypost_rule_hours`` (hits per rule and hour, the hour's start in UTC),
  ``waypost_not_found`` (per path answered 404: an id derived from the path, hits, bot hits, first
  and last seen, whether it is open, dismissed or resolved and by which rule),
  ``waypost_not_found_sources`` (a path's heaviest referrers and user agents) and
  ``waypost_stats_other`` (per hour, the 404s of paths too light for the bounded log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LATEST", "MIGRATIONS", "Dialect", "Migration"]

Dialect = Literal["sqlite", "postgres"]


def _whole_number(text: str) -> str:
    """PostgreSQL: ``text`` as an integer when it is digits only, else NULL (a CAST of anything
    else would fail the migration)."""
    return f"CASE WHEN {text} ~ '^[0-9]+$' THEN CAST({text} AS INTEGER) END"


_TYPES = {
    "sqlite": {
        "ts": "TEXT",
        # The status a stored rule states (migration 8 fills the column; writes keep it).
        "rule_status": (
            "CASE WHEN action = 'redirect' THEN CAST(json_extract(rule, '$.status') AS INTEGER) "
            "WHEN action = 'respond' THEN CAST(CASE json_type(rule, '$.respond') "
            "WHEN 'object' THEN json_extract(rule, '$.respond.status') "
            "ELSE json_extract(rule, '$.respond') END AS INTEGER) END"
        ),
    },
    "postgres": {
        "ts": "TIMESTAMPTZ",
        "rule_status": (
            "CASE WHEN action = 'redirect' THEN "
            + _whole_number("(rule::jsonb ->> 'status')")
            + " WHEN action = 'respond' THEN "
            + _whole_number(
                "(CASE jsonb_typeof(rule::jsonb -> 'respond') WHEN 'object' THEN "
                "rule::jsonb -> 'respond' ->> 'status' ELSE rule::jsonb ->> 'respond' END)"
            )
            + " END"
        ),
    },
}


@dataclass(frozen=True, slots=True)
class Migration:
    """Migration ``number``: ``statements`` with ``{ts}`` standing for the timestamp type."""

    number: int
    name: str
    statements: tuple[str, ...]

    def sql(self, dialect: Dialect) -> list[str]:
        """The statements for ``dialect``."""
        return [statement.format(**_TYPES[dialect]) for statement in self.statements]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "rules, revisions and API keys",
        (
            """CREATE TABLE waypost_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                revision BIGINT NOT NULL,
                defaults TEXT NOT NULL,
                allowed_hosts TEXT NOT NULL,
                settings_version BIGINT NOT NULL
            )""",
            "INSERT INTO waypost_state VALUES (1, 0, '{{}}', '[]', 0)",
            """CREATE TABLE waypost_rules (
                id TEXT PRIMARY KEY,
                sort_key BIGINT NOT NULL,
                rule TEXT NOT NULL,
                version BIGINT NOT NULL,
                created_revision BIGINT NOT NULL,
                name TEXT,
                from_path TEXT NOT NULL,
                action TEXT NOT NULL,
                search TEXT NOT NULL
            )""",
            "CREATE INDEX waypost_rules_by_key ON waypost_rules (sort_key)",
            "CREATE INDEX waypost_rules_by_name ON waypost_rules (name)",
            "CREATE INDEX waypost_rules_by_from ON waypost_rules (from_path)",
            """CREATE TABLE waypost_revisions (
                number BIGINT PRIMARY KEY,
                created_at {ts} NOT NULL,
                key_id TEXT,
                message TEXT NOT NULL,
                counts TEXT NOT NULL,
                rollback_of BIGINT
            )""",
            """CREATE TABLE waypost_changes (
                revision BIGINT NOT NULL REFERENCES waypost_revisions (number),
                seq INTEGER NOT NULL,
                op TEXT NOT NULL,
                rule_id TEXT,
                before_rule TEXT,
                after_rule TEXT,
                before_key BIGINT,
                after_key BIGINT,
                PRIMARY KEY (revision, seq)
            )""",
            """CREATE TABLE waypost_keys (
                id TEXT PRIMARY KEY,
                secret_hash TEXT NOT NULL,
                scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
                note TEXT NOT NULL,
                host TEXT,
                created_at {ts} NOT NULL,
                created_by TEXT,
                expires_at {ts},
                revoked_at {ts},
                last_used_at {ts}
            )""",
        ),
    ),
    Migration(
        2,
        "admin sign-in sessions",
        (
            """CREATE TABLE waypost_sessions (
                token_hash TEXT PRIMARY KEY,
                key_id TEXT NOT NULL REFERENCES waypost_keys (id) ON DELETE CASCADE,
                created_at {ts} NOT NULL,
                expires_at {ts} NOT NULL,
                last_seen_at {ts}
            )""",
            "CREATE INDEX waypost_sessions_by_key ON waypost_sessions (key_id)",
            "CREATE INDEX waypost_sessions_by_expiry ON waypost_sessions (expires_at)",
        ),
    ),
    Migration(
        3,
        "who signed in: user agent and client address of sessions",
        (
            # Nullable, no default: a session signed in before this migration keeps working and
            # shows as "unknown"; both databases add such a column without rewriting the table.
            "ALTER TABLE waypost_sessions ADD COLUMN user_agent TEXT",
            "ALTER TABLE waypost_sessions ADD COLUMN client_address TEXT",
        ),
    ),
    Migration(
        4,
        "proxy hosts: the origins the rule set's rewrites may proxy to",
        (
            # A rule set stored before proxying existed proxies nowhere: '[]'. Both databases
            # add a column with a constant default without rewriting the table. The settings
            # recorded in waypost_changes before it lack the key; rewinding reads that as [].
            "ALTER TABLE waypost_state ADD COLUMN proxy_hosts TEXT NOT NULL DEFAULT '[]'",
        ),
    ),
    Migration(
        5,
        "access keys and guards: the audiences a key opens, admin access, a version of the "
        "keys, and the rule set's guards",
        (
            # Every key made before is an admin key of its scope and opens no guarded path.
            # 'admin_access' = 0 marks an access key, whose 'scope' is then not read (the
            # column's CHECK cannot be changed in SQLite without rewriting the table).
            "ALTER TABLE waypost_keys ADD COLUMN audiences TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE waypost_keys ADD COLUMN admin_access INTEGER NOT NULL DEFAULT 1",
            # Bumped by every change of the keys: the guards' key rings reload when it moves.
            "ALTER TABLE waypost_state ADD COLUMN keys_version BIGINT NOT NULL DEFAULT 0",
            # A rule set stored before guards existed has none: '{}'. As with proxy_hosts, the
            # settings recorded in waypost_changes before it lack the key; rewinding reads {}.
            "ALTER TABLE waypost_state ADD COLUMN guards TEXT NOT NULL DEFAULT '{{}}'",
        ),
    ),
    Migration(
        6,
        "analytics: rule hits, hourly series, not-found paths",
        (
            # No foreign key to waypost_rules: a key may be a rules file's 'file:line', and a
            # rule's counts outlive the rule until retention purges them.
            """CREATE TABLE waypost_rule_hits (
                rule_key TEXT PRIMARY KEY,
                hits BIGINT NOT NULL,
                first_at {ts} NOT NULL,
                last_at {ts} NOT NULL
            )""",
            "CREATE INDEX waypost_rule_hits_by_hits ON waypost_rule_hits (hits DESC, rule_key)",
            "CREATE INDEX waypost_rule_hits_by_last ON waypost_rule_hits (last_at, rule_key)",
            """CREATE TABLE waypost_rule_hours (
                rule_key TEXT NOT NULL,
                hour {ts} NOT NULL,
                hits BIGINT NOT NULL,
                PRIMARY KEY (rule_key, hour)
            )""",
            # Retention deletes by hour across every rule.
            "CREATE INDEX waypost_rule_hours_by_hour ON waypost_rule_hours (hour)",
            # 'id' is derived from the path (the first 16 hex digits of its SHA-256), so that
            # instances flushing the same path agree on the row without reading it first.
            # 'status_at' is when the status last changed: a resolved path that answers 404
            # again after it is open again.
            """CREATE TABLE waypost_not_found (
                id TEXT PRIMARY KEY,
                path TEXT NOT NULL UNIQUE,
                hits BIGINT NOT NULL,
                bot_hits BIGINT NOT NULL,
                first_at {ts} NOT NULL,
                last_at {ts} NOT NULL,
                status TEXT NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'dismissed', 'resolved')),
                resolved_rule_id TEXT,
                status_at {ts}
            )""",
            "CREATE INDEX waypost_not_found_by_hits ON waypost_not_found (status, hits DESC, id)",
            # Without bots the list sorts by the hits of people.
            "CREATE INDEX waypost_not_found_by_people ON waypost_not_found "
            "(status, (hits - bot_hits) DESC, id)",
            "CREATE INDEX waypost_not_found_by_last ON waypost_not_found (status, last_at, id)",
            # Retention deletes by last_at whatever the status.
            "CREATE INDEX waypost_not_found_by_age ON waypost_not_found (last_at)",
            """CREATE TABLE waypost_not_found_sources (
                not_found_id TEXT NOT NULL REFERENCES waypost_not_found (id) ON DELETE CASCADE,
                kind TEXT NOT NULL CHECK (kind IN ('referrer', 'user_agent')),
                value TEXT NOT NULL,
                hits BIGINT NOT NULL,
                PRIMARY KEY (not_found_id, kind, value)
            )""",
            """CREATE TABLE waypost_stats_other (
                hour {ts} PRIMARY KEY,
                hits BIGINT NOT NULL
            )""",
        ),
    ),
    Migration(
        7,
        "visits: a sampled log of redirects",
        (
            # 'id' is random (the workers of many instances write at once); 'client' is the
            # address as kept (anonymized by default), 'country' a GeoLite2 ISO code.
            """CREATE TABLE waypost_visits (
                id TEXT PRIMARY KEY,
                at {ts} NOT NULL,
                rule_key TEXT NOT NULL,
                location TEXT,
                referrer TEXT,
                user_agent TEXT,
                country TEXT,
                client TEXT
            )""",
            "CREATE INDEX waypost_visits_by_rule ON waypost_visits (rule_key, at, id)",
            "CREATE INDEX waypost_visits_by_at ON waypost_visits (at, id)",
        ),
    ),
    Migration(
        8,
        "rules: the status each states, for the rules list's status filter",
        (
            # NULL: a redirect without one of its own (the defaults' status), or another action.
            "ALTER TABLE waypost_rules ADD COLUMN status INTEGER",
            "UPDATE waypost_rules SET status = {rule_status}",
        ),
    ),
)

#: The schema version this Waypost needs.
LATEST = MIGRATIONS[-1].number
