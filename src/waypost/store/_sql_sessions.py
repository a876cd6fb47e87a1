"""The sign-in-session half of :class:`~waypost.store._sql.SqlStore`: make, check and end admin
sessions (stored only as hashes; see :mod:`waypost.store.sessions`)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from waypost.exceptions import AuthError, NotFoundError, ValidationError
from waypost.store._sql_base import SqlMixin
from waypost.store._sql_keys import KEY_COLUMNS
from waypost.store.keys import ApiKey, KeyScope
from waypost.store.sessions import (
    Session,
    hash_token,
    new_session_token,
    session_digest,
)

__all__ = ["SessionMethods"]

# The key's columns without its secret hash, as read through the join below.
_JOINED_KEY = ", ".join(f"k.{column.strip()}" for column in KEY_COLUMNS.split(",")[:9])


class SessionMethods(SqlMixin):
    """Admin sign-in sessions over the store's SQL connection (mixed into SqlStore)."""

    @abstractmethod
    def _key(self, row: Sequence[Any]) -> ApiKey: ...

    def _moment(self, value: Any) -> datetime:
        moment = self._time_value(value)
        assert moment is not None  # the column is NOT NULL
        return moment

    def create_session(self, key_id: str, *, lifetime: float) -> tuple[Session, str]:
        """A new sign-in session for the API key ``key_id``, ending ``lifetime`` seconds from
        now: the stored record and the token, which is not kept anywhere (only its hash).

        Sessions that have expired are deleted on the way (nothing else needs to clean up).
        NotFoundError for an unknown key; AuthError for a revoked or expired one."""
        if not lifetime > 0:
            raise ValidationError(
                [("lifetime", f"must be a positive number of seconds, got {lifetime!r}")]
            )
        token = new_session_token()
        now = datetime.now(UTC)
        session = Session(key_id, now, now + timedelta(seconds=lifetime))
        with self._transaction(write=True) as conn:
            conn.execute(
                "DELETE FROM waypost_sessions WHERE expires_at <= ?", (self._time_param(now),)
            )
            rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM waypost_keys WHERE id = ?", (key_id,))
            if not rows:
                raise NotFoundError(f"there is no API key {key_id!r}")
            status = self._key(rows[0]).status(now)
            if status != "active":
                raise AuthError(status, f"API key {key_id!r} is {status}; it cannot sign in")
            conn.execute(
                "INSERT INTO waypost_sessions (token_hash, key_id, created_at, expires_at, "
                "last_seen_at) VALUES (?, ?, ?, ?, ?)",
                (
                    hash_token(token),
                    key_id,
                    self._time_param(now),
                    self._time_param(session.expires_at),
                    None,
                ),
            )
        return session, token

    def authenticate_session(
        self, token: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """The API key a session token signs in as, if the session has not ended and the key
        may be used for a request to ``host`` needing ``scope``; AuthError with a ``reason``
        otherwise (``malformed``, ``unknown``, ``expired``, or the key's own reasons)."""
        _, key = self.sessions.authenticate(token, host=host, scope=scope)
        self.keys.note_use(key.id)
        return key

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

    def _find_session(self, digest: str) -> tuple[Session, ApiKey] | None:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT s.key_id, s.created_at, s.expires_at, s.last_seen_at, "
                f"{_JOINED_KEY} FROM waypost_sessions AS s JOIN waypost_keys AS k "
                "ON k.id = s.key_id WHERE s.token_hash = ?",
                (digest,),
            )
        if not rows:
            return None
        row = rows[0]
        session = Session(
            row[0], self._moment(row[1]), self._moment(row[2]), self._time_value(row[3])
        )
        return session, self._key(row[4:])

    def _record_session_seen(self, seen: Mapping[str, datetime]) -> None:
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE waypost_sessions SET last_seen_at = ? WHERE token_hash = ?",
                [(self._time_param(when), digest) for digest, when in seen.items()],
            )
