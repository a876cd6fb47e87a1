"""WebSocket requests proxied to the upstream as a byte tunnel, as nginx proxies them.

A WebSocket starts as an HTTP/1.1 request with ``Upgrade: websocket``. When the rules send it
upstream (it passes, or a rewrite changes its path), the server opens a connection to the
upstream, sends it the request head (built by :func:`tunnel_target` from the same
:class:`~waypost.server.proxy.Forward` as any proxied request, with ``Connection: upgrade`` and
``Upgrade`` put back), and reads its answer. Only a ``101 Switching Protocols`` that switches to
``websocket`` makes the connection a tunnel (as in nginx): the 101 and the frames that follow
reach the client unchanged, and the client's frames the upstream, until either side closes. Any
other answer reaches the client as a plain response, and both connections are closed. Redirects
and fixed responses answer the upgrade request like any other request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from waypost.server.proxy import Forward, UpstreamProxy

__all__ = ["Tunnel", "TunnelTarget", "is_switch", "tunnel_target"]

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


def is_switch(status: int, headers: list[tuple[str, str]], upgrade: str) -> bool:
    """Whether an upstream's response head switches the connection to ``upgrade``: a 101 that
    says ``Connection: upgrade`` and names the protocol the request asked for (RFC 9110 §7.8).
    A 101 that does not is no switch, and the connection is not handed to it."""
    if status != 101:
        return False
    tokens = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    upgrades = [value.strip().lower() for name, value in headers if name.lower() == "upgrade"]
    return "upgrade" in tokens and upgrades == [upgrade]


class _UpstreamResponse:
    """httptools callbacks collecting the upstream's answer to the handshake (sans-io)."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.head_done = False
        self.complete = False
        self.body: list[bytes] = []

    def on_message_begin(self) -> None:
        # An interim response (100, 103) is read past: only the final answer is relayed.
        self.headers, self.head_done, self.body = [], False, []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Tunnel:
    """One client connection's WebSocket handshake and, once the upstream switches, its tunnel.

    As nginx does, the connection becomes a tunnel only when the upstream answers ``101`` with
    ``Connection: upgrade`` and ``Upgrade: websocket``. Any other answer is relayed to the client
    as a plain response (hop-by-hop headers dropped) and both connections are closed: what the
    client sends after its handshake never reaches the upstream unless it switched, so a
    keep-alive upstream cannot be made to read it as another request (one that skipped the
    rules and carried a forged ``X-Forwarded-For``). A client sends nothing after its handshake
    until it has the 101 (RFC 6455 §4.1): bytes that come before it are not frames, and the
    handshake is refused with 400.

    ``transport`` is the client's; ``drain`` waits until the client has taken what was written
    (the connection's flow control); ``done(status, size)`` is called once at the end with the
    status the client got (502/504 when the upstream could not be reached) and the bytes of
    body sent; ``refuse(status, detail)`` answers the client with an error page and returns the
    size of its body; ``start_response(status, headers)`` writes the head of a plain response
    (with ``connection: close``).
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        drain: Callable[[], Awaitable[None]],
        done: Callable[[int, int], None],
        refuse: Callable[[int, str], int],
        start_response: Callable[[int, list[tuple[str, str]]], None],
        *,
        timeout: float,
        upgrade: str = "websocket",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.transport = transport
        #: The TLS context of a wss:// upstream (the HTTP proxy's, so both trust the same CAs).
        self._tls = tls
        self._drain = drain
        self._done = done
        self._refuse = refuse
        self._start_response = start_response
        self._timeout = timeout
        self._upgrade = upgrade
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._switched = False
        self._early = False
        self._status = 502  # what the client got, for done() when the client went away first

    def start(self, target: TunnelTarget, first: bytes) -> None:
        """Connect and send the head; ``first`` is what the client sent after its head."""
        if first:
            self._client_too_early()
        self._task = asyncio.get_running_loop().create_task(self._run(target))

    def _client_too_early(self) -> None:
        # Not buffered, never sent: the handshake will be refused. Reading stops until then.
        self._early = True
        self.transport.pause_reading()

    def from_client(self, data: bytes) -> None:
        """Bytes from the client: to the upstream once it has switched, pausing the client if
        the upstream lags."""
        writer = self._writer
        if not self._switched or writer is None:
            self._client_too_early()
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
        if self._switched and self._writer is not None:
            self._writer.close()  # the tunnel's loop ends, and reports its status and size
        elif self._task is not None:
            self._task.cancel()

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        """The upstream's next bytes (b"" at its end); TimeoutError past the upstream timeout."""
        try:
            return await asyncio.wait_for(reader.read(_READ_SIZE), self._timeout)
        except (ConnectionError, OSError):
            return b""

    async def _run(self, target: TunnelTarget) -> None:
        status, size = 502, 0
        try:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        target.host,
                        target.port,
                        ssl=(self._tls or ssl.create_default_context()) if target.tls else None,
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
                    size = self._refuse(status, "The upstream did not answer.")
                return
            self._writer = writer
            writer.write(target.head)
            status, size = await self._handshake(target, reader)
        except asyncio.CancelledError:  # the client went away
            status = self._status
        finally:
            if self._writer is not None:
                self._writer.close()
            if not self.transport.is_closing():
                self.transport.close()
            self._done(status, size)

    async def _handshake(
        self, target: TunnelTarget, reader: asyncio.StreamReader
    ) -> tuple[int, int]:
        """Read the upstream's answer; tunnel on a switch, else relay it. (status, size)"""
        response = _UpstreamResponse()
        parser = httptools.HttpResponseParser(response)
        head = bytearray()  # the answer's head as it came, for a 101 passed on unchanged
        while True:
            try:
                chunk = await self._read(reader)
            except TimeoutError:
                logger.error("waypost: upstream timed out answering a WebSocket: %s", target.host)
                return 504, self._refuse(504, "The upstream did not answer in time.")
            if not chunk:
                break
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserUpgrade as exc:
                end = exc.args[0]
                rest = chunk[end:]
                head += chunk[:end]
                return await self._switch(response, parser, bytes(head), rest, reader)
            except httptools.HttpParserError:
                break  # (httptools also refuses a 101 that names no protocol)
            if not response.head_done:
                head += chunk
            elif parser.get_status_code() > 599:
                break
            elif parser.get_status_code() >= 200:
                return await self._relay(response, parser, reader)
            else:
                head.clear()  # an interim response (100, 103): the answer is still to come
        if response.head_done and parser.get_status_code() == 101:
            detail = "The upstream answered 101 without switching to the protocol asked for."
        else:
            detail = "The upstream sent no valid answer."
        logger.error("waypost: %s (%s)", detail, target.host)
        return 502, self._refuse(502, detail)

    async def _switch(
        self,
        response: _UpstreamResponse,
        parser: httptools.HttpResponseParser,
        head: bytes,
        rest: bytes,
        reader: asyncio.StreamReader,
    ) -> tuple[int, int]:
        """The upstream answered 101: the tunnel, if it switched to what the client asked for."""
        status = parser.get_status_code()
        if not is_switch(status, response.headers, self._upgrade):
            detail = "The upstream answered 101 without switching to the protocol asked for."
            logger.error("waypost: %s", detail)
            return 502, self._refuse(502, detail)
        if self._early:
            return 400, self._refuse(
                400, "Data came before the WebSocket handshake was answered (RFC 6455 4.1)."
            )
        self._switched = True
        self._status = 101
        self.transport.write(head + rest)
        size = len(rest)
        self.transport.resume_reading()
        while not self._closed:
            try:
                chunk = await reader.read(_READ_SIZE)
            except (ConnectionError, OSError):
                break
            if not chunk or self.transport.is_closing():
                break
            self.transport.write(chunk)
            size += len(chunk)
            await self._drain()
        return 101, size

    async def _relay(
        self,
        response: _UpstreamResponse,
        parser: httptools.HttpResponseParser,
        reader: asyncio.StreamReader,
    ) -> tuple[int, int]:
        """A plain answer: its head (hop-by-hop headers dropped) and body, then the end."""
        status = parser.get_status_code()
        headers = UpstreamProxy.response_headers(response.headers)
        # Framed by Content-Length when it had one, else re-chunked (the upstream's own framing
        # is hop-by-hop); either way the connection closes after it.
        length = any(name == "content-length" for name, _ in headers)
        bodiless = status in (204, 304)
        chunked = not length and not bodiless
        if chunked:
            headers.append(("transfer-encoding", "chunked"))
        self._start_response(status, headers)
        self._status = status
        size = 0
        while True:
            for piece in response.body:
                size += len(piece)
                self.transport.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            response.body.clear()
            await self._drain()
            if response.complete or self.transport.is_closing():
                break
            try:
                chunk = await self._read(reader)
            except TimeoutError:
                chunk = b""
            if not chunk:
                break
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserError:
                break
        if response.complete and chunked and not self.transport.is_closing():
            self.transport.write(b"0\r\n\r\n")
        return status, size
