"""Proxying to the upstream site (``--upstream URL``) with httpx, streamed both ways.

Requests that pass, and rewrites (with the rewritten path and query, and the rule's
``set_headers``), go to the upstream as they came, like nginx's ``proxy_pass``:

- hop-by-hop headers (Connection and what it names, Keep-Alive, TE, Trailer, Transfer-Encoding,
  Upgrade, Proxy-*) are not forwarded, either way (RFC 9110 §7.6.1);
- ``X-Forwarded-For`` gets the client's address appended, ``X-Forwarded-Proto`` and
  ``X-Forwarded-Host`` say how the client reached Waypost; ``Host`` is the upstream's;
- response bodies are streamed; request bodies are buffered first, or streamed (see
  :mod:`waypost.server.bodies`); both are passed through undecoded (a gzip body stays gzip);
- an upstream that cannot be reached is a 502, one that is too slow a 504.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from waypost.exceptions import WaypostError

__all__ = ["Forward", "UpstreamError", "UpstreamProxy", "check_upstream"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Not forwarded to the upstream: Host is the upstream's own; Expect is this server's business.
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "expect"}
# Not passed back: the server in front writes its own Date and Server.
_NOT_RETURNED = _HOP_BY_HOP | {"date", "server"}


class UpstreamError(WaypostError):
    """The ``--upstream`` URL is not usable."""


def check_upstream(url: str) -> str:
    """``url`` without a trailing slash, or :class:`UpstreamError` saying what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(
            f"upstream {url!r} is not an http:// or https:// URL with a host; "
            "write it like 'http://127.0.0.1:8000'"
        )
    if parts.query or parts.fragment:
        raise UpstreamError(f"upstream {url!r} must not have a query or fragment")
    return url.rstrip("/")


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }


@dataclass(frozen=True, slots=True)
class Forward:
    """A request to send upstream: method, full URL and headers (sans-io; built by the proxy)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    has_body: bool

    def with_length(self, size: int) -> Forward:
        """This request with its body's length declared: a buffered body goes upstream with a
        ``Content-Length`` (as nginx sends it), whatever framing the client used."""
        headers = [(k, v) for k, v in self.headers if k != "content-length"]
        headers.append(("content-length", str(size)))
        return Forward(self.method, self.url, tuple(headers), self.has_body)


class UpstreamProxy:
    """Forwards requests to ``upstream`` (a base URL; its path is a prefix) over pooled connections.

    Create it in the worker process that uses it (after any fork); close it with :meth:`aclose`.
    """

    def __init__(self, upstream: str, *, timeout: float = 30.0) -> None:
        self.upstream = check_upstream(upstream)
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"UpstreamProxy({self.upstream!r}, timeout={self.timeout!r})"

    def forward(
        self,
        method: str,
        raw_path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        *,
        client_ip: str | None,
        scheme: str,
        set_headers: tuple[tuple[str, str], ...] = (),
    ) -> Forward:
        """The upstream request for a client's request (``raw_path`` percent-encoded)."""
        headers = list(headers)
        drop = _NOT_FORWARDED | _connection_tokens(headers)
        replaced = {name.lower() for name, _ in set_headers}
        out: list[tuple[str, str]] = []
        forwarded_for = ""
        host = ""
        has_body = False
        for name, value in headers:
            key = name.lower()
            if key == "host":
                host = value
            if key in ("content-length", "transfer-encoding"):
                has_body = has_body or value.strip() not in ("", "0")
            if key == "x-forwarded-for":
                forwarded_for = f"{forwarded_for}, {value}" if forwarded_for else value
                continue
            if key in drop or key in replaced or key in ("x-forwarded-proto", "x-forwarded-host"):
                continue
            out.append((key, value))
        out.extend((name.lower(), value) for name, value in set_headers)
        if client_ip:
            forwarded_for = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
        if forwarded_for:
            out.append(("x-forwarded-for", forwarded_for))
        out.append(("x-forwarded-proto", scheme))
        if host:
            out.append(("x-forwarded-host", host))
        url = self.upstream + (raw_path if raw_path.startswith("/") else "/" + raw_path)
        if query:
            url += "?" + query
        return Forward(method, url, tuple(out), has_body)

    @staticmethod
    def response_headers(
        headers: Iterable[tuple[str, str]], vary: tuple[str, ...] = ()
    ) -> list[tuple[str, str]]:
        """The upstream's response headers fit to pass back, with ``vary`` added to Vary."""
        headers = list(headers)
        drop = _NOT_RETURNED | _connection_tokens(headers)
        out = [(name.lower(), value) for name, value in headers if name.lower() not in drop]
        if vary:
            out.append(("vary", ", ".join(vary)))
        return out

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,  # never route through a proxy from the environment
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            )
            # httpx adds Accept, Accept-Encoding and User-Agent of its own; the upstream must see
            # the client's (an Accept-Encoding the client did not send would get it gzip it
            # cannot read).
            for name in ("accept", "accept-encoding", "user-agent"):
                client.headers.pop(name, None)
            self._client = client
        return self._client

    async def send(
        self, forward: Forward, body: bytes | AsyncIterator[bytes] | None = None
    ) -> httpx.Response:
        """Send ``forward`` with ``body`` (streamed if an iterator); the response's body is not
        read yet.

        Raises ``httpx.TimeoutException`` (answer 504) or ``httpx.TransportError`` (answer 502);
        an exception raised by ``body`` comes out as it is, the upstream connection closed.
        Close the response with ``await response.aclose()``.
        """
        client = self._get_client()
        request = client.build_request(
            forward.method,
            forward.url,
            # As bytes: a value may hold obs-text (RFC 9110 §5.5), which httpx would not encode.
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in forward.headers],
            content=body if forward.has_body else None,
        )
        return await client.send(request, stream=True)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
