"""The HTTP/1.1 connection: llhttp (httptools) on an asyncio transport, Waypost's answers written
directly from the request head, and an ASGI path for the rest.

Most requests to a redirect server are answered from the engine alone (a redirect, a fixed
response, the 404 page, health, metrics). For those, building an ASGI scope, starting a task and
passing messages through the ASGI interface costs several times what deciding does, so this
protocol asks :meth:`WaypostServer.answer <waypost.server.core.WaypostServer.answer>` as soon as the
request head has arrived and, when the answer is a finished response, writes its bytes straight to
the connection. A WebSocket going upstream is tunneled there (:mod:`waypost.server.tunnel`).
Everything else (a request that goes upstream, the admin API, another upgrade, a request behind
one still in progress on the same connection) takes the ASGI path
(:class:`~waypost.server.cycle.ResponseCycle`) to :class:`~waypost.server.app.WaypostApp`, which
asks the same question and gets the same answer. Requests pipelined behind one on the ASGI path
wait their turn (reading the client paused), so that answers leave in the order requests came.

It also bounds what a client may send before its head is complete: httptools buffers a header
until its end, so without a limit a client could make a worker hold any amount of memory. Past
``max_request_line + max_header_bytes`` (plus room for the request line and separators) the
connection gets 414 or 431 and is closed. And it bounds how long a client may take: a head must be
complete within ``header_timeout`` of its first byte and a body must not go ``body_timeout``
without a byte, else the client gets 408 and the connection is closed (nginx's
``client_header_timeout`` / ``client_body_timeout``). Like the keep-alive timeout, these are one
timer per connection that is set only when a read ends inside a head or a body, so a request
that arrives in one read costs no timer at all.

Only public APIs are used: ``httptools.HttpRequestParser`` and an ``asyncio.Protocol`` on the
loop's transport (uvloop's, as :mod:`waypost.server.worker` runs it). ``tests/server`` exercises
both paths on a real socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import partial
from typing import NamedTuple, cast
from urllib.parse import unquote

import httptools

from waypost.responses import Response, error_response
from waypost.rules.request import Request
from waypost.server._http1 import (
    STRICT,
    AfterHead,
    address,
    body_framing,
    connection_tokens,
    is_websocket_handshake,
    split_target,
)
from waypost.server._linger import LINGER_BYTES, LINGER_SECONDS, half_close
from waypost.server._state import ServerState
from waypost.server.app import BODY_FAILED, WaypostApp
from waypost.server.core import Answer
from waypost.server.cycle import STATUS_LINE, FlowControl, ResponseCycle
from waypost.server.request_head import Refusal, check_request_head
from waypost.server.tunnel import Tunnel, tunnel_target

__all__ = ["WaypostProtocol"]

logger = logging.getLogger("waypost.server")

_CLOSE = b"connection: close\r\n"
# The header names on_header() takes note of.
_NOTED = frozenset({b"host", b"transfer-encoding", b"expect", b"connection"})
_KEEP_ALIVE = b"connection: keep-alive\r\n"
# What ends a head after its last header line: the line's own end, then these, then a blank line.
_CLOSE_END = b"\r\n" + _CLOSE + b"\r\n"
_KEEP_ALIVE_END = b"\r\n" + _KEEP_ALIVE + b"\r\n"
# Room beyond the configured limits for the request line's method and version, and separators.
_HEAD_SLACK = 16_384
_BLANK = (b"\r", b"\n")


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request refused from its head (httptools
    stops at once and raises a parser error from it)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


class _AfterClose(Exception):
    """Raised from a parser callback at the start of a request that follows one asking to close
    the connection: nothing after that one is read (an older llhttp goes on parsing it)."""


class _Pending(NamedTuple):
    """A request answered here, waiting for the end of its body."""

    answer: Answer
    request: Request
    target: str
    version: str
    keep_alive: bool

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.request.raw_headers  # type: ignore[return-value]  # the server's: pairs

    @property
    def client_ip(self) -> str | None:
        """The real client's address (behind trusted proxies, what they forwarded)."""
        return self.request.client_ip


# One is made per request: a C-level constructor (a NamedTuple's own __new__ is a Python function).
_pending = partial(tuple.__new__, _Pending)


class WaypostProtocol(asyncio.Protocol):
    """One client connection of a worker serving ``app``; ``state`` is what the worker's
    connections share (:class:`~waypost.server._state.ServerState`)."""

    def __init__(self, app: WaypostApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(**STRICT)
        self.waypost = app.server
        settings = app.server.settings
        self.timeout_keep_alive = settings.keep_alive_timeout
        # The connection, set by connection_made().
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self._cycle_connection: _CycleConnection = None  # type: ignore[assignment]
        #: This server's address and the client's, as ASGI has them; the scheme.
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        # The request being read: its target and header lines, and whether it expects 100.
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_100_continue = False
        #: The request last handed to the ASGI path, and those waiting behind it (the next to
        #: start at the right end).
        self.cycle: ResponseCycle | None = None
        self.pipeline: deque[ResponseCycle] = deque()
        #: The client's address alone (what the engine's requests carry as their peer).
        self._peer: str | None = None
        self._max_line = settings.max_request_line
        self._max_head = settings.max_request_line + settings.max_header_bytes + _HEAD_SLACK
        self._header_timeout = settings.header_timeout
        self._body_timeout = settings.body_timeout
        #: Bytes received since the current request head began (None outside a head).
        self._head_bytes: int | None = None
        #: True when a request ended within the data being fed to the parser.
        self._completed = False
        #: The current request, when this protocol answers it (sent once its body has been read).
        self._answer: _Pending | None = None
        #: Set when the server shuts down while this protocol is reading a request's body.
        self._closing = False
        #: The keep-alive timeout of directly answered requests (see _idle_check).
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        #: A WebSocket request going upstream: waiting for its head to end, then its tunnel.
        self._upgrade: _Pending | None = None
        self._tunnel: Tunnel | None = None
        #: Past the current request's head: header lines now are trailers.
        self._in_trailers = False
        #: What on_header() saw of the current head, for the common head's fast check: how many
        #: Host lines and the last one's value, and whether a Transfer-Encoding came.
        self._hosts = 0
        self._host = b""
        self._chunked = False
        #: The Host value last accepted by check_request_head() on this connection.
        self._host_checked: bytes | None = None
        #: The request's own Connection header says close (see on_header()).
        self._close_asked = False
        #: The last request asked to close the connection (nothing after it is read).
        self._last_closes = False
        #: A request that asks to upgrade and is answered as a plain one: the header lines that
        #: frame its body, until httptools has stopped at the end of its head (_after_upgrade()).
        self._plain_upgrade: bytes | None = None
        #: When the current head began, and the timer of its deadline (header_timeout).
        self._head_started = 0.0
        self._head_timer: asyncio.TimerHandle | None = None
        #: True from the end of a request's head to the end of its body; the timer that closes
        #: a body that stopped arriving (body_timeout).
        self._in_body = False
        self._body_timer: asyncio.TimerHandle | None = None
        #: While the parser reads one piece of data: the answers written meanwhile, sent in one
        #: write when it is done (pipelined requests: one system call, not one each).
        self._batch: list[bytes] | None = None
        #: Answered and closing: what the client still sends is read and dropped (_linger()).
        self._lingering = False
        self._lingered = 0
        self._linger_timer: asyncio.TimerHandle | None = None

    # -- limits -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.from_client(data)
            return
        if self._lingering:
            # The rest of a refused request: dropped unread (see _linger()).
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        if (
            data[:1] in _BLANK
            and self._head_bytes is None
            and not self._in_body
            and not data.strip(b"\r\n")
        ):
            # Blank lines between requests, which the parser skips: not a request coming, so
            # they do not keep an idle connection open (a Slowloris that sends only CRLF).
            return
        self._last_data = self.loop.time()
        self._completed = False
        try:
            self._batch = []
            try:
                self.parser.feed_data(data)
            finally:
                self._flush()
        except httptools.HttpParserError as exc:
            self._parse_error(exc)
            return
        except httptools.HttpParserUpgrade as exc:
            if not self._after_upgrade(data, exc):
                return
        if self._head_bytes is not None:
            # Still inside a request head after this data: count it. When a request ended within
            # this data, where the next head began is not known, so its first piece is not
            # counted: a head is refused at most one read (256 KiB) past the limit, never left
            # unbounded.
            if not self._completed:
                self._head_bytes += len(data)
                if self._head_bytes > self._max_head:
                    self._refuse_head()
                    return
            if self._head_timer is None:
                self._head_timer = self.loop.call_at(
                    self._head_started + self._header_timeout, self._head_check
                )
        elif self._in_body and self._body_timer is None:
            self._body_timer = self.loop.call_later(self._body_timeout, self._body_check)

    def _after_upgrade(self, data: bytes, stop: httptools.HttpParserUpgrade) -> bool:
        """The parser stopped at the end of a head that asks to upgrade, ``stop`` saying where
        in ``data``; False when the connection is no longer read as HTTP requests.

        httptools stops there (``Connection: upgrade``) as if the rest of the connection spoke
        the new protocol, and would read the body of such a request as the next request. Only a
        WebSocket handshake that goes upstream becomes a tunnel; any other is a plain request (a
        server may ignore Upgrade, RFC 9110 §7.8), so its body is read by its own framing and
        parsing goes on after it. (Kept out of data_received(), which every request goes
        through.)
        """
        while True:
            rest = data[stop.args[0] :] if stop.args else b""
            if self._upgrade is not None:
                self._start_tunnel(rest)
                return False
            if self.transport.is_closing():
                return False
            if self._plain_upgrade is not None:
                try:
                    self._read_body_after_upgrade(self._plain_upgrade)
                except httptools.HttpParserError:
                    self._body_failed()
                    response = error_response(400, "The request body is not valid HTTP/1.1.")
                    self._write(response, keep_alive=False)
                    self.transport.close()
                    return False
            if not rest:
                return True
            data = rest
            try:
                self.parser.feed_data(data)
                return True
            except httptools.HttpParserError as exc:
                self._parse_error(exc)
                return False
            except httptools.HttpParserUpgrade as exc:
                stop = exc

    def _parse_error(self, exc: httptools.HttpParserError) -> None:
        """What the parser refused: a 400 and a close, unless that 400 would not be the answer
        to the request being read."""
        # A callback's exception comes out of feed_data() as the context of a parser error.
        cause = exc.__context__
        if isinstance(cause, _Refused):
            self._refuse(cause.refusal)
            return
        if isinstance(cause, _AfterClose):
            return  # as for strict llhttp's error below
        if isinstance(cause, Exception) and not isinstance(cause, httptools.HttpParserError):
            # Not the client's doing: a fault of this server, which the client sees as a 400
            # and the log shows in full.
            logger.error("waypost: a request could not be handled", exc_info=cause)
        if self._last_closes:
            # Data after a request that closes the connection (strict llhttp's error): it is
            # not read; the connection closes once that request's response is written.
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            # Behind a request whose answer is being written: a 400 would land in the middle of
            # it. Close once it is written, instead.
            self._close_after_response()
            return
        # llhttp's reason names what is wrong ("Invalid header value char"), never the bytes.
        detail = f"The request is not valid HTTP/1.1: {exc}."
        if self._response_in_progress():
            # In or right after the body of the request being read: the stream is not what it
            # claimed to be, so that request's app sends nothing upstream (see _body_failed())
            # and the 400 answers in its place.
            self._body_failed()
            self._write(error_response(400, detail), keep_alive=False)
            self._linger()
            return
        self._refuse(Refusal(400, detail), parsed=False)

    def _read_body_after_upgrade(self, framing: bytes) -> None:
        """Go on with a parser that has read a head made of just the body's framing headers, so
        that it reads the upgrade request's body, and the requests after it, as HTTP/1.1."""
        self._plain_upgrade = None
        callbacks = AfterHead(self)
        parser = httptools.HttpRequestParser(callbacks)
        parser.set_dangerous_leniencies(**STRICT)
        parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n")
        callbacks.reading_head = False
        self.parser = parser

    def _response_in_progress(self, *, body_read: bool = False) -> bool:
        """A request on the ASGI path is still being answered (with ``body_read``: one whose
        request has been read to its end, so that what failed to parse came after it)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return False
        return not (body_read and cycle.more_body)

    def _close_after_response(self) -> None:
        # The last request queued (pipeline.appendleft) is answered last: it closes.
        last = self.pipeline[0] if self.pipeline else self.cycle
        if last is not None:
            last.keep_alive = False
        self._last_closes = True

    def _refuse(self, refusal: Refusal, *, parsed: bool = True) -> None:
        """Answer a request refused from its head (see waypost.server.request_head), or one the
        parser refused (``parsed=False``: its method and target are not known), and close:
        where its body would end, and so where the next request would start, is not trusted."""
        self._head_bytes = None
        self._answer = self._upgrade = None
        if self._response_in_progress():
            self._close_after_response()
            return
        if not parsed:
            self._send_refusal(refusal)
            return
        parser = self.parser
        self._send_refusal(
            refusal,
            parser.get_method().decode("latin-1"),
            self.url.decode("latin-1"),
            "HTTP/" + parser.get_http_version(),
            self.headers,
        )

    def _send_refusal(
        self,
        refusal: Refusal,
        method: str = "-",
        target: str = "-",
        protocol: str = "HTTP/1.1",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Answer a refused request (``-`` where its method and target are not known), count
        and log it as rejected, and close the connection (lingering)."""
        response = error_response(refusal.status, refusal.detail, head=method == "HEAD")
        self._count_rejected(response, method, target, protocol, headers)
        self._write(response, keep_alive=False)
        self._linger()

    def _count_rejected(
        self,
        response: Response,
        method: str,
        target: str,
        protocol: str,
        headers: list[tuple[bytes, bytes]] | None,
        *,
        size: int | None = None,
    ) -> None:
        """Count and log a request this protocol refused (``size``: of the body sent, when not
        the whole of ``response``'s)."""
        text_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers or ()]
        self.waypost.done(
            "rejected",
            response.status,
            len(response.body) if size is None else size,
            client_ip=self.waypost.client(self.client[0] if self.client else None, text_headers),
            method=method,
            target=target,
            protocol=protocol,
            headers=text_headers,
        )

    def _linger(self) -> None:
        """Close a connection whose request was refused before it was read to its end, so that
        the client gets the answer rather than a reset (see :mod:`waypost.server._linger`)."""
        transport = self.transport
        if self._lingering or transport.is_closing():
            return
        self._lingering = True
        self._head_bytes = None
        self._in_body = False
        self._cancel_timers()
        if half_close(transport):
            self._linger_timer = self.loop.call_later(LINGER_SECONDS, transport.close)

    def _body_failed(self) -> None:
        """The request the app is reading turned out malformed (a bad chunk, say): tell its app
        now, so that it sends nothing upstream: told only once the connection is gone, the app
        may have read what looked like a whole body by then."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.scope[BODY_FAILED] = "malformed"
            cycle.disconnected = True
            cycle.message_event.set()

    def _refuse_head(self) -> None:
        """A head that grew past the limits before it ended: 414 or 431, without parsing on."""
        settings = self.waypost.settings
        if len(self.url) > self._max_line:
            detail = f"The request target is longer than {settings.max_request_line} bytes."
            self._send_refusal(Refusal(414, detail))
        else:
            detail = f"The request headers are larger than {settings.max_header_bytes} bytes."
            self._send_refusal(Refusal(431, detail))

    # -- the request ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._last_closes:
            raise _AfterClose  # strict llhttp stops here by itself ("Data after close")
        # No ASGI scope: a request answered here never needs one (_asgi() makes it for the
        # others).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._head_bytes = 0
        self._head_started = self._last_data
        self._answer = None
        self._upgrade = None
        self._plain_upgrade = None
        self._in_trailers = False
        self._close_asked = False
        self._last_closes = False
        self._hosts = 0
        self._chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_trailers:
            # Trailer fields (after a chunked body) are dropped: they are not request headers
            # (RFC 9110 §6.5.1), and a trailing Host or Content-Length must not become one.
            return
        if b"_" in name:
            # nginx's underscores_in_headers off: an upstream that reads '_' as '-' must never
            # see Transfer_Encoding or Content_Length as framing.
            return
        # llhttp keeps the whitespace after a value; it is not part of it (RFC 9110 §5.5).
        value = value.rstrip(b" \t")
        # Noting what the fast check in on_headers_complete() needs (this runs for every
        # header line of every request).
        name = name.lower()
        if name in _NOTED:  # one set lookup for the common header, not three comparisons
            if name == b"host":
                self._hosts += 1
                self._host = value
            elif name == b"transfer-encoding":
                self._chunked = True
            elif name == b"connection":
                # Read here too, not only by llhttp: an older llhttp (httptools 0.8) misses
                # "close" followed by a tab, and kept such a connection open.
                if b"close" in connection_tokens(value):
                    self._close_asked = True
            elif value.lower() == b"100-continue":  # Expect
                self.expect_100_continue = True
        self.headers.append((name, value))

    def _keeps_alive(self) -> bool:
        """Whether the request lets the connection live after its response (llhttp's view, and a
        "Connection: close" of its own reading)."""
        return self.parser.should_keep_alive() and not self._close_asked

    def on_url(self, url: bytes) -> None:
        self.url += url

    def _asgi(self) -> None:
        """Hand the request whose head just arrived to the ASGI path: its scope (ASGI HTTP 2.3)
        and cycle, started now or, behind a request still being answered, queued."""
        parser = self.parser
        version: str = parser.get_http_version()
        raw_path, query = split_target(self.url)
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version,
            "method": parser.get_method().decode("ascii"),
            "scheme": self.scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": self.headers,
            "client": self.client,
            "server": self.server,
            "state": self.state.app_state.copy(),
        }
        # An HTTP/1.0 request, one that says "Connection: close" (RFC 9112 §9.6), and any
        # after a shutdown began close the connection after their response.
        keep_alive = version != "1.0" and self._keeps_alive() and not self._closing
        cycle = ResponseCycle(
            scope,
            self._cycle_connection,
            self.flow,
            self.state.date,
            expect_100_continue=self.expect_100_continue,
            keep_alive=keep_alive,
            on_response=self._on_response_complete,
        )
        previous = self.cycle
        self.cycle = cycle
        if previous is None or previous.response_complete:
            self._run(cycle)
        else:  # pipelined behind a request still answered: its turn comes after
            self.flow.pause_reading()
            self.pipeline.appendleft(cycle)

    def _run(self, cycle: ResponseCycle) -> None:
        tasks = self.state.tasks
        task = self.loop.create_task(cycle.run(self.app))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _on_response_complete(self) -> None:
        """An ASGI response was sent: start the next request waiting, or wait for one."""
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._run(self.pipeline.pop())
            return
        # The keep-alive timeout counts from the end of the response (the time the app took
        # is not the client's).
        self._last_data = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._in_trailers = True
        self._in_body = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        parser = self.parser
        raw_method: bytes = parser.get_method()
        version: str = parser.get_http_version()
        # The checks both paths share: nothing below, nor the ASGI path, sees a refused head.
        # The common head (HTTP/1.1, an origin-form target, one Host already accepted on this
        # connection, no Transfer-Encoding) is one check_request_head() accepts unchanged, so
        # it is let through here: the full check cost about a tenth of a directly answered
        # request (benchmarks/bench_server.py --baseline-src).
        if not (
            self._hosts == 1
            and self._host == self._host_checked
            and not self._chunked
            and self.url[:1] == b"/"
            and version == "1.1"
            and raw_method != b"CONNECT"
        ):
            refusal, self.url = check_request_head(raw_method, self.url, version, self.headers)
            if refusal is not None:
                raise _Refused(refusal)
            if self._hosts == 1:
                self._host_checked = self._host
        upgrade = parser.should_upgrade()
        plain_upgrade = upgrade and not self._can_tunnel()
        if plain_upgrade:
            self._plain_upgrade = body_framing(self.headers)
        if (
            (self.cycle is not None and not self.cycle.response_complete)
            or self.pipeline
            or self.flow.write_paused
            or self.expect_100_continue
            or plain_upgrade
        ):
            self._asgi()
            return
        url = self.url
        if url[:1] == b"/" and b"#" not in url:  # origin form, as nearly every request has it
            raw, _, raw_query = url.partition(b"?")
        else:
            raw, raw_query = split_target(url)
        raw_path = raw.decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]
        peer = self._peer
        server = self.waypost
        request = server.request(
            raw_method.decode("ascii"),
            raw_path,
            raw_query.decode("latin-1"),
            headers,
            peer,
            self.scheme,
        )
        app = self.app
        if app.admin is not None and app.to_admin(request.path, self.headers):
            self._asgi()
            return
        answer = server.answer(request, peer)
        target = f"{raw_path}?{request.query_string}" if raw_query else raw_path
        keep_alive = self._keeps_alive() and not upgrade
        pending = _pending((answer, request, target, version, keep_alive))
        if answer.response is not None:
            self._answer = pending
        elif upgrade and answer.forward is not None:  # a WebSocket to the upstream
            self._upgrade = pending
        else:  # it goes upstream: the ASGI path streams it
            self._asgi()

    # -- WebSocket tunnels --------------------------------------------------------------------

    def _can_tunnel(self) -> bool:
        """A WebSocket handshake with an upstream to go to. Anything else that asks to upgrade
        takes the ASGI path as a plain request."""
        waypost = self.waypost
        # Somewhere to go: the upstream, or (when the rules may proxy) a proxy rule's origin.
        if waypost.proxy is None and not waypost.engine.ruleset.proxy_hosts:
            return False
        return is_websocket_handshake(self.parser.get_method(), self.headers)

    def _start_tunnel(self, rest: bytes) -> None:
        """The upgrade request's head has ended: open its tunnel (see waypost.server.tunnel)."""
        pending = self._upgrade
        assert pending is not None and pending.answer.forward is not None
        self._upgrade = None
        if self._idle_timer is not None:  # a WebSocket may stay quiet for as long as it likes
            self._idle_timer.cancel()
            self._idle_timer = None

        def done(status: int, size: int) -> None:
            self.waypost.done(
                pending.answer.action,
                status,
                size,
                client_ip=pending.client_ip,
                method=pending.method,
                target=pending.target,
                protocol="HTTP/" + pending.version,
                headers=pending.headers,
            )

        def refuse(status: int, detail: str) -> int:
            response = error_response(status, detail)
            self._write(response, keep_alive=False)
            return len(response.body)

        def start_response(status: int, headers: list[tuple[str, str]]) -> None:
            self._write(Response(status, tuple(headers), b""), keep_alive=False)

        try:
            target = tunnel_target(pending.answer.forward, "websocket")
        except ValueError:
            done(400, refuse(400, "The request cannot be sent on."))
            self.transport.close()
            return
        proxy = self.waypost.origins
        self._tunnel = Tunnel(
            self.transport,
            self.flow.drain,
            done,
            refuse,
            start_response,
            timeout=proxy.timeout,
            tls=proxy.verify,
        )
        self._tunnel.start(target, rest)

    def on_body(self, body: bytes) -> None:
        if self._answer is None:
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.feed_body(body)
        # else: the answer does not depend on the body; it is read and dropped.

    def on_message_complete(self) -> None:
        if self._plain_upgrade is not None:
            # httptools ends an upgrade request at its head; its body comes (_after_upgrade()).
            return
        self._in_body = False
        pending = self._answer
        self._completed = True
        self._last_closes = not self._keeps_alive()
        if self._upgrade is not None:  # the tunnel starts once the parser stops at the upgrade
            return
        if pending is None:
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.end_body()
            return
        self._answer = None
        response = pending.answer.response
        assert response is not None  # on_headers_complete() keeps only answers with one
        # A head over the limits (414, 431) closes the connection, as nginx does.
        keep_alive = (
            pending.keep_alive and not self._closing and pending.answer.action != "rejected"
        )
        version = pending.version
        self._write(response, keep_alive=keep_alive, http_1_0=version == "1.0")
        request = pending.request  # its fields read directly: _Pending's properties cost frames
        self.waypost.done(
            pending.answer.action,
            response.status,
            len(response.body),
            client_ip=request.client_ip,
            method=request.method,
            target=pending.target,
            protocol="HTTP/1.1" if version == "1.1" else "HTTP/" + version,
            headers=request.raw_headers,  # type: ignore[arg-type]  # the server's: pairs
        )
        if not keep_alive:
            self.transport.close()
        elif self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    # -- slow clients -------------------------------------------------------------------------

    def _head_check(self) -> None:
        """The head's deadline (header_timeout from its first byte), as nginx's
        client_header_timeout: a head trickled in a line at a time must not hold the connection
        for as long as the client likes."""
        self._head_timer = None
        if self._head_bytes is None or self.transport.is_closing():
            return
        late = self.loop.time() - (self._head_started + self._header_timeout)
        if late < 0:  # the loop may run a timer a little before its time
            self._head_timer = self.loop.call_later(-late, self._head_check)
            return
        setting = self.waypost.settings.header_timeout
        self._time_out(f"The request head did not arrive within {setting:g} s (header_timeout).")

    def _body_check(self) -> None:
        """A body that stopped arriving (body_timeout between two reads), as nginx's
        client_body_timeout. Time when this server is not reading (the upstream takes the body
        slower than it comes, or the client waits for its 100 Continue) is not the client's."""
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        now = self.loop.time()
        cycle = self.cycle
        if self.flow.read_paused or (
            cycle is not None and cycle.waiting_for_100_continue and not cycle.response_complete
        ):
            self._last_data = now
        idle = now - self._last_data
        if idle < self._body_timeout:
            self._body_timer = self.loop.call_later(self._body_timeout - idle, self._body_check)
            return
        setting = self.waypost.settings.body_timeout
        self._time_out(f"The request body stopped arriving for {setting:g} s (body_timeout).")

    def _time_out(self, detail: str) -> None:
        """Answer 408 (when no response has begun), log it, and close the connection."""
        response = error_response(408, detail)
        cycle = self.cycle
        method, target = "-", "-"
        answer = True
        if self._answer is not None:
            method, target = self._answer.method, self._answer.target
        elif cycle is not None and (self._in_body or not cycle.response_complete):
            # The app has this request (or is answering the one before this head): a 408 only
            # if no response has begun. The app sees the client gone; nothing more is written.
            answer = self._in_body and not cycle.response_started
            if answer:
                scope = cycle.scope
                method, target = scope["method"], scope["raw_path"].decode("latin-1")
                if scope["query_string"]:
                    target += "?" + scope["query_string"].decode("latin-1")
            if not cycle.response_complete:
                if self._in_body:  # the app logs it, and leaves the counting to this
                    cycle.scope[BODY_FAILED] = "stalled"
                cycle.disconnected = True
                cycle.message_event.set()
        if answer:
            self._write(response, keep_alive=False)
        self._count_rejected(
            response, method, target, "HTTP/1.1", self.headers, size=None if answer else 0
        )
        self._head_bytes = None
        self._in_body = False
        self.transport.close()

    def _idle_check(self) -> None:
        """Close the connection once it has been idle for the keep-alive timeout.

        Arming a timer after every response and cancelling it when data arrives would cost two
        timer operations per request. One timer per connection instead looks at the time the
        last data arrived when it fires, and waits again if the connection has been busy since.
        """
        self._idle_timer = None
        if self.transport.is_closing() or self._tunnel is not None:
            return
        idle = self.loop.time() - self._last_data
        busy = self._answer is not None or (
            self.cycle is not None and not self.cycle.response_complete
        )
        if busy or idle < self.timeout_keep_alive:
            wait = self.timeout_keep_alive - idle if not busy else self.timeout_keep_alive
            self._idle_timer = self.loop.call_later(max(wait, 0.01), self._idle_check)
            return
        self.transport.close()

    # -- the connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.state.connections.add(self)
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.flow = FlowControl(self.transport)
        self._cycle_connection = _CycleConnection(self)
        self.server = address(transport.get_extra_info("sockname"))
        self.client = address(transport.get_extra_info("peername"))
        self._peer = self.client[0] if self.client else None
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        # A client that sends nothing, or stops halfway through a request head, is closed after
        # the keep-alive timeout too.
        self._last_data = self.loop.time()
        self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _cancel_timers(self) -> None:
        for timer in (self._idle_timer, self._head_timer, self._body_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._head_timer = self._body_timer = self._linger_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._cancel_timers()
        if self._tunnel is not None:
            self._tunnel.client_closed()
        if self.cycle is not None:  # its app sees the client gone
            self.cycle.disconnect()
        self.flow.resume_writing()

    def eof_received(self) -> None:
        # The client closed its side: the transport closes (its app sees a disconnect).
        return None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def shutdown(self) -> None:
        """The worker stops: finish the request in progress, then close; close now if idle."""
        self._closing = True
        if self._answer is not None:  # finish this request, then close
            return
        if self._tunnel is not None:  # a WebSocket has no request to finish: end it
            self.transport.close()
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.close()
        else:
            self._close_after_response()

    def _write(self, response: Response, *, keep_alive: bool, http_1_0: bool = False) -> None:
        # The header lines joined in C ("name: value" pairs by str.join, not a comprehension):
        # this runs for every directly answered request.
        headers = response.headers
        lines = "\r\n".join(map(": ".join, headers)).encode("latin-1")
        if not keep_alive:
            end = _CLOSE_END if headers else _CLOSE + b"\r\n"
        elif http_1_0:  # an HTTP/1.0 client keeps the connection only if told so
            end = _KEEP_ALIVE_END if headers else _KEEP_ALIVE + b"\r\n"
        else:
            end = b"\r\n\r\n" if headers else b"\r\n"
        data = b"".join(
            (STATUS_LINE[response.status], self.state.date_line, lines, end, response.body)
        )
        batch = self._batch
        if batch is not None and keep_alive:
            batch.append(data)
        else:
            # Whatever follows this answer (a close, a linger) follows what came before it.
            self._flush()
            self.transport.write(data)

    def _flush(self) -> None:
        """Send the answers batched while the parser read (see ``_batch``); stop batching."""
        batch = self._batch
        self._batch = None
        if batch:
            self.transport.write(b"".join(batch) if len(batch) > 1 else batch[0])


class _CycleConnection:
    """The connection as a response cycle (the ASGI path) sees it.

    When the response ends with ``Connection: close`` while the request's body is still
    arriving (a 413 for a Content-Length over ``--max-body-bytes``, answered before the body is
    read), closing at once would reset the connection with the body unread, and the client
    could lose the answer: the connection lingers instead (:meth:`WaypostProtocol._linger`).
    """

    __slots__ = ("_protocol", "_transport")

    def __init__(self, protocol: WaypostProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        if self._protocol._in_body:
            self._protocol._linger()
        else:
            self._transport.close()
