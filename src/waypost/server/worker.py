"""One worker process serving: its event loop (uvloop), listeners, lifespan, tick and stop.

:class:`Worker` runs :class:`~waypost.server.app.WaypostApp` on the bound socket it is given:

- start: the app's lifespan starts (the rules watcher, the admin API), then the socket listens
  (``loop.create_server(sock=...)``) with :class:`~waypost.server.protocol.WaypostProtocol` for
  each connection, and with :class:`~waypost.server.https_redirect.HttpsRedirectProtocol` on the
  plain-HTTP redirect socket when there is one. A start that fails leaves :attr:`Worker.started`
  False (the process then exits with ``STARTUP_FAILED``);
- while serving, a tick every 0.1 s: the Date header once a second, the supervisor still alive
  (see :mod:`waypost.server.run`), a renewed TLS certificate loaded
  (:class:`~waypost.server.tls.CertificateReloader`);
- stop, on SIGTERM or SIGINT (even one that arrives while starting up: the shutdown still runs):
  stop accepting, close idle connections, let requests in flight finish for up to
  ``graceful_timeout`` seconds (then cancel what is left), and run the lifespan's shutdown (the
  app's last counts written, its stores closed). The signal handlers end the serve loop and
  nothing more: the process exits normally afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from waypost.server._state import ServerState
from waypost.server.app import WaypostApp
from waypost.server.lifespan import Lifespan
from waypost.server.protocol import WaypostProtocol

__all__ = ["PARENT_EVERY", "TICK_SECONDS", "Worker", "tls_context"]

logger = logging.getLogger("waypost.server")

#: Seconds between two ticks of the serve loop.
TICK_SECONDS = 0.1
#: Ticks between a worker's checks that its supervisor is still its parent.
PARENT_EVERY = 5
#: Ticks between two refreshes of the Date header.
_DATE_EVERY = 10
#: Connections the kernel queues for accept (uvicorn's default, nginx's 511 raised).
_BACKLOG = 2048


def tls_context(cert: str, key: str | None) -> ssl.SSLContext:
    """The server side TLS context for a certificate chain and its private key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Worker:
    """Serve ``app`` on sockets until SIGTERM/SIGINT (or :attr:`should_exit` is set)."""

    def __init__(
        self,
        app: WaypostApp,
        *,
        tls: ssl.SSLContext | None = None,
        supervisor: int | None = None,
        https_redirect: tuple[socket.socket, int] | None = None,
        tls_files: tuple[str, str] | None = None,
        tls_every: int = 50,
    ) -> None:
        self.app = app
        self.tls = tls
        #: The supervisor's pid, in a worker of several: when it is no longer this process's
        #: parent, stop.
        self.supervisor = supervisor
        #: (socket, HTTPS port) when plain HTTP is redirected to HTTPS.
        self.https_redirect = https_redirect
        #: (cert, key) when serving HTTPS: renewed files are loaded while serving, looked at
        #: every ``tls_every`` ticks.
        self.tls_files = tls_files
        self.tls_every = tls_every
        #: Seconds requests in flight may take to finish once the worker stops.
        self.graceful_timeout = app.server.settings.graceful_timeout
        self._tls_reloader: Any = None
        self.state = ServerState()
        #: Set by a signal (or a test) to stop serving.
        self.should_exit = False
        #: True once the app has started and the sockets listen.
        self.started = False
        self._servers: list[asyncio.AbstractServer] = []
        self._lifespan: Lifespan | None = None

    def __repr__(self) -> str:
        return f"Worker({self.app!r})"

    def run(self, sockets: list[socket.socket]) -> None:
        """Serve on a new uvloop event loop until stopped."""
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self.serve(sockets))

    async def serve(self, sockets: list[socket.socket]) -> None:
        """Start, serve until stopped, shut down."""
        with self._signals():
            await self.startup(sockets)
            if not self.started:
                return
            counter = 0
            while not self.tick(counter):
                await asyncio.sleep(TICK_SECONDS)
                counter = (counter + 1) % 864_000
            await self.shutdown()

    async def startup(self, sockets: list[socket.socket]) -> None:
        """Start the app's lifespan, then listen; :attr:`started` says whether it worked."""
        self._lifespan = Lifespan(self.app, self.state.app_state)
        if not await self._lifespan.startup():
            return
        loop = asyncio.get_running_loop()
        app, state = self.app, self.state

        def connection() -> WaypostProtocol:
            return WaypostProtocol(app, state)

        try:
            for sock in sockets:
                self._servers.append(
                    await loop.create_server(connection, sock=sock, ssl=self.tls, backlog=_BACKLOG)
                )
            if self.https_redirect is not None:
                from waypost.server.https_redirect import HttpsRedirectProtocol

                sock, https_port = self.https_redirect
                server = app.server
                self._servers.append(
                    await loop.create_server(
                        lambda: HttpsRedirectProtocol(server, https_port),
                        sock=sock,
                        backlog=_BACKLOG,
                    )
                )
        except OSError as exc:
            logger.error("waypost: cannot listen: %s", exc)
            await self._lifespan.shutdown()
            return
        self.started = True

    def tick(self, counter: int) -> bool:
        """The serve loop's regular work (every TICK_SECONDS); True when it is time to stop."""
        if counter % _DATE_EVERY == 0:
            self.state.refresh_date()
        if (
            self.supervisor is not None
            and counter % PARENT_EVERY == 0
            and os.getppid() != self.supervisor
            and not self.should_exit
        ):
            # The portable way (Linux is told at once, see run._exit_with_supervisor): an
            # orphan would keep answering on the shared port and hold it, so that a restarted
            # server cannot listen. Stop as SIGTERM would: requests in flight finish.
            logger.warning("waypost: the supervisor (pid %d) is gone; stopping", self.supervisor)
            self.should_exit = True
        if self.tls_files is not None and self.tls is not None:
            if self._tls_reloader is None:
                from waypost.server.tls import CertificateReloader

                cert, key = self.tls_files
                self._tls_reloader = CertificateReloader(self.tls, cert, key)
            elif counter % self.tls_every == 0:
                self._tls_reloader.check()
        return self.should_exit

    async def shutdown(self) -> None:
        """Stop accepting, let requests in flight finish (up to ``graceful_timeout``), and stop
        the app."""
        for server in self._servers:
            server.close()
        for connection in list(self.state.connections):
            connection.shutdown()
        await asyncio.sleep(TICK_SECONDS)  # what is already written goes out; idle ones close
        timeout = self.graceful_timeout
        try:
            await asyncio.wait_for(self._finished(), timeout=timeout)
        except TimeoutError:
            if self.state.connections or self.state.tasks:
                logger.error(
                    "waypost: %d connection(s) still busy after %g s (graceful_timeout); "
                    "closing them",
                    len(self.state.connections),
                    timeout,
                )
            for task in list(self.state.tasks):
                task.cancel()
            for connection in list(self.state.connections):
                connection.transport.abort()
        if self._lifespan is not None:
            await self._lifespan.shutdown()

    async def _finished(self) -> None:
        state = self.state
        while state.connections or state.tasks:
            await asyncio.sleep(TICK_SECONDS)
        for server in self._servers:
            await server.wait_closed()

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self.should_exit = True

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM end the serve loop while it runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._stop) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
