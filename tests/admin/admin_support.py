"""Helpers shared by the admin API tests: the API's path and one key of each scope."""

from __future__ import annotations

from dataclasses import dataclass

from waypost.admin import ADMIN_PREFIX
from waypost.store._sql import SqlStore

API = f"{ADMIN_PREFIX}/api"


@dataclass(frozen=True)
class Keys:
    """One key of each scope: the key text, and its public id."""

    read: str
    write: str
    admin: str

    def id(self, scope: str) -> str:
        return str(getattr(self, scope)).split("_")[1]

    def bearer(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, scope)}"}


def make_keys(store: SqlStore) -> Keys:
    """A read, a write and an admin key in ``store``."""
    return Keys(
        *(store.create_key(scope, note=f"test {scope}")[1] for scope in ("read", "write", "admin"))
    )
