"""The SQLite store: one file, write-ahead logging, no set-up (the embedded default).

The schema is created and upgraded on first use (``auto_upgrade``, on by default here, unlike
PostgreSQL where several servers share a database and ``waypost db upgrade`` is run once on
purpose). WAL lets readers go on while one writer writes; writers take turns through
``BEGIN IMMEDIATE`` (waiting up to ``timeout`` seconds for the lock).

Other processes learn of a change by polling ``PRAGMA data_version`` on a connection of their own:
the number changes whenever another connection commits, and reading it costs no I/O, so a poll
every ``poll_interval`` seconds (0.1) is cheap.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import quote

from waypost.exceptions import StoreError, StoreUnavailable
from waypost.store._sql import CheckOptions, Conn, Listener, SqlStore
from waypost.store._sql_base import TimeParam
from waypost.store.migrations import LATEST, MIGRATIONS
from waypost.store.model import SchemaStatus

__all__ = ["SqliteStore"]


class _SqliteConn:
    """A connection inside a transaction: ``execute`` returns all rows; errors for people."""

    def __init__(self, store: SqliteStore, connection: sqlite3.Connection) -> None:
        self._store = store
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._store._error(exc) from None

    def executemany(self, sql: str, params: Sequence[Sequence[object]]) -> None:
        try:
            self._connection.executemany(sql, params)
        except sqlite3.Error as exc:
            raise self._store._error(exc) from None


class _DataVersionListener:
    """Polls ``PRAGMA data_version`` on its own connection."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._connection = store._connect(create=False)
        self._seen = self._version()

    def _version(self) -> int:
        try:
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise self._store._error(exc) from None

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            version = self._version()
            if version != self._seen:
                self._seen = version
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(self._store.poll_interval, remaining))

    def close(self) -> None:
        self._connection.close()


class SqliteStore(SqlStore):
    """The rule store in the SQLite file ``path`` (created on first use)."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        auto_upgrade: bool = True,
        timeout: float = 5.0,
        poll_interval: float = 0.1,
        **checks: Unpack[CheckOptions],
    ) -> None:
        super().__init__(auto_upgrade=auto_upgrade, **checks)
        self.path = Path(path)
        self.timeout = timeout
        self.poll_interval = poll_interval
        # One connection, one transaction at a time: SQLite writes one at a time anyway, and
        # a store's reads are short. Listeners have their own connections.
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None

    @property
    def location(self) -> str:
        return f"sqlite:///{self.path}"

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreUnavailable(
                f"the SQLite database {str(self.path)!r} stayed locked by another writer for "
                f"{self.timeout:g} s; try again"
            )
        folder = self.path.absolute().parent
        if "unable to open" in text and not folder.is_dir():
            return StoreUnavailable(
                f"cannot create the SQLite database {str(self.path)!r}: the folder "
                f"{str(folder)!r} does not exist; create it (mkdir -p {folder}) or give another "
                "path"
            )
        if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
            exc, sqlite3.IntegrityError | sqlite3.ProgrammingError
        ):
            return StoreUnavailable(f"cannot use the SQLite database {str(self.path)!r}: {text}")
        return StoreError(f"the SQLite database {str(self.path)!r} failed: {text}")

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        mode = "rwc" if create else "rw"
        uri = f"file:{quote(str(self.path.absolute()))}?mode={mode}"
        try:
            connection = sqlite3.connect(
                uri,
                uri=True,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA synchronous = NORMAL")
            if create:
                connection.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            connection.close()
            raise self._error(exc) from None
        return connection

    @contextmanager
    def _begin_on(self, begin: str, *, create: bool) -> Iterator[Conn]:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect(create=create)
            connection = self._connection
            try:
                connection.execute(begin)
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            try:
                yield _SqliteConn(self, connection)
            except BaseException:
                with suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise self._error(exc) from None

    def _begin(self, *, write: bool) -> AbstractContextManager[Conn]:
        return self._begin_on("BEGIN IMMEDIATE" if write else "BEGIN", create=False)

    def _begin_migration(self) -> AbstractContextManager[Conn]:
        return self._begin_on("BEGIN IMMEDIATE", create=True)

    def schema_status(self) -> SchemaStatus:
        if not self.path.exists():
            return SchemaStatus(0, LATEST, tuple(f"{m.number:04d} {m.name}" for m in MIGRATIONS))
        return super().schema_status()

    def _schema_version(self, conn: Conn) -> int:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'waypost_schema'"
        ):
            return 0
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM waypost_schema")[0][0])

    def _notify(self, conn: Conn, revision: int) -> None:
        """Nothing to send: other connections see ``PRAGMA data_version`` change."""

    def listener(self) -> Listener:
        self._ensure_schema()
        return _DataVersionListener(self)

    def _time_param(self, moment: datetime | None) -> TimeParam:
        return None if moment is None else moment.astimezone(UTC).isoformat()

    def _time_value(self, value: object) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(str(value))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _close_connections(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
