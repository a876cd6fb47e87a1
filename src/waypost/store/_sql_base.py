"""What the mixins of :class:`~waypost.store._sql.SqlStore` share: the connection protocols, the
page limit, and what they need from the store they are mixed into (its transaction, its time
conversions and its key and session checkers)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from waypost.store.keys import KeyChecker
from waypost.store.sessions import SessionChecker

__all__ = ["MAX_PAGE", "RULE_COLUMNS", "Conn", "Listener", "SqlMixin", "TimeParam"]

#: The most rows (rules, revisions) one page may hold.
MAX_PAGE = 1000
#: The ``waypost_rules`` columns a stored rule is read from, in this order.
RULE_COLUMNS = "id, rule, version, created_revision, sort_key"
#: A moment as a query parameter: ISO 8601 text (SQLite), a datetime (PostgreSQL), or NULL.
TimeParam = str | datetime | None


class Conn(Protocol):
    """One connection inside a transaction."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders); the rows it returns (none for a write)."""

    def executemany(self, sql: str, params: Sequence[Sequence[object]]) -> None:
        """Run ``sql`` once per parameter row."""


class Listener(Protocol):
    """Waits for a committed change (a hint: callers re-read the revision)."""

    def wait(self, timeout: float) -> None:
        """Return when a change may have been committed, or after ``timeout`` seconds."""

    def close(self) -> None:
        """Release the connection."""


class SqlMixin(ABC):
    """The store's own members the mixins use."""

    keys: KeyChecker
    sessions: SessionChecker
    _stamps: dict[int, object]

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Conn]: ...

    @abstractmethod
    def _time_param(self, moment: datetime | None) -> TimeParam:
        """``moment`` as a query parameter."""

    @abstractmethod
    def _time_value(self, value: object) -> datetime | None:
        """A timestamp column's value as an aware datetime."""

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement, read in a transaction of its own."""
        with self._transaction() as conn:
            return conn.execute(sql, params)
