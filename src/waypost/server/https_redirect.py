"""Plain HTTP answered with a redirect to HTTPS (``--http-redirect-port``).

A server that speaks TLS itself (``--tls-cert``) usually must still answer ``http://`` on port
80, and only to send the browser to the same URL over HTTPS, as Caddy does. This is that
listener: every request gets ``308 Permanent Redirect`` to ``https://`` + its own host (with the
HTTPS port when it is not 443) + its own path and query, so a POST stays a POST. Let's Encrypt's
HTTP-01 challenge follows the redirect to the HTTPS port (it does not check the certificate on
the way), where the rules or the upstream answer it.

The host comes from the request's Host header, which is what the browser asked for, so this is
no open redirect; a Host that is not a plain host name or address is refused (400). Still, a
client (or a cache in front that does not key on Host) could make it name any host: with
``--https-redirect-hosts`` only the site's own names are redirected and any other Host gets 400.
Heads are bounded like the main server's (414, 431), a head must arrive within the header timeout
of its first byte (408), and an idle connection is closed after the keep-alive timeout. A request
that asks to upgrade is answered and the connection closed: what follows its head is never read
as another request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from email.utils import formatdate
from typing import cast

import httptools

from waypost.responses import Response, encode_location, error_response, plain_response, reason
from waypost.rules.safety import host_allowed
from waypost.server._hosts import LABEL, parse_https_redirect_hosts
from waypost.server._linger import LINGER_BYTES, LINGER_SECONDS, half_close
from waypost.server.core import WaypostServer

__all__ = ["HttpsRedirectProtocol", "https_location"]

_HOST = re.compile(
    rf"(?P<host>{LABEL}(?:\.{LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?\Z"
)


def https_location(
    host: str, target: str, https_port: int, allowed_hosts: Sequence[str] = ()
) -> str | None:
    """``https://host[:port]target`` for a request's Host header and target, or None when the
    Host is not a plain host name or address (or not one of ``allowed_hosts``, when given), or
    the target is not a path."""
    match = _HOST.match(host.strip())
    if match is None or not target.startswith("/"):
        return None
    if allowed_hosts and not host_allowed(match.group("host"), allowed_hosts):
        return None
    port = "" if https_port == 443 else f":{https_port}"
    return encode_location(f"https://{match.group('host').lower()}{port}{target}")


class HttpsRedirectProtocol(asyncio.Protocol):
    """One plain-HTTP connection, every request on it redirected to HTTPS."""

    def __init__(self, server: WaypostServer, https_port: int) -> None:
        self.server = server
        self.https_port = https_port
        settings = server.settings
        self._max_line = settings.max_request_line
        self._max_headers = settings.max_header_bytes
        self._timeout = settings.keep_alive_timeout
        self._allowed = parse_https_redirect_hosts(settings.https_redirect_hosts)
        self._header_timeout = settings.header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._host = ""
        self._header_bytes = 0
        self._headers: list[tuple[str, str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._client: str | None = None
        #: Answered and closing: what the client still sends is dropped (see _linger).
        self._lingering = False
        self._lingered = 0

    # -- the connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if isinstance(peer, tuple) else None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._timer, self._head_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._head_timer = None

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._close)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self._close()
            return
        self._arm()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # an upgrade request was answered like any other (and the connection closed)
        except httptools.HttpParserError:
            self._send(error_response(400, "Invalid HTTP request."), keep_alive=False)

    # -- the request --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url, self._host, self._header_bytes, self._headers = b"", "", 0, []
        # The keep-alive timer restarts with every read; a head trickled in must still end in
        # time (as the main server's header_timeout).
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._header_timeout, self._head_late)

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        detail = f"The request head did not arrive within {self._header_timeout:g} s."
        self._send(error_response(408, detail), keep_alive=False)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_line:
            detail = f"The request target is longer than {self._max_line} bytes."
            self._send(error_response(414, detail), keep_alive=False)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._max_headers:
            detail = f"The request headers are larger than {self._max_headers} bytes."
            self._send(error_response(431, detail), keep_alive=False)
            return
        text = (name.decode("latin-1"), value.decode("latin-1"))
        self._headers.append(text)
        if text[0].lower() == "host":
            self._host = text[1]

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing() or self._lingering:
            return
        method = self.parser.get_method().decode("ascii", "replace")
        target = self._url.decode("latin-1")
        head = method == "HEAD"
        location = https_location(self._host, target, self.https_port, self._allowed)
        if location is None:
            detail = "The request has no usable Host header or path to send to HTTPS."
            if self._allowed:
                detail = "The request is not for a host of this site, or has no usable path."
            response = error_response(400, detail, head=head)
        else:
            text = f"{reason(308)}: {location}\n"
            page = plain_response(308, text, head=head)
            response = Response(308, (("location", location), *page.headers), page.body)
        keep_alive = (
            self.parser.should_keep_alive()
            and location is not None
            and not self.parser.should_upgrade()  # its body would be read as a request
        )
        self._send(response, keep_alive=keep_alive)
        version = self.parser.get_http_version()
        self.server.done(
            "https-redirect",
            response.status,
            len(response.body),
            client_ip=self.server.client(self._client, self._headers),
            method=method,
            target=target,
            protocol=f"HTTP/{version}",
            headers=self._headers,
        )

    def _send(self, response: Response, *, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        lines = [f"HTTP/1.1 {response.status} {reason(response.status)}"]
        lines.append(f"date: {formatdate(usegmt=True)}")
        lines += [f"{name}: {value}" for name, value in response.headers]
        if not keep_alive:
            lines.append("connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        transport.write(head + response.body)
        if not keep_alive:
            self._linger(transport)

    def _linger(self, transport: asyncio.Transport) -> None:
        """Close without resetting a client still sending (see waypost.server._linger)."""
        self._lingering = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if half_close(transport):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._close)
