"""The ASGI lifespan protocol (version 2.0), run by a worker around serving.

:meth:`Lifespan.startup` calls the app with a ``lifespan`` scope in a task of its own and sends
``lifespan.startup``; serving begins once the app answers ``lifespan.startup.complete``. After
serving, :meth:`Lifespan.shutdown` sends ``lifespan.shutdown`` and waits for
``lifespan.shutdown.complete``. An app that answers ``...failed``, or raises, fails the start
(the worker exits with its start-up failure code) or is logged at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from waypost.middleware._types import ASGIApp, Message

__all__ = ["Lifespan"]

logger = logging.getLogger("waypost.server")


class Lifespan:
    """The lifespan of ``app``; ``state`` is the scope's ``state`` (copied into every request's
    scope by the connections)."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self._receive: asyncio.Queue[Message] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: The app raised, or answered ``lifespan.startup.failed`` / ``lifespan.shutdown.failed``.
        self.failed = False

    async def startup(self) -> bool:
        """Start the app; True once it is ready to serve."""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive.put({"type": "lifespan.startup"})
        await self._started.wait()
        if self.failed:
            logger.error("waypost: the application failed to start; exiting")
            return False
        return True

    async def shutdown(self) -> None:
        """Stop the app (its last counts written, its stores closed)."""
        if self.failed or self._task is None:
            return
        await self._receive.put({"type": "lifespan.shutdown"})
        await self._stopped.wait()
        if self.failed:
            logger.error("waypost: the application failed to shut down cleanly")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive.get, self._send)
        except BaseException as exc:
            if not self.failed:  # not one it reported itself
                self.failed = True
                logger.error("waypost: exception in the ASGI lifespan", exc_info=exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._started.set()
            self._stopped.set()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set()
        elif kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            self.failed = True
            if message.get("message"):
                logger.error("waypost: %s", message["message"])
            self._started.set()
            self._stopped.set()
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
