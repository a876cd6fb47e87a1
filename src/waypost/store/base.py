"""The :class:`Store` protocol: what the admin API and the server may rely on.

:class:`~waypost.store.sqlite.SqliteStore` and :class:`~waypost.store.postgres.PostgresStore`
implement it (through :class:`~waypost.store._sql.SqlStore`); a test double may too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from waypost.store.keys import ApiKey, KeyScope
from waypost.store.model import (
    ImportMode,
    ImportOutcome,
    Operation,
    Revision,
    RevisionDiff,
    RulePage,
    RuleSetSettings,
    SchemaStatus,
    Snapshot,
    StoredRule,
)
from waypost.store.sessions import Session

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """Rules in a database: revisions, change notification, API keys and sign-in sessions.

    Every method may raise :class:`~waypost.exceptions.StoreUnavailable` (the database cannot
    be reached) or :class:`~waypost.exceptions.SchemaError` (``waypost db upgrade`` is needed).
    Writes take ``key_id`` (the API key making the change, None for the command line) and a
    ``message``; each one that changes something is one revision.
    """

    @property
    def location(self) -> str:
        """Where the database is (no password)."""
        ...

    # schema
    def schema_status(self) -> SchemaStatus:
        """Applied and pending migrations."""
        ...

    def upgrade(self) -> tuple[int, int]:
        """Apply pending migrations: ``(version before, version after)``."""
        ...

    # reading
    def current_revision(self) -> int:
        """The latest revision number (0: no change yet)."""
        ...

    def load_snapshot(self) -> Snapshot:
        """The whole rule set, for ``Engine.replace``."""
        ...

    def get_settings(self) -> RuleSetSettings:
        """The defaults and allowed hosts."""
        ...

    def get_rule(self, rule_id: str) -> StoredRule:
        """One rule (NotFoundError)."""
        ...

    def list_rules(
        self,
        *,
        from_prefix: str | None = None,
        name: str | None = None,
        action: str | None = None,
        search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RulePage:
        """Rules in priority order, filtered, one page at a time."""
        ...

    # writing
    def create_rule(
        self,
        rule: Mapping[str, Any],
        *,
        position: int | None = None,
        key_id: str | None = None,
        message: str = "",
    ) -> StoredRule:
        """Add a rule."""
        ...

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
        """Change or move a rule (ConflictError on a stale ``expected_version``)."""
        ...

    def delete_rule(
        self,
        rule_id: str,
        *,
        expected_version: int | None = None,
        key_id: str | None = None,
        message: str = "",
    ) -> Revision:
        """Delete a rule (ConflictError on a stale ``expected_version``)."""
        ...

    def set_settings(
        self,
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] | None = None,
        expected_version: int | None = None,
        key_id: str | None = None,
        message: str = "",
    ) -> RuleSetSettings:
        """Replace the defaults and/or the allowed hosts."""
        ...

    def apply(
        self, operations: Sequence[Operation], *, key_id: str | None = None, message: str = ""
    ) -> Revision | None:
        """A bulk change, all or nothing (ValidationError lists every problem)."""
        ...

    def replace_rules(
        self,
        rules: Sequence[Mapping[str, Any]],
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        key_id: str | None = None,
        message: str = "",
    ) -> Revision | None:
        """Make the rule set exactly this, deleting what it lacks without asking."""
        ...

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
    ) -> ImportOutcome:
        """Import a rules file's rules in ``mode`` (merge, append, replace); a replace deleting
        more than it keeps raises ConfirmationError unless ``confirm_deletes`` allows it."""
        ...

    # history
    def list_revisions(self, *, limit: int = 50, before: int | None = None) -> tuple[Revision, ...]:
        """Revisions, newest first."""
        ...

    def get_revision(self, number: int) -> Revision:
        """One revision with its changes."""
        ...

    def diff(self, from_revision: int, to_revision: int | None = None) -> RevisionDiff:
        """How the rule set changed between two revisions."""
        ...

    def rollback(
        self, to_revision: int, *, key_id: str | None = None, message: str = ""
    ) -> Revision | None:
        """Restore the rule set of ``to_revision`` as a new revision."""
        ...

    # change notification
    def wait_for_change(self, since_revision: int, timeout: float) -> int:
        """Block until the revision is not ``since_revision`` (or timeout); the revision."""
        ...

    def watch(
        self,
        callback: Callable[[int], object],
        stop: threading.Event,
        *,
        since_revision: int | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> None:
        """Call ``callback(revision)`` on every change until ``stop`` is set."""
        ...

    # API keys
    def create_key(
        self,
        scope: KeyScope,
        *,
        expires_at: datetime | None = None,
        note: str = "",
        host: str | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the key text (shown once)."""
        ...

    def list_keys(self) -> tuple[ApiKey, ...]:
        """Every key, with last use."""
        ...

    def get_key(self, key_id: str) -> ApiKey:
        """One key (NotFoundError)."""
        ...

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key."""
        ...

    def authenticate(
        self, presented: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """Check a presented key (AuthError with a reason)."""
        ...

    # admin sign-in sessions
    def create_session(
        self,
        key_id: str,
        *,
        lifetime: float,
        user_agent: str | None = None,
        client_address: str | None = None,
    ) -> tuple[Session, str]:
        """A sign-in session for a key: its record and its token (only the hash is stored), with
        the User-Agent and client address that signed in (cleaned of control characters)."""
        ...

    def authenticate_session(
        self, token: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """The key a session token signs in as (AuthError with a reason)."""
        ...

    def check_session(
        self, token: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> tuple[Session, ApiKey]:
        """``authenticate_session`` with the session itself (when it ends, for one)."""
        ...

    def end_session(self, token: str) -> bool:
        """Sign out: delete the session (False when there was none)."""
        ...

    def list_sessions(self, *, key_id: str | None = None) -> tuple[Session, ...]:
        """The sessions that have not ended (of one key, or all); expired ones are deleted."""
        ...

    def end_session_by_id(self, session_id: str) -> Session:
        """End one session by its public id (NotFoundError)."""
        ...

    def end_key_sessions(self, key_id: str) -> tuple[Session, ...]:
        """End every session of a key, which stays valid (NotFoundError for an unknown key)."""
        ...

    def close(self) -> None:
        """Flush pending key usage and close connections."""
        ...
