"""Serving from the rule store: each worker keeps its engine in step with the database.

A committed change reaches every worker of every instance within a second: PostgreSQL sends a
NOTIFY, SQLite's ``data_version`` moves, and the worker's background thread loads the new
snapshot and swaps it in with :meth:`Engine.replace` (atomic: a request sees the old rules or the
new ones). If the database becomes unreachable, the worker keeps serving its last good snapshot,
``/_waypost/health`` says ``degraded`` (and why, for a read key), and it recovers by itself
(retrying with back-off) when the database returns. A revision this version cannot load (the
store validates every write, so rules from a newer Waypost, or guards whose files or secrets this
process lacks: the store checks the declarations, only the server reads the htpasswd file, the
secret's environment variable or the JWKS) is skipped the same way: degraded, counted as a
failed reload, the last good snapshot serving, until a later revision loads. The rule set's
guards come with each revision; the engine keeps the access keys it was given.

The file watcher's shrink guard (:mod:`waypost.follow.reloading`) does not apply here: a
revision is a committed transaction, never half-written, and the admin API and ``waypost db``
show it as the rules (an import that would delete more rules than it keeps already needs a
confirmation there); a worker that refused it would serve other rules than the store says, with
no one to tell. A revision that drops every rule, or more than ``reload_max_shrink`` of them, is
served and logged as a warning.

Connections are opened in the worker, after any fork: database connections are not fork-safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from waypost.engine import Engine
from waypost.exceptions import RulesError, StoreError
from waypost.follow.reloading import shrink_problem
from waypost.follow.sources import StoreSource
from waypost.guards import KeyRing
from waypost.store import open_store
from waypost.store._background import BackgroundLoop
from waypost.store.model import Snapshot
from waypost.store.recorder import StatsRecorder

__all__ = ["StoreSync", "engine_and_snapshot", "engine_from_store", "snapshot_engine"]

logger = logging.getLogger("waypost.server")


def engine_from_store(
    url: str, *, pack_rules: bool = True, keys: KeyRing | None = None
) -> tuple[Engine, int, str]:
    """An engine for the store's current rules, the revision it holds, and the store's location
    (its URL without a password); ``keys`` are the access keys its api_key guards check."""
    engine, snapshot, location = engine_and_snapshot(url, pack_rules=pack_rules, keys=keys)
    return engine, snapshot.revision, location


def engine_and_snapshot(
    url: str, *, pack_rules: bool = True, keys: KeyRing | None = None
) -> tuple[Engine, Snapshot, str]:
    """:func:`engine_from_store`, with the snapshot it was built from (its rule ids)."""
    store = open_store(url)
    try:
        snapshot = store.load_snapshot()
        location = store.location
    finally:
        store.close()
    return snapshot_engine(snapshot, pack_rules=pack_rules, keys=keys), snapshot, location


def snapshot_engine(
    snapshot: Snapshot, *, pack_rules: bool = True, keys: KeyRing | None = None
) -> Engine:
    """An engine for the rules, settings and guards of ``snapshot`` (RulesError when they do
    not load here); ``keys`` are the access keys its api_key guards check."""
    return Engine(
        snapshot.rules,
        defaults=snapshot.defaults,
        allowed_hosts=snapshot.allowed_hosts,
        proxy_hosts=snapshot.proxy_hosts,
        pack_rules=pack_rules,
        guards=snapshot.guards,
        keys=keys,
    )


class StoreSync(BackgroundLoop):
    """Keeps ``engine`` at the latest revision of the store of ``source`` (``engine`` holds its
    revision ``source.revision``), from a daemon thread of this worker."""

    def __init__(
        self,
        engine: Engine,
        source: StoreSource,
        *,
        on_reload: Callable[[bool], None] | None = None,
        poll: float = 0.25,
        max_shrink: float = 0.5,
    ) -> None:
        self.engine = engine
        self.url = self.location = source.url
        #: Who counts hits by the store ids of the rules serving (kept in step on each load).
        self.stats: StatsRecorder | None = None
        #: The revision serving (a revision that did not load is not it).
        self.revision = self._skipped = source.revision
        self.on_reload = on_reload
        self.poll = poll
        self.max_shrink = max_shrink
        self.loaded_at = datetime.now(UTC)
        #: Why the store cannot be reached, and why its latest revision does not load.
        self.unreachable: str | None = None
        self.unloadable: str | None = None
        self._store: Any = None
        super().__init__()

    @property
    def degraded(self) -> str | None:
        """Why the rules serving are not the store's latest (None when they are)."""
        return self.unreachable or self.unloadable

    @degraded.setter
    def degraded(self, reason: str | None) -> None:
        # As a failed poll sets it (tests set it so, without a database to lose).
        self.unreachable = reason

    thread_name = "store"

    def __repr__(self) -> str:
        return f"StoreSync({self.engine!r}, {self.location!r}, revision={self.revision})"

    def _run(self) -> None:
        listener: Any = None
        pause = self.poll
        try:
            while not self._stop.is_set():
                try:
                    if self._store is None:
                        self._store = open_store(self.url)
                        self.location = self._store.location
                    if listener is None:
                        listener = self._store.listener()
                    current = self._store.current_revision()
                    if self.unreachable is not None:
                        logger.warning("waypost: the rule store is back (%s)", self.location)
                        self.unreachable = None
                    if current not in (self.revision, self._skipped):
                        self._load()
                    pause = self.poll
                    listener.wait(self.poll)
                except StoreError as exc:
                    self._drop(listener)
                    listener = None
                    self._failed(str(exc))
                    self._stop.wait(pause)
                    pause = min(pause * 2, 5.0)
        finally:
            self._drop(listener)
            if self._store is not None:
                self._store.close()
                self._store = None

    @staticmethod
    def _drop(listener: Any) -> None:
        if listener is not None:
            with suppress(StoreError):
                listener.close()

    def _failed(self, reason: str) -> None:
        if self.unreachable is None:
            logger.error(
                "waypost: the rule store is unreachable (%s); serving revision %d until it returns",
                reason,
                self.revision,
            )
        self.unreachable = reason

    def _load(self) -> None:
        started = time.perf_counter()
        snapshot = self._store.load_snapshot()
        serving = len(self.engine)
        try:
            # The revision's guards replace the ones serving (the engine keeps its key ring).
            self.engine.replace(
                snapshot.rules,
                defaults=snapshot.defaults,
                allowed_hosts=snapshot.allowed_hosts,
                proxy_hosts=snapshot.proxy_hosts,
                guards=snapshot.guards,
            )
        except RulesError as exc:
            # The store validates every write, so this means rules this version cannot read,
            # or guards this process cannot build (an htpasswd file it cannot read, a secret's
            # variable unset here: the store checks the declarations, the server what they name).
            logger.error(
                "waypost: revision %d does not load: %s; still serving revision %d",
                snapshot.revision,
                exc,
                self.revision,
            )
            self._skipped = snapshot.revision
            self.unloadable = f"revision {snapshot.revision} does not load: {exc}"
            self._notify(ok=False)
            return
        shrink = shrink_problem(serving, len(self.engine), self.max_shrink)
        if shrink is not None:
            logger.warning(
                "waypost: revision %d of the rule store is serving, and %s (a committed "
                "revision is served as it is)",
                snapshot.revision,
                shrink,
            )
        self.revision = self._skipped = snapshot.revision
        if self.stats is not None:
            # Hits from now on count against this revision's rules and their ids.
            self.stats.bind(self.engine.rules, snapshot.rule_ids)
        self.unloadable = None
        self.loaded_at = datetime.now(UTC)
        logger.info(
            "waypost: loaded revision %d from the store: %d rules (%.0f ms)",
            self.revision,
            len(self.engine),
            (time.perf_counter() - started) * 1000,
        )
        self._notify(ok=True)

    def _notify(self, *, ok: bool) -> None:
        if self.on_reload is not None:
            self.on_reload(ok)
