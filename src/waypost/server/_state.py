"""What a worker's connections share: the open connections, the ASGI tasks, the Date header."""

from __future__ import annotations

import asyncio
from email.utils import formatdate
from typing import Any

__all__ = ["ServerState"]


class ServerState:
    """One per worker (:mod:`waypost.server.worker`), handed to every connection it accepts."""

    __slots__ = ("app_state", "connections", "date_line", "tasks")

    def __init__(self) -> None:
        #: The open connections (protocols), so that a shutdown can reach each one.
        self.connections: set[Any] = set()
        #: The ASGI tasks running (the app answering a request), awaited at shutdown.
        self.tasks: set[asyncio.Task[None]] = set()
        #: The lifespan's state, copied into each request's scope (ASGI lifespan "state").
        self.app_state: dict[str, Any] = {}
        #: ``date: <now>\r\n``, refreshed once a second by the worker's tick.
        self.date_line = b""
        self.refresh_date()

    def refresh_date(self, now: float | None = None) -> None:
        """Set the Date header line to ``now`` (the current time when not given)."""
        self.date_line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"

    def date(self) -> bytes:
        """The current Date header line."""
        return self.date_line
