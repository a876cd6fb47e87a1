"""The API-key half of :class:`~waypost.store._sql.SqlStore`: create, list, revoke and check
keys (stored only as hashes; see :mod:`waypost.store.keys`). Revoking a key ends its sign-in
sessions (:mod:`waypost.store._sql_sessions`)."""

from __future__ import annotations

import json
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from waypost.exceptions import NotFoundError, StoreError, ValidationError
from waypost.guards.api_key import AccessKey
from waypost.rules.model import AUDIENCE
from waypost.store._sql_base import SqlMixin
from waypost.store.keyring import StoreKeyRing
from waypost.store.keys import (
    SCOPES,
    ApiKey,
    KeyScope,
    hash_secret,
    new_key,
    normalize_host,
)

__all__ = ["KEY_COLUMNS", "KeyMethods"]

# The secret's hash comes last: a session joins the columns before it (_sql_sessions).
KEY_COLUMNS = (
    "id, scope, note, host, created_at, created_by, expires_at, revoked_at, last_used_at, "
    "audiences, admin_access, secret_hash"
)
_ACCESS_COLUMNS = "id, secret_hash, audiences, host, expires_at"


class KeyMethods(SqlMixin, ABC):
    """API keys over the store's SQL connection (mixed into SqlStore)."""

    #: The key rings made by :meth:`keyring`, reloaded at once when this process changes a key.
    _keyrings: weakref.WeakSet[StoreKeyRing]

    def _key(self, row: Sequence[Any]) -> ApiKey:
        return ApiKey(
            id=row[0],
            scope=row[1] if row[10] else None,
            note=row[2],
            host=row[3],
            created_at=self._time_value(row[4]),
            created_by=row[5],
            expires_at=self._time_value(row[6]),
            revoked_at=self._time_value(row[7]),
            last_used_at=self._time_value(row[8]),
            audiences=tuple(json.loads(row[9])),
        )

    def create_key(
        self,
        scope: KeyScope | None,
        *,
        expires_at: datetime | None = None,
        note: str = "",
        host: str | None = None,
        created_by: str | None = None,
        audiences: Sequence[str] = (),
    ) -> tuple[ApiKey, str]:
        """A new API key: the stored record and the key itself, which is shown only now.

        ``scope`` is what it may do in the admin API (None: nothing, an access key);
        ``audiences`` the ``api_key`` guards' audiences it opens. It needs one or the other."""
        if scope is not None and scope not in SCOPES:
            raise ValidationError([("scope", f"{scope!r} is not a scope; use {', '.join(SCOPES)}")])
        audiences = tuple(dict.fromkeys(audiences))
        for audience in audiences:
            if not isinstance(audience, str) or not AUDIENCE.fullmatch(audience):
                raise ValidationError(
                    [
                        (
                            "audiences",
                            f"an audience is letters, digits, '.', '_' and '-' (like "
                            f"partners), got {audience!r}",
                        )
                    ]
                )
        if scope is None and not audiences:
            raise ValidationError(
                [
                    (
                        "scope",
                        "a key needs a scope (read, write, admin: the admin API) or an "
                        "audience (the guarded paths of api_key guards), or both",
                    )
                ]
            )
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValidationError([("expires_at", "give a time zone (UTC if in doubt)")])
        bound = normalize_host(host) if host else None
        if host is not None and not bound:
            raise ValidationError([("host", f"{host!r} is not a host name")])
        public_id, secret, presented = new_key()
        now = datetime.now(UTC)
        with self._transaction(write=True) as conn:
            conn.execute(
                f"INSERT INTO waypost_keys ({KEY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    public_id,
                    scope or "read",  # not read for an access key (admin_access = 0)
                    note,
                    bound,
                    self._time_param(now),
                    created_by,
                    self._time_param(expires_at),
                    None,
                    None,
                    json.dumps(list(audiences)),
                    0 if scope is None else 1,
                    hash_secret(secret),
                ),
            )
            if audiences:
                self._bump_keys_version(conn)
        key = ApiKey(
            public_id, scope, note, bound, now, created_by, expires_at, audiences=audiences
        )
        self._keys_changed()
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
            self._bump_keys_version(conn)
        self.keys.forget(key_id)
        self.sessions.forget(key_id=key_id)
        self._keys_changed()
        return self.get_key(key_id)

    @property
    @abstractmethod
    def location(self) -> str: ...

    def access_keys(self) -> tuple[AccessKey, ...]:
        """The access keys ``api_key`` guards may let in now: those with an audience, not
        revoked (an expired one is left out too; one that expires later is checked then)."""
        rows = self._read(
            f"SELECT {_ACCESS_COLUMNS} FROM waypost_keys "
            "WHERE audiences <> '[]' AND revoked_at IS NULL"
        )
        now = datetime.now(UTC)
        keys: list[AccessKey] = []
        for key_id, digest, audiences, host, expires in rows:
            ends = self._time_value(expires)
            if ends is not None and ends <= now:
                continue
            keys.append(
                AccessKey(
                    key_id,
                    digest,
                    frozenset(json.loads(audiences)),
                    host,
                    None if ends is None else ends.timestamp(),
                )
            )
        return tuple(keys)

    def keys_version(self) -> int:
        """A number that changes whenever a key is made or revoked (in any process)."""
        rows = self._read("SELECT keys_version FROM waypost_state WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def record_access_use(self, used: Mapping[str, float]) -> None:
        """Write the last uses of access keys (Unix times by key id), in one transaction."""
        if used:
            self._record_key_use(
                {key_id: datetime.fromtimestamp(when, UTC) for key_id, when in used.items()}
            )

    def keyring(self, *, refresh: float = 1.0) -> StoreKeyRing:
        """The access keys of this store for ``api_key`` guards, kept up to date from a
        background thread (see :class:`~waypost.store.keyring.StoreKeyRing`); pass it as
        ``Engine(..., keys=store.keyring())``. Close it (or the store) when done."""
        ring = StoreKeyRing(self, refresh=refresh)
        self._keyrings.add(ring)
        ring.start()
        return ring

    def _keys_changed(self) -> None:
        # This process's rings at once; the others' within their refresh interval.
        for ring in list(self._keyrings):
            with suppress(StoreError):
                ring.reload()

    @staticmethod
    def _bump_keys_version(conn: Any) -> None:
        conn.execute("UPDATE waypost_state SET keys_version = keys_version + 1 WHERE id = 1")

    def authenticate(
        self, presented: str, *, host: str | None = None, scope: KeyScope | None = None
    ) -> ApiKey:
        """The API key for ``presented`` if it may be used for a request to ``host`` needing
        ``scope``; AuthError with a ``reason`` otherwise (see :class:`KeyChecker`)."""
        return self.keys.authenticate(presented, host=host, scope=scope)

    def _find_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        rows = self._read(f"SELECT {KEY_COLUMNS} FROM waypost_keys WHERE id = ?", (key_id,))
        return (self._key(rows[0]), rows[0][11]) if rows else None

    def _record_key_use(self, used: Mapping[str, datetime]) -> None:
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE waypost_keys SET last_used_at = ? WHERE id = ?",
                [(self._time_param(when), key_id) for key_id, when in used.items()],
            )
