"""Following the store from a background thread: the change-notification half of
:class:`~waypost.store._sql.SqlStore` (PostgreSQL LISTEN/NOTIFY, SQLite ``data_version``)."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress

from waypost.exceptions import StoreError
from waypost.store._sql_base import Listener

__all__ = ["WatchMethods"]

log = logging.getLogger("waypost.store")


class WatchMethods(ABC):
    """``wait_for_change`` and ``watch`` (mixed into SqlStore)."""

    @abstractmethod
    def listener(self) -> Listener: ...

    @abstractmethod
    def current_revision(self) -> int: ...

    def wait_for_change(self, since_revision: int, timeout: float) -> int:
        """Block until the revision differs from ``since_revision`` or ``timeout`` seconds pass;
        return the current revision. Safe to call from any thread."""
        deadline = time.monotonic() + timeout
        listener = self.listener()
        try:
            while True:
                revision = self.current_revision()
                remaining = deadline - time.monotonic()
                if revision != since_revision or remaining <= 0:
                    return revision
                listener.wait(min(remaining, 1.0))
        finally:
            listener.close()

    def watch(
        self,
        callback: Callable[[int], object],
        stop: threading.Event,
        *,
        since_revision: int | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> None:
        """Call ``callback(revision)`` for every new revision until ``stop`` is set (checked at
        least every quarter second). Meant for a background thread.

        Without ``since_revision`` it starts from the current one. While the database is
        unreachable it retries (with back-off), passing each error to ``on_error``; an exception
        from ``callback`` goes there too and watching goes on.
        """
        last = since_revision
        listener: Listener | None = None
        pause = 0.25
        try:
            while not stop.is_set():
                try:
                    if listener is None:
                        listener = self.listener()
                    revision = self.current_revision()
                    pause = 0.25
                    if last is None:
                        last = revision
                    elif revision != last:
                        last = revision
                        self._call(callback, revision, on_error)
                    listener.wait(0.25)
                except StoreError as exc:
                    if listener is not None:
                        with suppress(StoreError):
                            listener.close()
                        listener = None
                    self._report(exc, on_error)
                    stop.wait(pause)
                    pause = min(pause * 2, 5.0)
        finally:
            if listener is not None:
                with suppress(StoreError):
                    listener.close()

    @staticmethod
    def _report(exc: Exception, on_error: Callable[[Exception], object] | None) -> None:
        if on_error is not None:
            on_error(exc)
        else:
            log.warning("waypost store: %s", exc)

    def _call(
        self,
        callback: Callable[[int], object],
        revision: int,
        on_error: Callable[[Exception], object] | None,
    ) -> None:
        try:
            callback(revision)
        except Exception as exc:  # the watcher outlives a failing callback (a bad snapshot)
            self._report(exc, on_error)
