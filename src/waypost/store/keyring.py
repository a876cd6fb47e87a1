"""The access keys of a rule store, held in memory for ``api_key`` guards and kept current.

A guard checks keys without I/O (:mod:`waypost.guards.api_key`); :class:`StoreKeyRing` is the
half that reads the store, from a daemon thread:

- every ``refresh`` seconds (1 by default) it reads ``keys_version``, one row, and reloads the
  keys when it moved: a key revoked or made by any process (another worker, another instance on
  the same PostgreSQL) is refused or let in within about ``refresh`` seconds; the store's own
  process reloads at once (:meth:`~waypost.store._sql_keys.KeyMethods.revoke_key`);
- every ``usage_interval`` seconds (5) it writes the last uses the guards noted, in one
  transaction, so last use costs no database write per request; :meth:`close` writes the rest.

While the store is unreachable the ring keeps the keys it has (revoked keys go on working until
the store answers again; a failed refresh is logged and counted in ``errors``). The first load
happens in the constructor's caller (:meth:`start`), so a server does not start with no keys.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from waypost.exceptions import StoreError
from waypost.guards.api_key import AccessKey, KeyRing

__all__ = ["KeySource", "StoreKeyRing", "open_keyring"]

log = logging.getLogger("waypost.store")

#: At least this long between two looks at the store that unknown keys asked for.
NUDGE_SECONDS = 0.05


class KeySource(Protocol):
    """What a ring reads: a rule store (:class:`~waypost.store._sql.SqlStore`)."""

    @property
    def location(self) -> str: ...

    def keys_version(self) -> int: ...

    def access_keys(self) -> tuple[AccessKey, ...]: ...

    def record_access_use(self, used: Mapping[str, float]) -> None: ...


class StoreKeyRing(KeyRing):
    """A :class:`~waypost.guards.api_key.KeyRing` filled from ``store`` and refreshed."""

    def __init__(
        self, store: KeySource, *, refresh: float = 1.0, usage_interval: float = 5.0
    ) -> None:
        super().__init__()
        self._store = store
        self.refresh = refresh
        self.usage_interval = usage_interval
        self.version: int | None = None
        #: Refreshes that failed (the store was unreachable); the keys held stay.
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<StoreKeyRing {len(self)} keys from {self._store.location}>"

    def start(self, *, strict: bool = True) -> None:
        """Load the keys now and follow the store from a daemon thread (again after
        :meth:`close`: a server's worker starts its own). When the store cannot be read:
        StoreError, or with ``strict=False`` the keys held so far stay (logged) and the thread
        tries again."""
        try:
            self.reload()
        except StoreError as exc:
            if strict:
                raise
            self.errors += 1
            log.warning("waypost: access keys not refreshed: %s", exc)
        if self._thread is None:
            self._stop = threading.Event()
            self._wake = threading.Event()
            self._thread = threading.Thread(
                target=self._follow, name="waypost-keyring", daemon=True
            )
            self._thread.start()

    def reload(self) -> None:
        """Read the keys again (whatever the version says)."""
        with self._lock:
            version = self._store.keys_version()
            self.replace(self._store.access_keys())
            self.version = version

    def refresh_if_changed(self) -> bool:
        """Reload when the store's keys changed since the last load; True when it did."""
        if self._store.keys_version() == self.version:
            return False
        self.reload()
        return True

    def flush(self) -> None:
        """Write the last uses noted so far (kept for the next try if the store fails)."""
        used = self.take_uses()
        if not used:
            return
        try:
            self._store.record_access_use(used)
        except StoreError:
            for key_id, when in used.items():
                self.uses.setdefault(key_id, when)
            raise

    def close(self) -> None:
        """Stop following the store and write the last uses."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        try:
            self.flush()
        except StoreError as exc:
            log.warning("waypost: could not record the last use of access keys: %s", exc)

    def missed(self) -> None:
        """An unknown key id was presented: look at the store soon (a key made a moment ago in
        another process is then let in within tens of milliseconds, not at the next refresh).
        The look happens in the ring's thread, at most every ``NUDGE_SECONDS``."""
        self._wake.set()

    def _follow(self) -> None:
        flushed = time.monotonic()
        looked = 0.0
        while not self._stop.is_set():
            if self._wake.wait(self.refresh):
                # Nudged by an unknown key: not more often than NUDGE_SECONDS (a client sending
                # made-up keys costs one look at keys_version per interval, nothing more).
                self._stop.wait(max(0.0, looked + NUDGE_SECONDS - time.monotonic()))
                self._wake.clear()
            if self._stop.is_set():
                break
            looked = time.monotonic()
            try:
                self.refresh_if_changed()
                if time.monotonic() - flushed >= self.usage_interval:
                    flushed = time.monotonic()
                    self.flush()
            except StoreError as exc:
                self.errors += 1
                log.warning("waypost: access keys not refreshed: %s", exc)
            except Exception:  # the thread must outlive a surprise; say it loudly
                self.errors += 1
                log.exception("waypost: access keys not refreshed")


def open_keyring(url: str, *, refresh: float = 1.0) -> StoreKeyRing:
    """The access keys of the store at ``url``, loaded once, not yet followed: a server loads
    them before it forks its workers, and each worker calls :meth:`StoreKeyRing.start` (its own
    connection and thread). StoreError when the store cannot be read."""
    from waypost.store.connect import open_store

    store = open_store(url)
    ring = StoreKeyRing(store, refresh=refresh)
    try:
        ring.reload()
    finally:
        store.close()  # connections are made again, in the worker, when it starts the ring
    return ring
