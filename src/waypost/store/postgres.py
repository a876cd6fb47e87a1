"""The PostgreSQL store (psycopg 3): for teams, and for several servers sharing one rule set.

Install the driver with ``pip install 'waypost[postgres]'``. The schema is created and upgraded
by ``waypost db upgrade --db URL``, run once on purpose (a store refuses to work on an old schema
rather than change a shared database behind its owners' backs). ``schema=`` puts the tables in a
PostgreSQL schema of their own (``search_path``); a URL's ``?options=-csearch_path%3D...`` works
too.

Writes take the single ``waypost_state`` row ``FOR UPDATE``, so writers take turns; a
multi-statement read runs in REPEATABLE READ so it sees one commit. Each commit sends ``NOTIFY``
on ``channel`` with the new revision; a :class:`Listener` (``LISTEN`` on a connection of its own)
wakes as soon as it arrives, in every process. A notification is only a hint: listeners re-read
the revision, so stray ones (another schema on the same channel) are harmless.

Connections are kept in a small pool; one that broke is dropped and the next call reconnects, so a
database that comes back is used again without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Unpack, cast
from urllib.parse import urlsplit, urlunsplit

from waypost.exceptions import StoreError, StoreUnavailable
from waypost.store._sql import CheckOptions, Conn, Listener, SqlStore
from waypost.store._sql_base import TimeParam

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

__all__ = ["PostgresStore", "redact_url"]


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "PostgreSQL needs the psycopg driver: pip install 'waypost[postgres]'"
        ) from None
    return psycopg


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConn:
    def __init__(self, store: PostgresStore, connection: psycopg.Connection[TupleRow]) -> None:
        self._store = store
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        pg = _driver()
        try:
            cursor = self._connection.execute(_placeholders(sql), params)
            return cursor.fetchall() if cursor.description is not None else []
        except pg.Error as exc:
            raise self._store._error(exc) from None

    def executemany(self, sql: str, params: Sequence[Sequence[object]]) -> None:
        pg = _driver()
        try:
            with self._connection.cursor() as cursor:
                cursor.executemany(_placeholders(sql), params)
        except pg.Error as exc:
            raise self._store._error(exc) from None


class _NotifyListener:
    """``LISTEN channel`` on a connection of its own."""

    def __init__(self, store: PostgresStore) -> None:
        pg = _driver()
        self._store = store
        self._connection = store._connect()
        try:
            self._connection.execute(
                pg.sql.SQL("LISTEN {}").format(pg.sql.Identifier(store.channel))
            )
        except pg.Error as exc:
            self._connection.close()
            raise store._error(exc) from None

    def wait(self, timeout: float) -> None:
        pg = _driver()
        try:
            for _ in self._connection.notifies(timeout=timeout, stop_after=1):
                break
        except pg.Error as exc:
            raise self._store._error(exc) from None

    def close(self) -> None:
        self._connection.close()


class PostgresStore(SqlStore):
    """The rule store in the PostgreSQL database at ``url`` (``postgresql://user@host/db``)."""

    dialect = "postgres"
    _for_update = " FOR UPDATE"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        channel: str = "waypost_changes",
        auto_upgrade: bool = False,
        connect_timeout: float = 5.0,
        pool_size: int = 4,
        **checks: Unpack[CheckOptions],
    ) -> None:
        _driver()
        super().__init__(auto_upgrade=auto_upgrade, **checks)
        self.url = url
        self.schema = schema
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.pool_size = pool_size
        self._idle: list[psycopg.Connection[TupleRow]] = []
        self._pool_lock = threading.Lock()

    @property
    def location(self) -> str:
        where = redact_url(self.url)
        return f"{where} (schema {self.schema})" if self.schema else where

    def _error(self, exc: Exception) -> StoreError:
        pg = _driver()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pg.OperationalError | pg.InterfaceError):
            return StoreUnavailable(f"cannot reach the database at {self.location}: {text}")
        return StoreError(f"the database at {self.location} failed: {text}")

    def _connect(self) -> psycopg.Connection[TupleRow]:
        pg = _driver()
        try:
            connection = cast(
                "psycopg.Connection[TupleRow]",
                pg.connect(
                    self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
                ),
            )
        except pg.Error as exc:
            raise self._error(exc) from None
        if self.schema:
            try:
                connection.execute(
                    pg.sql.SQL("SET search_path TO {}").format(pg.sql.Identifier(self.schema))
                )
            except pg.Error as exc:
                connection.close()
                raise self._error(exc) from None
        return connection

    def _checkout(self) -> psycopg.Connection[TupleRow]:
        with self._pool_lock:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection
        return self._connect()

    def _checkin(self, connection: psycopg.Connection[TupleRow]) -> None:
        pg = _driver()
        idle = pg.pq.TransactionStatus.IDLE
        with self._pool_lock:
            if (
                not connection.closed
                and connection.info.transaction_status == idle
                and len(self._idle) < self.pool_size
            ):
                self._idle.append(connection)
                return
        with suppress(Exception):
            connection.close()

    @contextmanager
    def _transaction_on(self, *, write: bool, migrate: bool = False) -> Iterator[Conn]:
        pg = _driver()
        connection = self._checkout()
        try:
            with connection.transaction():
                conn = _PgConn(self, connection)
                if migrate:
                    if self.schema:
                        conn.execute(
                            pg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                            .format(pg.sql.Identifier(self.schema))
                            .as_string(connection)
                        )
                    # Two servers upgrading at once take turns; the second finds nothing to do.
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext('waypost:' || current_schema()))"
                    )
                elif not write:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield conn
        except pg.Error as exc:
            raise self._error(exc) from None
        finally:
            self._checkin(connection)

    def _begin(self, *, write: bool) -> AbstractContextManager[Conn]:
        return self._transaction_on(write=write)

    def _begin_migration(self) -> AbstractContextManager[Conn]:
        return self._transaction_on(write=True, migrate=True)

    def _schema_version(self, conn: Conn) -> int:
        if conn.execute("SELECT to_regclass('waypost_schema')")[0][0] is None:
            return 0
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM waypost_schema")[0][0])

    def _notify(self, conn: Conn, revision: int) -> None:
        # Delivered when (and only if) the transaction commits.
        conn.execute("SELECT pg_notify(?, ?)", (self.channel, str(revision)))

    def listener(self) -> Listener:
        self._ensure_schema()
        return _NotifyListener(self)

    def _time_param(self, moment: datetime | None) -> TimeParam:
        return moment

    def _time_value(self, value: object) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(str(value)).astimezone(UTC)

    def _close_connections(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            with suppress(Exception):
                connection.close()
