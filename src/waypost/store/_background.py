"""A worker's daemon thread that follows something (the rules file, the rule store) or writes
something (the statistics)."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod

__all__ = ["BackgroundLoop"]


class BackgroundLoop(ABC):
    """Runs :meth:`_run` on a daemon thread of this process; ``_stop`` tells it to end.

    Start it in the worker (after any fork): a thread does not survive a fork.
    """

    #: Names the thread (``waypost-<name>-<pid>``), for ``py-spy`` and thread dumps.
    thread_name = "loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """The loop; it returns once ``self._stop`` is set."""

    def _wanted(self) -> bool:
        """Whether the loop should run at all (a subclass may turn itself off)."""
        return True

    def start(self) -> None:
        """Start the thread (no-op when already started or not wanted)."""
        if self._thread is not None or not self._wanted():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"waypost-{self.thread_name}-{os.getpid()}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Tell the loop to end and wait (up to 5 s) for the work in progress to finish."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
