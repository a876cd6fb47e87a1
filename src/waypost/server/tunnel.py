"""WebSocket requests proxied to the upstream as a byte tunnel, as nginx proxies them.

A WebSocket starts as an HTTP/1.1 request with ``Upgrade: websocket``. When the rules send it
upstream (it passes, or a rewrite changes its path), the server opens a connection to the
upstream, sends it the request head (built by :func:`tunnel_target` from the same
:class:`~waypost.server.proxy.Forward` as any proxied request, with ``Connection: upgrade`` and
``Upgrade`` put back), and from then on copies bytes both ways: the upstream's ``101 Switching
Protocols`` and the frames that follow reach the client unchanged, and the client's frames the
upstream. The tunnel ends when either side closes. Redirects and fixed responses answer the
upgrade request like any other request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from waypost.server.proxy import Forward

__all__ = ["Tunnel", "TunnelTarget", "tunnel_target"]

logger = logging.getLogger("waypost.server")

# Past this many bytes waiting to be sent, the side sending them is paused until they are.
_HIGH_WATER = 256 * 1024
_READ_SIZE = 65536
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in a value


@dataclass(frozen=True, slots=True)
class TunnelTarget:
    """Where a tunnel goes and the request head that opens it (sans-io)."""

    host: str
    port: int
    tls: bool
    head: bytes


def tunnel_target(forward: Forward, upgrade: str) -> TunnelTarget:
    """The upstream address and request head for ``forward``, upgraded to ``upgrade``.

    Raises ``ValueError`` for a control character in the target or a header (the HTTP parser
    lets none through; this keeps a head from ever being split if one got this far).
    """
    if _CONTROL.search(forward.url) or any(
        _CONTROL.search(name) or _CONTROL_IN_VALUE.search(value) for name, value in forward.headers
    ):
        raise ValueError("a control character in the request target or a header")
    parts = urlsplit(forward.url)
    tls = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if tls else 80)
    authority = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        authority += f":{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{forward.method} {target} HTTP/1.1", f"host: {authority}"]
    lines += [f"{name}: {value}" for name, value in forward.headers]
    lines += ["connection: upgrade", f"upgrade: {upgrade}"]
    head = "\r\n".join(lines) + "\r\n\r\n"
    try:
        return TunnelTarget(host, port, tls, head.encode("latin-1"))
    except UnicodeEncodeError:
        raise ValueError("the request holds text that is not latin-1") from None


def _status(first: bytes) -> int:
    """The status of an HTTP/1.1 response from its first bytes (502 when unreadable)."""
    line = first.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return 502


class Tunnel:
    """One client connection's tunnel to the upstream.

    ``transport`` is the client's; ``drain`` waits until the client has taken what was written
    (the connection's flow control); ``done(status, size)`` is called once at the end with the
    upstream's status (502/504 when it could not be reached) and the bytes sent to the client;
    ``refuse(status)`` answers the client with an error page when the upstream cannot be reached
    and returns the size of its body.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        drain: Callable[[], Awaitable[None]],
        done: Callable[[int, int], None],
        refuse: Callable[[int], int],
        *,
        timeout: float,
    ) -> None:
        self.transport = transport
        self._drain = drain
        self._done = done
        self._refuse = refuse
        self._timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: list[bytes] = []
        self._closed = False

    def start(self, target: TunnelTarget, first: bytes) -> None:
        """Connect and send the head and ``first`` (what the client sent after its head)."""
        self.transport.pause_reading()  # until the upstream is there to take it
        self._pending.append(target.head + first)
        self._task = asyncio.get_running_loop().create_task(self._run(target))

    def from_client(self, data: bytes) -> None:
        """Bytes from the client: to the upstream, pausing the client if the upstream lags."""
        writer = self._writer
        if writer is None:
            self._pending.append(data)
            return
        writer.write(data)
        if writer.transport.get_write_buffer_size() > _HIGH_WATER:
            self.transport.pause_reading()
            asyncio.get_running_loop().create_task(self._resume_after(writer))

    async def _resume_after(self, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            return
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def client_closed(self) -> None:
        """The client went away: close the upstream side too."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        elif self._task is not None:
            self._task.cancel()

    async def _run(self, target: TunnelTarget) -> None:
        status, size = 502, 0
        try:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        target.host,
                        target.port,
                        ssl=ssl.create_default_context() if target.tls else None,
                    ),
                    self._timeout,
                )
            except (TimeoutError, OSError) as exc:
                status = 504 if isinstance(exc, TimeoutError) else 502
                logger.error(
                    "waypost: upstream %s:%d unreachable for a WebSocket: %s",
                    target.host,
                    target.port,
                    exc or type(exc).__name__,
                )
                if not self.transport.is_closing():
                    size = self._refuse(status)
                return
            self._writer = writer
            for data in self._pending:
                writer.write(data)
            self._pending.clear()
            if self._closed:
                writer.close()
                return
            self.transport.resume_reading()
            first = True
            while True:
                try:
                    chunk = await reader.read(_READ_SIZE)
                except (ConnectionError, OSError):
                    break
                if not chunk:
                    break
                if first:
                    status, first = _status(chunk), False
                if self.transport.is_closing():
                    break
                self.transport.write(chunk)
                size += len(chunk)
                await self._drain()
            writer.close()
        except asyncio.CancelledError:
            pass
        finally:
            if not self.transport.is_closing():
                self.transport.close()
            self._done(status, size)
