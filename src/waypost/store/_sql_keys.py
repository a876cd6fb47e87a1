"""The API-key half of :class:`~waypost.store._sql.SqlStore`: create, list, revoke and check
keys (stored only as hashes; see :mod:`waypost.store.keys`). Revoking a key ends its sign-in
sessions (:mod:`waypost.store._sql_sessions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from waypost.exceptions import NotFoundError, StoreError, ValidationError
from waypost.store._sql_base import SqlMixin
from waypost.store.keys import (
    SCOPES,
    ApiKey,
    KeyScope,
    hash_secret,
    new_key,
    normalize_host,
)

__all__ = ["KEY_COLUMNS", "KeyMethods"]

KEY_COLUMNS = (
    "id, scope, note, host, created_at, created_by, expires_at, revoked_at, last_used_at, "
    "secret_hash"
)


class KeyMethods(SqlMixin):
    """API keys over the store's SQL connection (mixed into SqlStore)."""

    def _key(self, row: Sequence[Any]) -> ApiKey:
        return ApiKey(
            id=row[0],
            scope=row[1],
            note=row[2],
            host=row[3],
            created_at=self._time_value(row[4]),
            created_by=row[5],
            expires_at=self._time_value(row[6]),
            revoked_at=self._time_value(row[7]),
            last_used_at=self._time_value(row[8]),
        )

    def create_key(
        self,
        scope: KeyScope,
        *,
        expires_at: datetime | None = None,
        note: str = "",
        host: str | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new API key: the stored record and the key itself, which is shown only now."""
        if scope not in SCOPES:
            raise ValidationError([("scope", f"{scope!r} is not a scope; use {', '.join(SCOPES)}")])
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValidationError([("expires_at", "give a time zone (UTC if in doubt)")])
        bound = normalize_host(host) if host else None
        if host is not None and not bound:
            raise ValidationError([("host", f"{host!r} is not a host name")])
        public_id, secret, presented = new_key()
        now = datetime.now(UTC)
        with self._transaction(write=True) as conn:
            conn.execute(
                f"INSERT INTO waypost_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    public_id,
                    scope,
                    note,
                    bound,
                    self._time_param(now),
                    created_by,
                    self._time_param(expires_at),
                    None,
                    None,
                    hash_secret(secret),
                ),
            )
        key = ApiKey(public_id, scope, note, bound, now, created_by, expires_at)
        return key, presented

    def list_keys(self) -> tuple[ApiKey, ...]:
        """Every API key, oldest first, with when each was last used."""
        with suppress(StoreError):
            self.keys.flush()
        rows = self._read(f"SELECT {KEY_COLUMNS} FROM waypost_keys ORDER BY created_at, id")
        return tuple(self._key(row) for row in rows)

    def get_key(self, key_id: str) -> ApiKey:
        """The API key ``key_id``; NotFoundError when there is none."""
        found = self._find_key(key_id)
        if found is None:
            raise NotFoundError(f"there is no API key {key_id!r}")
        return found[0]

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` and end its sign-in sessions (at once in this process; within the
        cache TTL everywhere)."""
        with self._transaction(write=True) as conn:
            conn.execute(
                "UPDATE waypost_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._time_param(datetime.now(UTC)), key_id),
            )
            # A session is checked against its key anyway; deleting them says "ended" plainly.
            conn.execute("DELETE FROM waypost_sessions WHERE key_id = ?", (key_id,))
        self.keys.forget(key_id)
        self.sessions.forget(key_id=key_id)
        return self.get_key(key_id)

    def authenticate(
        self, presented: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """The API key for ``presented`` if it may be used for a request to ``host`` needing
        ``scope``; AuthError with a ``reason`` otherwise (see :class:`KeyChecker`)."""
        return self.keys.authenticate(presented, host=host, scope=scope)

    def _find_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        rows = self._read(f"SELECT {KEY_COLUMNS} FROM waypost_keys WHERE id = ?", (key_id,))
        return (self._key(rows[0]), rows[0][9]) if rows else None

    def _record_key_use(self, used: Mapping[str, datetime]) -> None:
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE waypost_keys SET last_used_at = ? WHERE id = ?",
                [(self._time_param(when), key_id) for key_id, when in used.items()],
            )
