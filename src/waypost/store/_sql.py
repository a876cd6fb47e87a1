"""The store over SQL, shared by SQLite and PostgreSQL; each subclass supplies the connections.

Every write runs in one transaction that first locks the single ``waypost_state`` row (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT ... FOR UPDATE``), so writers take turns and revision
numbers have no gaps. Inside it the whole rule set is loaded, the change applied in memory, and the
result checked with the rules loader and the engine (:mod:`waypost.store._validate`) before a row
is written: a change is all or nothing. Reads of more than one statement run in one snapshot (a
read transaction; REPEATABLE READ on PostgreSQL).

SQL is written once with ``?`` placeholders; a PostgreSQL connection turns them into ``%s``.
"""

from __future__ import annotations

import json
import sys
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypedDict

from waypost.exceptions import (
    ConfirmationError,
    NotFoundError,
    SchemaError,
    StoreError,
    ValidationError,
)
from waypost.store._import import import_outcome, plan_import
from waypost.store._sql_base import Conn, Listener
from waypost.store._sql_commit import Progress
from waypost.store._sql_keys import KeyMethods
from waypost.store._sql_revisions import RevisionMethods
from waypost.store._sql_rules import RuleQueryMethods
from waypost.store._sql_sessions import SessionMethods
from waypost.store._sql_stats import StatsMethods
from waypost.store._sql_watch import WatchMethods
from waypost.store._state import Entry, State, Write, apply_operations, new_rule_id
from waypost.store.keys import KeyChecker
from waypost.store.migrations import LATEST, MIGRATIONS, Dialect
from waypost.store.model import (
    IMPORT_MODES,
    DeleteRule,
    ImportMode,
    ImportOutcome,
    Operation,
    Revision,
    RuleSetSettings,
    SchemaStatus,
    SetRuleSetSettings,
    Snapshot,
    StoredRule,
    UpsertRule,
)
from waypost.store.sessions import SessionChecker

__all__ = ["CheckOptions", "Conn", "Listener", "SqlStore"]


class CheckOptions(TypedDict, total=False):
    """How a store checks API keys and sign-in sessions, passed on by each kind of store:
    ``key_ttl`` (seconds a successful check is trusted, 2) and ``key_usage_interval`` (at most
    one last-use write per key or session in this many seconds, 60)."""

    key_ttl: float
    key_usage_interval: float


class SqlStore(
    RuleQueryMethods,
    RevisionMethods,
    WatchMethods,
    KeyMethods,
    SessionMethods,
    StatsMethods,
    ABC,
):
    """The rule store over a SQL database, public as :class:`waypost.store.Store`: its methods
    are what the admin API and the server rely on.

    Every method may raise :class:`~waypost.exceptions.StoreUnavailable` (the database cannot
    be reached) or :class:`~waypost.exceptions.SchemaError` (``waypost db upgrade`` is needed).
    Writes take ``key_id`` (the API key making the change, None for the command line) and a
    ``message``; each one that changes something is one revision.

    This module holds the schema, the snapshot reads and the write operations; the other parts
    are mixins: the commit they all go through (:mod:`~waypost.store._sql_commit`), rule queries
    (:mod:`~waypost.store._sql_rules`), history (:mod:`~waypost.store._sql_revisions`), change
    watching (:mod:`~waypost.store._sql_watch`), API keys (:mod:`~waypost.store._sql_keys`),
    sign-in sessions (:mod:`~waypost.store._sql_sessions`) and analytics
    (:mod:`~waypost.store._sql_stats`).
    """

    dialect: ClassVar[Dialect]

    def __init__(
        self,
        *,
        auto_upgrade: bool = False,
        key_ttl: float = 2.0,
        key_usage_interval: float = 60.0,
    ) -> None:
        self.auto_upgrade = auto_upgrade
        self.keys = KeyChecker(
            self._find_key, self._record_key_use, ttl=key_ttl, usage_interval=key_usage_interval
        )
        self.sessions = SessionChecker(
            self._find_session,
            self._record_session_seen,
            ttl=key_ttl,
            usage_interval=key_usage_interval,
        )
        self._schema_ready = False
        self._keyrings = weakref.WeakSet()
        #: Whole Unix seconds -> their query parameter (see StatsMethods._unix()).
        self._stamps: dict[int, object] = {}

    # -- what a database supplies -----------------------------------------------------------

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the database is, for messages (a PostgreSQL password is left out)."""

    @abstractmethod
    def _begin(self, *, write: bool) -> AbstractContextManager[Conn]:
        """A transaction (a write one takes the writers' lock); StoreUnavailable if unreachable."""

    @abstractmethod
    def _begin_migration(self) -> AbstractContextManager[Conn]:
        """A transaction for migrations, serialized with other migrating processes."""

    @abstractmethod
    def _schema_version(self, conn: Conn) -> int:
        """The highest migration applied (0 when there is no ``waypost_schema`` table)."""

    @abstractmethod
    def listener(self) -> Listener:
        """A :class:`Listener` on its own connection (close it when done)."""

    @abstractmethod
    def _close_connections(self) -> None:
        """Close every connection this store opened."""

    def close(self) -> None:
        """Write pending key and session usage and close the connections (the store can be
        opened again)."""
        with suppress(StoreError):
            self.keys.flush()
        with suppress(StoreError):
            self.sessions.flush()
        for ring in list(self._keyrings):
            ring.close()
        self._close_connections()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    # -- schema --------------------------------------------------------------------------------

    def schema_status(self) -> SchemaStatus:
        """Which migrations are applied and which are pending (creates nothing)."""
        with self._begin(write=False) as conn:
            version = self._schema_version(conn)
        return SchemaStatus(
            version, LATEST, tuple(f"{m.number:04d} {m.name}" for m in MIGRATIONS[version:])
        )

    def upgrade(self) -> tuple[int, int]:
        """Apply the pending migrations in one transaction; ``(version before, version after)``.

        Running it again is a no-op. Raises SchemaError when the database is newer than this
        Waypost.
        """
        with self._begin_migration() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS waypost_schema ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            before = self._schema_version(conn)
            if before > LATEST:
                raise self._too_new(before)
            for migration in MIGRATIONS[before:]:
                for statement in migration.sql(self.dialect):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO waypost_schema (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.number, migration.name, datetime.now(UTC).isoformat()),
                )
        self._schema_ready = True
        return before, max(before, LATEST)

    def _too_new(self, version: int) -> SchemaError:
        return SchemaError(
            f"the database at {self.location} has schema version {version}, newer than this "
            f"Waypost knows ({LATEST}); upgrade Waypost"
        )

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        status = self.schema_status()
        if status.version > status.latest:
            raise self._too_new(status.version)
        if not status.up_to_date:
            if not self.auto_upgrade:
                raise SchemaError(
                    f"the database at {self.location} is at schema version {status.version}, "
                    f"this Waypost needs {status.latest}: run `waypost db upgrade --db URL`"
                )
            self.upgrade()
        self._schema_ready = True

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Conn]:
        self._ensure_schema()
        with self._begin(write=write) as conn:
            yield conn

    # -- reading -------------------------------------------------------------------------------

    def current_revision(self) -> int:
        """The number of the latest revision (0 before the first change)."""
        return int(self._read("SELECT revision FROM waypost_state WHERE id = 1")[0][0])

    def load_snapshot(self) -> Snapshot:
        """The whole rule set at the current revision, read in one snapshot."""
        with self._transaction() as conn:
            state = self._state(conn)
        return Snapshot(
            state.revision,
            state.settings.defaults,
            state.settings.allowed_hosts,
            tuple(row.rule for row in state.rows),
            tuple(row.id for row in state.rows),
            state.settings.proxy_hosts,
            state.settings.guards,
        )

    def get_settings(self) -> RuleSetSettings:
        """The defaults, allowed hosts, proxy hosts and guards, with their version (for
        ``expected_version``)."""
        head = self._read(
            "SELECT defaults, allowed_hosts, settings_version, proxy_hosts, guards "
            "FROM waypost_state WHERE id = 1"
        )[0]
        return RuleSetSettings(
            json.loads(head[0]),
            tuple(json.loads(head[1])),
            int(head[2]),
            tuple(json.loads(head[3])),
            json.loads(head[4]),
        )

    # -- writing -------------------------------------------------------------------------------

    def apply(
        self,
        operations: Sequence[Operation],
        *,
        key_id: str | None = None,
        message: str = "",
    ) -> Revision | None:
        """Apply ``operations`` (in order) as one revision, all or nothing; None when they
        change nothing.

        The whole resulting rule set is checked before anything is written: ValidationError
        lists every problem with its path (``changes[3].rule.to``); a stale ``expected_version``
        raises ConflictError with the current state; an unknown id raises NotFoundError.
        """
        revision, _, _ = self._commit(
            lambda conn, state: apply_operations(state, operations),
            key_id=key_id,
            message=message,
            settings_label="changes",
        )
        return revision

    def create_rule(
        self,
        rule: Mapping[str, Any],
        *,
        position: int | None = None,
        key_id: str | None = None,
        message: str = "",
    ) -> StoredRule:
        """Add ``rule`` (a rules-file mapping) at ``position`` (None: last)."""
        rule_id = new_rule_id()
        return self._one(
            UpsertRule(rule, position=position),
            rule_id,
            key_id=key_id,
            message=message,
            new_id=lambda: rule_id,
        )

    def update_rule(
        self,
        rule_id: str,
        rule: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        position: int | None = None,
        key_id: str | None = None,
        message: str = "",
    ) -> StoredRule:
        """Replace the rule's content (None keeps it) and/or move it to ``position``.

        With ``expected_version`` (an If-Match), a rule changed since raises ConflictError.
        """
        return self._one(
            UpsertRule(rule, rule_id, expected_version, position),
            rule_id,
            key_id=key_id,
            message=message,
        )

    def _one(
        self,
        operation: UpsertRule,
        rule_id: str,
        *,
        key_id: str | None,
        message: str,
        new_id: Callable[[], str] = new_rule_id,
    ) -> StoredRule:
        _, entries, versions = self._commit(
            lambda conn, state: apply_operations(
                state, [operation], label=lambda _: "", new_id=new_id
            ),
            key_id=key_id,
            message=message,
            with_versions=True,
        )
        for position, entry in enumerate(entries):
            if entry.id == rule_id:
                created = entry.old.created_revision if entry.old else versions[rule_id]
                return StoredRule(rule_id, position, versions[rule_id], entry.rule, created)
        raise NotFoundError(f"there is no rule {rule_id!r}")  # pragma: no cover

    def delete_rule(
        self,
        rule_id: str,
        *,
        expected_version: int | None = None,
        key_id: str | None = None,
        message: str = "",
    ) -> Revision:
        """Delete the rule (ConflictError on a stale ``expected_version``)."""
        revision, _, _ = self._commit(
            lambda conn, state: apply_operations(
                state, [DeleteRule(rule_id, expected_version)], label=lambda _: ""
            ),
            key_id=key_id,
            message=message,
        )
        assert revision is not None  # deleting an existing rule always changes the set
        return revision

    def set_settings(
        self,
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] | None = None,
        expected_version: int | None = None,
        key_id: str | None = None,
        message: str = "",
        proxy_hosts: Sequence[str] | None = None,
        guards: Mapping[str, Any] | None = None,
    ) -> RuleSetSettings:
        """Replace the defaults, allowed hosts, proxy hosts and/or guards (None leaves one
        alone; ``guards`` is the whole mapping of name -> declaration, ``{}`` for none).

        The whole rule set is checked under the new settings: taking a host out of
        ``proxy_hosts`` while a rule proxies to it, or a guard out of ``guards`` while a rule
        requires it, is a ValidationError naming the rule."""
        self._commit(
            lambda conn, state: apply_operations(
                state,
                [
                    SetRuleSetSettings(
                        defaults, allowed_hosts, expected_version, proxy_hosts, guards
                    )
                ],
                label=lambda _: "",
            ),
            key_id=key_id,
            message=message,
        )
        return self.get_settings()

    def replace_rules(
        self,
        rules: Sequence[Mapping[str, Any]],
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        key_id: str | None = None,
        message: str = "",
        proxy_hosts: Sequence[str] = (),
        guards: Mapping[str, Any] | None = None,
    ) -> Revision | None:
        """Make the rule set exactly ``rules`` with these settings; None when nothing changes.

        This is :meth:`import_rules` in ``replace`` mode for programs that mean it: it deletes
        whatever the new rule set lacks without asking for a confirmation. A stored rule keeps
        its id when a new one has its name, exactly its content, or its ``from`` and conditions,
        so that re-importing an edited file records only what was edited.
        """
        outcome = self.import_rules(
            rules,
            mode="replace",
            defaults=dict(defaults or {}),
            allowed_hosts=tuple(allowed_hosts),
            proxy_hosts=tuple(proxy_hosts),
            guards=dict(guards or {}),
            confirm_deletes=sys.maxsize,  # whatever it deletes: that is what it is for
            key_id=key_id,
            message=message,
        )
        return outcome.revision

    def import_rules(
        self,
        rules: Sequence[Mapping[str, Any]],
        *,
        mode: ImportMode = "merge",
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] | None = None,
        confirm_deletes: int | None = None,
        dry_run: bool = False,
        key_id: str | None = None,
        message: str = "",
        order: str | None = None,
        proxy_hosts: Sequence[str] | None = None,
        guards: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> ImportOutcome:
        """Import ``rules`` (a rules file's mappings) in ``mode`` (``merge``, ``append`` or
        ``replace``; see :mod:`waypost.store._import`) as one revision, all or nothing.

        ``defaults`` / ``allowed_hosts`` / ``proxy_hosts`` / ``guards`` are the file's settings
        (None: it has none, keep the stored ones; another format's proxy origins are its
        ``proxy_hosts``);
        ``order`` the order another format's rules were written for (its peer's:
        ``first_match`` for Netlify, say), which a merge or append into rules of the other order
        keeps only where it does not matter (see :mod:`waypost.store._import`).

        A ``replace`` that deletes more stored rules than it keeps raises
        :class:`~waypost.exceptions.ConfirmationError` unless ``confirm_deletes`` allows that
        many deletions (it also caps them: a replace deleting more than ``confirm_deletes``,
        say because the store changed since a dry run, is refused). ``dry_run`` checks and
        counts without writing. ValidationError lists every problem (``rules[3].to``).
        ``progress(stage, done, total)`` hears how far the import is (``checking`` the rules,
        ``writing`` rows), for a progress bar.
        """
        if mode not in IMPORT_MODES:
            raise ValidationError(
                [("mode", f"{mode!r} is not an import mode; use {', '.join(IMPORT_MODES)}")]
            )
        if confirm_deletes is not None and confirm_deletes < 0:
            raise ValidationError(
                [("confirm_deletes", f"must be 0 or more, got {confirm_deletes!r}")]
            )
        seen: list[ImportOutcome] = []

        def build(conn: Conn, state: State) -> tuple[list[Entry], RuleSetSettings]:
            problems: list[tuple[str, str]] = []
            entries, settings = plan_import(
                state,
                rules,
                mode=mode,
                defaults=defaults,
                allowed_hosts=allowed_hosts,
                order=order,
                problems=problems,
                proxy_hosts=proxy_hosts,
                guards=guards,
            )
            if problems:
                raise ValidationError(problems)
            return entries, settings

        def inspect(state: State, entries: list[Entry], writes: list[Write]) -> None:
            outcome = import_outcome(state, entries, writes, mode)
            seen.append(outcome)
            if dry_run:
                return
            allowed = outcome.kept if confirm_deletes is None else confirm_deletes
            if outcome.deleted > allowed:
                confirmed = "" if confirm_deletes is None else f" (confirmed: {confirm_deletes})"
                raise ConfirmationError(
                    f"this replace deletes {outcome.deleted} of the {len(state.rows)} stored "
                    f"rules and keeps {outcome.kept}{confirmed}; nothing was written",
                    deleted=outcome.deleted,
                    kept=outcome.kept,
                )

        revision, _, _ = self._commit(
            build,
            key_id=key_id,
            message=message,
            inspect=inspect,
            dry_run=dry_run,
            progress=progress,
        )
        return replace(seen[-1], revision=revision, dry_run=dry_run)
