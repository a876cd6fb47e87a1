"""A sliding window of failed credentials per client, for the ``basic`` and ``session`` guards.

A client (``Request.client_ip``: the address after trusted proxies) that sent ``max_failures``
wrong credentials within ``window`` seconds is answered 429 with ``Retry-After`` until the oldest
of those failures leaves the window. Memory is bounded whatever the traffic: at most
``max_clients`` clients are tracked, each with at most ``max_failures`` times; when a new client
would exceed that, the client whose last failure is the oldest is forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["MAX_CLIENTS", "MAX_FAILURES", "WINDOW_SECONDS", "FailureWindow", "explaining"]

#: Failed credentials a client may send within the window before it gets 429.
MAX_FAILURES = 10
#: The length of the window, in seconds.
WINDOW_SECONDS = 60
#: Clients tracked at most per guard (about 1 MB at the default of 10 failures each).
MAX_CLIENTS = 10_000


# True while Engine.explain() runs the guards: asking what would happen to a request is not a
# client sending wrong credentials (an operator explaining a forged token would hold back the
# client it names).
_EXPLAINING: ContextVar[bool] = ContextVar("waypost_guards_explaining", default=False)


@contextmanager
def explaining() -> Iterator[None]:
    """Within it, failures are not counted (see :meth:`FailureWindow.failed`)."""
    token = _EXPLAINING.set(True)
    try:
        yield
    finally:
        _EXPLAINING.reset(token)


class FailureWindow:
    """The recent failures of each client, oldest first; not shared between guards."""

    __slots__ = ("_failures", "max_clients", "max_failures", "window")

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        # Insertion order is the order of the clients' last failure (a failure moves its client
        # to the end), so the first key is the one to forget.
        self._failures: dict[str, deque[float]] = {}

    def __repr__(self) -> str:
        return f"FailureWindow(max_failures={self.max_failures}, window={self.window})"

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, client: str | None) -> int | None:
        """Whole seconds until ``client`` may try again, or None when it may now. A client
        whose address is unknown is never held back (there is no one to tell apart)."""
        if client is None:
            return None
        times = self._failures.get(client)
        if times is None:
            return None
        now = time.monotonic()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        if len(times) < self.max_failures:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str | None) -> None:
        """Count a wrong credential from ``client`` (not while explaining)."""
        if client is None or _EXPLAINING.get():
            return
        failures = self._failures
        times = failures.pop(client, None)
        if times is None:
            times = deque(maxlen=self.max_failures)
            while len(failures) >= self.max_clients:
                failures.pop(next(iter(failures)), None)  # whose last failure is oldest
        times.append(time.monotonic())
        failures[client] = times
