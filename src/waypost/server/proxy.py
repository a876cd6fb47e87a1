"""Proxying to the upstream site (``--upstream URL``) and to the origins of proxy rules, with
httpx, streamed both ways.

Requests that pass, and rewrites (with the rewritten path and query, and the rule's
``set_headers``), go to the upstream as they came, like nginx's ``proxy_pass``; a proxy decision
(a rewrite to an absolute URL, to a host in the rules' ``proxy_hosts``) goes to its URL the same
way, over the same pool of connections (one pool per origin, kept alive between requests):

- hop-by-hop headers (Connection and what it names, Keep-Alive, TE, Trailer, Transfer-Encoding,
  Upgrade, Proxy-*) are not forwarded, either way (RFC 9110 §7.6.1);
- ``X-Forwarded-For`` gets the client's address appended, ``X-Forwarded-Proto`` and
  ``X-Forwarded-Host`` say how the client reached Waypost; ``Host`` is the upstream's;
- response bodies are streamed; request bodies are buffered first, or streamed (see
  :mod:`waypost.server.bodies`); both are passed through undecoded (a gzip body stays gzip);
- an upstream that cannot be reached is a 502, one that is too slow a 504;
- an https upstream or origin must present a certificate that verifies for its host name,
  against the system's CA certificates (which ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` set, as
  OpenSSL reads them) and certifi's bundle (what httpx trusts by default).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from waypost.exceptions import WaypostError
from waypost.rules.request import HOP_BY_HOP
from waypost.rules.safety import control_character, host_allowed

__all__ = [
    "Forward",
    "UpstreamError",
    "UpstreamProxy",
    "check_upstream",
    "proxy_refusal",
    "tls_context",
]

# Not forwarded to the upstream: Host is the upstream's own; Expect is this server's business.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "expect"}
# Not passed back: the server in front writes its own Date and Server.
_NOT_RETURNED = HOP_BY_HOP | {"date", "server"}


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


def proxy_refusal(url: str, proxy_hosts: Iterable[str]) -> str | None:
    """Why a proxy decision's ``url`` must not be sent, or None when it may.

    The loader only lets through a proxy rule whose origin is written out and listed in
    ``proxy_hosts``; this is the second lock, for rules built some other way: an http(s) URL,
    nothing that could split a request head (CR, LF, NUL, other controls, whitespace), and a
    host in ``proxy_hosts``.
    """
    bad = control_character(url)
    if bad is not None or " " in url or "\\" in url:
        return f"a control character, space or backslash in {url!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return f"{url!r} has no valid host and port"
    if parts.scheme not in ("http", "https") or not host or parts.username is not None:
        return f"{url!r} is not an http(s) URL with a host"
    if not host_allowed(host, proxy_hosts):
        return f"the host {host!r} is not in the rules' proxy_hosts"
    return None


def tls_context() -> ssl.SSLContext:
    """The TLS context https upstreams and origins are verified with: certificate and host name
    checked (never turned off), against the system's CA certificates and certifi's bundle."""
    context = httpx.create_ssl_context()  # certifi's bundle, as httpx verifies by default
    # The system's too, as OpenSSL finds them (SSL_CERT_FILE and SSL_CERT_DIR say where).
    context.load_default_certs()
    return context


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
    """Forwards requests to ``upstream`` (a base URL; its path is a prefix), and proxy decisions
    to their own URL, over pooled connections. ``upstream`` None: only proxy decisions.

    ``verify`` is the TLS context of https connections (:func:`tls_context` by default; tests
    give one that trusts their own certificate). Create it in the worker process that uses it
    (after any fork); close it with :meth:`aclose`.
    """

    def __init__(
        self, upstream: str | None, *, timeout: float = 30.0, verify: ssl.SSLContext | None = None
    ) -> None:
        self.upstream = check_upstream(upstream) if upstream is not None else None
        self.timeout = timeout
        self._verify = verify
        self._client: httpx.AsyncClient | None = None

    @property
    def verify(self) -> ssl.SSLContext:
        """The TLS context of https connections (made when first needed)."""
        if self._verify is None:
            self._verify = tls_context()
        return self._verify

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
        url: str | None = None,
    ) -> Forward:
        """The upstream request for a client's request (``raw_path`` percent-encoded); with
        ``url`` (a proxy decision's absolute URL, with its query) it goes there instead, with
        the same headers (``Host`` is the URL's)."""
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
        if url is None:
            if self.upstream is None:
                raise RuntimeError("forward() without a url needs an upstream")
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
                verify=self.verify,
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

    async def ask(
        self, url: str, headers: Iterable[tuple[str, str]], timeout: float, limit: int
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """GET ``url`` with ``headers`` (a ``forward_auth`` guard's auth service), over the same
        pool: its status, headers and body (decoded, read up to ``limit`` bytes and one, so
        that a larger one is seen as such). Raises ``httpx.TimeoutException`` when the whole
        exchange takes over ``timeout`` seconds, ``httpx.HTTPError`` when it fails."""
        client = self._get_client()
        request = client.build_request(
            "GET",
            url,
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            timeout=httpx.Timeout(timeout),
        )

        async def exchange() -> tuple[int, list[tuple[str, str]], bytes]:
            response = await client.send(request, stream=True)
            body = bytearray()
            try:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        break
            finally:
                await response.aclose()
            return response.status_code, response.headers.multi_items(), bytes(body)

        # httpx's timeout is per phase (connect, each read): a service that trickles its answer
        # must not hold the request longer than the guard's timeout in all.
        try:
            return await asyncio.wait_for(exchange(), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer within {timeout:g} s", request=request) from None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
