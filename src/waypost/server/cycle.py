"""One request's ASGI HTTP cycle: the scope's ``receive`` and ``send``, over one connection.

The connection (:mod:`waypost.server.protocol`) answers most requests itself; what it hands to
the ASGI app (the upstream proxy, the admin API, a request behind one still being answered) runs
through a :class:`ResponseCycle`, as the ASGI HTTP spec (version 2.3) has it:

- ``receive()`` gives ``http.request`` messages, each with the body bytes that arrived since the
  last one and ``more_body`` until the body has ended; then (and once the client is gone, or the
  response complete) ``http.disconnect``. A client that said ``Expect: 100-continue`` gets its
  ``100 Continue`` when the app first asks for the body, not before: an app that refuses the
  request from its head (413) never makes it send the body;
- ``send()`` takes ``http.response.start`` then ``http.response.body`` messages. A response
  with ``Content-Length`` is sent as is (and checked against it); one without is sent chunked,
  except for HEAD requests, 204 and 304, which have no body; the body of a HEAD response is not
  sent. A header name or value that would split the head is refused;
- flow control: :class:`FlowControl` pauses reading the client while a body waits unread
  (``HIGH_WATER`` bytes) and resumes when the app asks for more; ``send()`` waits while the
  transport's buffer is full (``pause_writing`` / ``resume_writing``);
- an app that raises before it starts its response gets a 500 sent in its place; one that raises
  later has its connection closed (the client sees a response cut short, never a wrong one).

It knows nothing of Waypost: sans-app, with the connection behind the small :class:`Connection`
interface, so the connection decides what closing means (it lingers while a body still arrives).
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from waypost.middleware._types import ASGIApp, Message, Scope

__all__ = [
    "CLOSE_HEADER",
    "HIGH_WATER",
    "STATUS_LINE",
    "Connection",
    "FlowControl",
    "ResponseCycle",
]

logger = logging.getLogger("waypost.server")

#: Bytes of request body held for the app before the connection stops reading the client.
HIGH_WATER = 65536
CLOSE_HEADER = (b"connection", b"close")
# What may not appear in a response header's name or value (they would split the head).
_BAD_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:[]={} \t\\"]')
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


#: ``HTTP/1.1 <status> <reason>\r\n`` of every status from 100 to 599.
STATUS_LINE = {status: _status_line(status) for status in range(100, 600)}


class Connection(Protocol):
    """What a cycle needs of its connection."""

    def write(self, data: bytes) -> None:
        """Send ``data`` to the client."""

    def close(self) -> None:
        """Close once what was written is sent (the connection may linger, see _linger.py)."""

    def is_closing(self) -> bool:
        """True once the connection is closed or closing."""


class FlowControl:
    """Reading paused while a request body waits for its app; writing paused while the
    transport's buffer is full (the transport says so: ``pause_writing``/``resume_writing``)."""

    __slots__ = ("_transport", "_writable", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._writable = asyncio.Event()
        self._writable.set()

    async def drain(self) -> None:
        """Return once the transport takes writes again."""
        await self._writable.wait()

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            self._writable.clear()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            self._writable.set()


class ResponseCycle:
    """One request handed to the ASGI app: its scope, the body as it arrives, the response as the
    app sends it. The connection feeds it (:meth:`feed_body`, :meth:`end_body`,
    :meth:`disconnect`); :meth:`run` calls the app."""

    def __init__(
        self,
        scope: Scope,
        connection: Connection,
        flow: FlowControl,
        date_line: Callable[[], bytes],
        *,
        expect_100_continue: bool,
        keep_alive: bool,
        on_response: Callable[[], None],
    ) -> None:
        self.scope = scope
        self.connection = connection
        self.flow = flow
        self._date_line = date_line
        self.on_response = on_response
        self.message_event = asyncio.Event()
        #: The client is gone (or its request turned out malformed): receive() says so.
        self.disconnected = False
        #: False once the connection must close after this response.
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        #: Body bytes arrived and not yet received by the app; False once the body has ended.
        self.body = b""
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self._head = scope["method"] == "HEAD"
        self._chunked = False
        #: Body bytes the response still owes its Content-Length (None: not given).
        self._length_left: int | None = None

    # -- fed by the connection ----------------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        """Body bytes arrived; past HIGH_WATER unread, the connection stops reading."""
        self.body += data
        if len(self.body) > HIGH_WATER:
            self.flow.pause_reading()
        self.message_event.set()

    def end_body(self) -> None:
        """The request's body has ended (or it had none)."""
        self.more_body = False
        self.message_event.set()

    def disconnect(self) -> None:
        """The client is gone: what receive() gives from now on is ``http.disconnect``."""
        if not self.response_complete:
            self.disconnected = True
        self.message_event.set()

    # -- the app ------------------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Call the app; answer 500 if it fails (or returns) before starting its response, and
        close the connection if it fails after."""
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            logger.error("waypost: exception in the ASGI application", exc_info=exc)
            if not self.response_started:
                await self._send_500()
            else:
                self.connection.close()
            if not isinstance(exc, Exception):
                raise  # a cancellation (graceful timeout) or an exit goes on
        else:
            if not self.response_started and not self.disconnected:
                logger.error("waypost: the ASGI application returned without a response")
                await self._send_500()
            elif not self.response_complete and not self.disconnected:
                logger.error("waypost: the ASGI application returned before its response ended")
                self.connection.close()
        finally:
            self.on_response = _nothing

    async def _send_500(self) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"21"),
                    CLOSE_HEADER,
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": b"Internal Server Error"})

    async def receive(self) -> Message:
        """The ASGI ``receive``: the next piece of the body, or ``http.disconnect``."""
        if self.waiting_for_100_continue and not self.connection.is_closing():
            self.connection.write(_CONTINUE)
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            # Always waits, once the body has been given: an app listening for the disconnect
            # (Starlette's responses do, while they send) must block here, not spin.
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        message: Message = {"type": "http.request", "body": self.body, "more_body": self.more_body}
        self.body = b""
        return message

    async def send(self, message: Message) -> None:
        """The ASGI ``send``: the response's head, then its body."""
        kind = message["type"]
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self._start(message["status"], message.get("headers", ()))
        elif not self.response_complete:
            if kind != "http.response.body":
                raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"{kind!r} sent after the response was complete")

    def _start(self, status: int, headers: Any) -> None:
        self.response_started = True
        self.waiting_for_100_continue = False
        out = [STATUS_LINE[status], self._date_line()]
        length: int | None = None
        chunked = closes = False
        for name, value in headers:
            if _BAD_NAME.search(name):
                raise RuntimeError(f"invalid response header name {name!r}")
            if _BAD_VALUE.search(value):
                raise RuntimeError(f"invalid response header value {value!r}")
            name = name.lower()
            if name == b"content-length" and length is None and not chunked:
                length = int(value)
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                length, chunked = None, True
            elif name == b"connection" and value.lower() == b"close":
                self.keep_alive = False
                closes = True
            out += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not closes:
            out.append(b"connection: close\r\n")
        if length is None and not chunked and not self._head and status not in _NO_BODY_STATUSES:
            chunked = True
            out.append(b"transfer-encoding: chunked\r\n")
        out.append(b"\r\n")
        self._chunked = chunked
        self._length_left = length
        self.connection.write(b"".join(out))

    def _body(self, body: bytes, more_body: bool) -> None:
        if self._head:
            pass  # a HEAD response has a head only
        elif self._chunked:
            out = [b"%x\r\n" % len(body), body, b"\r\n"] if body else []
            if not more_body:
                out.append(b"0\r\n\r\n")
            if out:
                self.connection.write(b"".join(out))
        else:
            left = self._length_left
            if left is not None:
                if len(body) > left:
                    raise RuntimeError("the response body is longer than its Content-Length")
                self._length_left = left - len(body)
            if body:
                self.connection.write(body)
        if more_body:
            return
        if not self._head and self._length_left:
            raise RuntimeError("the response body is shorter than its Content-Length")
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.connection.close()
        self.on_response()


def _nothing() -> None:
    pass
