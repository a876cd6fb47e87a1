"""The sign-in-session half of :class:`~waypost.store._sql.SqlStore`: make, check, list and end
admin sessions (stored only as hashes; see :mod:`waypost.store.sessions`).

Expired sessions are deleted whenever sessions are made, listed or ended, so nothing else needs
to clean up. Ending a session deletes its row and drops it from this process's check cache, so it
stops working at once here and within the cache TTL in other processes.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from waypost.exceptions import AuthError, NotFoundError, StoreError, ValidationError
from waypost.store._sql_base import Conn, SqlMixin
from waypost.store._sql_keys import KEY_COLUMNS
from waypost.store.keys import ApiKey, KeyScope
from waypost.store.sessions import (
    CLIENT_ADDRESS_MAX,
    SESSION_ID_LENGTH,
    USER_AGENT_MAX,
    Session,
    clean_client_text,
    hash_token,
    new_session_token,
    session_digest,
)
from waypost.store.sessions import session_id as public_id

__all__ = ["SessionMethods"]

# The key's columns without its secret hash, as read through the join below.
_JOINED_KEY = ", ".join(f"k.{column.strip()}" for column in KEY_COLUMNS.split(",")[:11])
_COLUMNS = "token_hash, key_id, created_at, expires_at, last_seen_at, user_agent, client_address"
_WIDTH = len(_COLUMNS.split(","))
_JOINED_SESSION = ", ".join(f"s.{column.strip()}" for column in _COLUMNS.split(","))
_SESSION_ID = re.compile(rf"[0-9a-f]{{{SESSION_ID_LENGTH}}}\Z")


class SessionMethods(SqlMixin):
    """Admin sign-in sessions over the store's SQL connection (mixed into SqlStore)."""

    @abstractmethod
    def _key(self, row: Sequence[Any]) -> ApiKey: ...

    def _moment(self, value: object) -> datetime:
        moment = self._time_value(value)
        assert moment is not None  # the column is NOT NULL
        return moment

    def _session(self, row: Sequence[Any]) -> Session:
        """A session from a row of ``_COLUMNS``."""
        return Session(
            public_id(row[0]),
            row[1],
            self._moment(row[2]),
            self._moment(row[3]),
            self._time_value(row[4]),
            row[5],
            row[6],
        )

    def _prune_sessions(self, conn: Conn, now: datetime) -> None:
        conn.execute("DELETE FROM waypost_sessions WHERE expires_at <= ?", (self._time_param(now),))

    @staticmethod
    def _require_key(conn: Conn, key_id: str) -> None:
        if not conn.execute("SELECT 1 FROM waypost_keys WHERE id = ?", (key_id,)):
            raise NotFoundError(f"there is no API key {key_id!r}")

    def create_session(
        self,
        key_id: str,
        *,
        lifetime: float,
        user_agent: str | None = None,
        client_address: str | None = None,
    ) -> tuple[Session, str]:
        """A new sign-in session for the API key ``key_id``, ending ``lifetime`` seconds from
        now (or when the key expires, if that is sooner): the stored record and the token,
        which is not kept anywhere (only its hash).

        ``user_agent`` and ``client_address`` say what signed in, for a person reading the list
        of sessions; they are kept as :func:`~waypost.store.sessions.clean_client_text` makes
        them (no control characters, at most 512 and 128 characters), whoever the caller is.

        Sessions that have expired are deleted on the way (nothing else needs to clean up).
        NotFoundError for an unknown key; AuthError for a revoked or expired one."""
        if not lifetime > 0:
            raise ValidationError(
                [("lifetime", f"must be a positive number of seconds, got {lifetime!r}")]
            )
        token = new_session_token()
        digest = hash_token(token)
        now = datetime.now(UTC)
        with self._transaction(write=True) as conn:
            self._prune_sessions(conn, now)
            rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM waypost_keys WHERE id = ?", (key_id,))
            if not rows:
                raise NotFoundError(f"there is no API key {key_id!r}")
            key = self._key(rows[0])
            status = key.status(now)
            if status != "active":
                raise AuthError(status, f"API key {key_id!r} is {status}; it cannot sign in")
            # A session never outlasts its key: it would be refused then anyway, and the list
            # of sessions (and a key made by this session) must not promise more.
            ends = now + timedelta(seconds=lifetime)
            if key.expires_at is not None:
                ends = min(ends, key.expires_at)
            session = Session(
                public_id(digest),
                key_id,
                now,
                ends,
                user_agent=clean_client_text(user_agent, USER_AGENT_MAX),
                client_address=clean_client_text(client_address, CLIENT_ADDRESS_MAX),
            )
            conn.execute(
                f"INSERT INTO waypost_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    key_id,
                    self._time_param(now),
                    self._time_param(session.expires_at),
                    None,
                    session.user_agent,
                    session.client_address,
                ),
            )
        return session, token

    def authenticate_session(
        self, token: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """The API key a session token signs in as, if the session has not ended and the key
        may be used for a request to ``host`` needing ``scope``; AuthError with a ``reason``
        otherwise (``malformed``, ``unknown``, ``expired``, or the key's own reasons)."""
        return self.check_session(token, host=host, scope=scope)[1]

    def check_session(
        self, token: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> tuple[Session, ApiKey]:
        """:meth:`authenticate_session` with the session itself (when it ends, for one)."""
        session, key = self.sessions.authenticate(token, host=host, scope=scope)
        self.keys.note_use(key.id)
        return session, key

    def end_session(self, token: str) -> bool:
        """Sign out: delete the session for ``token`` (at once in this process; within the cache
        TTL everywhere). False when there was none (or ``token`` is not a session token)."""
        try:
            digest = session_digest(token)
        except AuthError:
            return False
        with self._transaction(write=True) as conn:
            found = conn.execute("SELECT 1 FROM waypost_sessions WHERE token_hash = ?", (digest,))
            conn.execute("DELETE FROM waypost_sessions WHERE token_hash = ?", (digest,))
        self.sessions.forget(digest=digest)
        return bool(found)

    def list_sessions(self, *, key_id: str | None = None) -> tuple[Session, ...]:
        """The sign-in sessions that have not ended (all, or those of the API key ``key_id``),
        oldest first, with when each was last seen. Expired ones are deleted on the way.
        NotFoundError for an unknown ``key_id``."""
        with suppress(StoreError):  # this process's pending last-seen times, as list_keys does
            self.sessions.flush()
        with self._transaction(write=True) as conn:
            self._prune_sessions(conn, datetime.now(UTC))
            if key_id is None:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM waypost_sessions ORDER BY created_at, token_hash"
                )
            else:
                self._require_key(conn, key_id)
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM waypost_sessions WHERE key_id = ? "
                    "ORDER BY created_at, token_hash",
                    (key_id,),
                )
        return tuple(self._session(row) for row in rows)

    def end_session_by_id(self, session_id: str) -> Session:
        """End the sign-in session ``session_id`` (an id from :meth:`list_sessions`): it stops
        working at once in this process, within the cache TTL everywhere; its key stays valid.
        The ended session; NotFoundError when there is no such session (ended, expired, or
        never made)."""
        wanted = session_id.strip().lower()
        with self._transaction(write=True) as conn:
            self._prune_sessions(conn, datetime.now(UTC))
            rows = (
                conn.execute(
                    f"SELECT {_COLUMNS} FROM waypost_sessions "
                    f"WHERE substr(token_hash, 1, {SESSION_ID_LENGTH}) = ?",
                    (wanted,),
                )
                if _SESSION_ID.match(wanted)
                else []
            )
            if not rows:
                raise NotFoundError(
                    f"there is no sign-in session {session_id!r}: it has ended or expired, or "
                    "the id is wrong (list the sessions to see their ids)"
                )
            self._delete_sessions(conn, rows)
        self._forget_sessions(rows)
        return self._session(rows[0])

    def end_key_sessions(self, key_id: str) -> tuple[Session, ...]:
        """End every sign-in session of the API key ``key_id``, which stays valid (to end the key
        too, revoke it): they stop working at once in this process, within the cache TTL
        everywhere. The ended sessions (none when it had none); NotFoundError for an unknown
        key."""
        with self._transaction(write=True) as conn:
            self._prune_sessions(conn, datetime.now(UTC))
            self._require_key(conn, key_id)
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM waypost_sessions WHERE key_id = ? "
                "ORDER BY created_at, token_hash",
                (key_id,),
            )
            self._delete_sessions(conn, rows)
        self._forget_sessions(rows)
        return tuple(self._session(row) for row in rows)

    @staticmethod
    def _delete_sessions(conn: Conn, rows: Sequence[Sequence[Any]]) -> None:
        """Delete the sessions of ``rows``: by token hash, exactly those (not one made since)."""
        conn.executemany(
            "DELETE FROM waypost_sessions WHERE token_hash = ?", [(row[0],) for row in rows]
        )

    def _forget_sessions(self, rows: Sequence[Sequence[Any]]) -> None:
        """Drop the sessions of ``rows`` from the check cache, once their deletion is committed,
        so that they fail at once in this process. A check that read a row before the commit
        cannot store it any more (see :mod:`waypost.store._cache`)."""
        for row in rows:
            self.sessions.forget(digest=row[0])

    def _find_session(self, digest: str) -> tuple[Session, ApiKey] | None:
        rows = self._read(
            f"SELECT {_JOINED_SESSION}, {_JOINED_KEY} FROM waypost_sessions AS s "
            "JOIN waypost_keys AS k ON k.id = s.key_id WHERE s.token_hash = ?",
            (digest,),
        )
        if not rows:
            return None
        return self._session(rows[0][:_WIDTH]), self._key(rows[0][_WIDTH:])

    def _record_session_seen(self, seen: Mapping[str, datetime]) -> None:
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE waypost_sessions SET last_seen_at = ? WHERE token_hash = ?",
                [(self._time_param(when), digest) for digest, when in seen.items()],
            )
