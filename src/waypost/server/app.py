"""The standalone server as a plain ASGI application: ``waypost serve`` runs it on its own
connections (:mod:`waypost.server.protocol`), which answer most requests without it, and any ASGI
server (uvicorn, Hypercorn, Granian) can run it too.

All the logic lives in :class:`~waypost.server.core.WaypostServer`; this module only moves ASGI
messages. ASGI keeps the request target as the client sent it (``raw_path``), so an encoded slash
(``%2F``) or a byte that is not UTF-8 is forwarded to the upstream unchanged.

A request body going upstream is read to its end first (see :mod:`waypost.server.bodies`), so a
body that fails never reaches the upstream as a finished request; a client that goes away
mid-body is one INFO line, not a traceback.

Lifespan startup starts the rules watcher; lifespan shutdown (after SIGTERM, once the server has
stopped accepting) waits up to ``graceful_timeout`` for requests still in flight, then closes the
upstream connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from waypost.engine import Engine
from waypost.follow.sources import FileSource, StoreSource
from waypost.middleware._types import Message, Receive, Scope, Send
from waypost.middleware.asgi import send_response
from waypost.responses import Response, error_response
from waypost.server.bodies import (
    BodyIncomplete,
    BodyTooLarge,
    BufferedBody,
    declared_length,
    has_body,
    read_body,
    stream_body,
    unsupported_coding,
)
from waypost.server.config import Settings
from waypost.server.core import HEALTH_PATH, METRICS_PATH, WaypostServer
from waypost.server.proxy import Forward

__all__ = ["BODY_FAILED", "WaypostApp"]

logger = logging.getLogger("waypost.server")
#: How far behind a scrape answered by another worker, or the access log, may be.
FLUSH_SECONDS = 0.5
# Headers that carry an API key.
_KEY_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-secret-token"})

#: Set in the scope by the connection (:mod:`waypost.server.protocol`) when it ended the
#: request's body itself: ``"malformed"`` (it answered 400) or ``"stalled"`` (it answered 408,
#: past ``body_timeout``, and counted and logged the request).
BODY_FAILED = "waypost.body_failed"


def _closing(response: Response) -> Response:
    # The body was not read (or not all of it): it stands between this answer and the next
    # request, so the connection ends here.
    return Response(response.status, (*response.headers, ("connection", "close")), response.body)


def _too_large(limit: int, head: bool = False) -> Response:
    detail = f"The request body is larger than {limit} bytes."
    return _closing(error_response(413, detail, head=head))


class WaypostApp:
    """An ASGI app answering every request from ``engine`` with ``settings`` (see
    :class:`WaypostServer`); or, given a :class:`WaypostServer` instead of an engine, from that
    server (``waypost serve`` makes one that follows its rules file or store)."""

    def __init__(self, engine: Engine | WaypostServer, settings: Settings | None = None) -> None:
        if isinstance(engine, WaypostServer):
            if settings is not None:
                raise TypeError("WaypostApp(server) serves with the server's own settings")
            self.server = engine
        else:
            self.server = WaypostServer(engine, settings)
        #: The admin API (serving from a store only), made in the worker at start-up.
        self.admin: Any = None
        self._admin_store: Any = None
        self._keys_store: Any = None
        self.is_admin_path: Callable[[str], bool] = lambda path: False
        self._keyed_metrics = not self.server.settings.public_metrics
        self._admin_cookie = b""

    def to_admin(self, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        """True when the admin app answers this request (serving from a store only): its own
        paths, and health or metrics asked with credentials (or metrics needing them), whose
        key it checks. (``headers`` as ASGI has them: lower-case names.)"""
        if self.admin is None:
            return False
        if path in (HEALTH_PATH, METRICS_PATH):
            if path == METRICS_PATH and self._keyed_metrics:
                return True
            cookie = self._admin_cookie
            return any(
                name in _KEY_HEADERS or (name == b"cookie" and cookie in value)
                for name, value in headers
            )
        return self.is_admin_path(path)

    @property
    def engine(self) -> Engine:
        """The engine answering requests."""
        return self.server.engine

    def __repr__(self) -> str:
        return f"WaypostApp({self.server.engine!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        flusher: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.server.start()
                self._start_admin()
                flusher = asyncio.create_task(self._flush_regularly())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._drain()
                if flusher is not None:
                    flusher.cancel()
                self.server.flush()
                await self.server.aclose()
                if self.admin is not None:
                    self._admin_store.close()
                    if self._keys_store is not None:
                        self._keys_store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _flush_regularly(self) -> None:
        """Move this worker's counts into the shared metrics, and write the access log lines it
        holds back, twice a second (see metrics.py and access_log.py)."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.server.flush()

    def _start_admin(self) -> None:
        source = self.server.source
        stats_only = isinstance(source, FileSource) and source.stats_url is not None
        if not (isinstance(source, StoreSource) or stats_only) or self.admin is not None:
            return
        # Imported only when serving a store (or a file's statistics): FastAPI is not needed
        # to serve a file.
        from waypost.admin import ADMIN_PREFIX, create_admin_app, is_admin_path
        from waypost.admin._context import COOKIE_NAME
        from waypost.server._keyed import add_keyed_routes
        from waypost.store import open_store

        # Opened here, in the worker: database connections must not cross a fork.
        if isinstance(source, StoreSource):
            self._admin_store = open_store(source.url)
            admin = create_admin_app(
                self._admin_store, prefix=ADMIN_PREFIX, health=self.server.health
            )
        else:
            # A file's statistics: the analytics API over the temporary store, its keys from
            # --keys (without it, no key opens it: the server's log says so at start).
            assert isinstance(source, FileSource) and source.stats_url is not None
            self._admin_store = open_store(source.stats_url)
            keys = self.server.settings.keys
            self._keys_store = open_store(keys) if keys else None
            admin = create_admin_app(
                self._admin_store,
                prefix=ADMIN_PREFIX,
                health=self.server.health,
                key_store=self._keys_store,
                rules_file=str(source.path),
                served=lambda: self.server.engine,
            )
        add_keyed_routes(admin, self.server)  # health's details and metrics, for a read key
        self._admin_cookie = COOKIE_NAME.encode("ascii") + b"="
        self.is_admin_path = is_admin_path
        self.admin = admin

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The admin API, counted and logged like every other request."""
        seen = {"status": 500, "size": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["size"] += len(message.get("body", b""))
            await send(message)

        # The connection marks this scope when it ends the body itself (see BODY_FAILED).
        body = await self._admin_body(scope, receive, counting_send)
        if body is None:  # the connection answered, counted and logged it
            return
        proxies = self.server.proxies
        peer = scope.get("client")
        if proxies and peer is not None:
            # Behind trusted proxies the admin app sees the real client, as rule conditions and
            # the access log do: sign-in failures are counted per client, not for the balancer,
            # and a session records who signed in.
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            client = proxies.client(peer[0], headers)
            if client != peer[0]:
                scope = {**scope, "client": (client, 0)}
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + ("?" + query if query else "")
        if isinstance(body, bytes):
            sent = False

            async def replay() -> Message:
                # The body read here, then the connection's own messages (a disconnect).
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.admin(scope, replay, counting_send)
            status, size = seen["status"], seen["size"]
        else:  # answered (413), or ended, here
            status, size = body
        client = scope.get("client")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        self.server.done(
            "internal",
            status,
            size,
            client_ip=self.server.client(client[0] if client else None, headers),
            method=scope["method"],
            target=target,
            protocol="HTTP/" + scope.get("http_version", "1.1"),
            headers=headers,
        )

    async def _admin_body(
        self, scope: Scope, receive: Receive, send: Send
    ) -> bytes | tuple[int, int] | None:
        """The admin request's body, read whole and bounded by ``max_body_bytes`` (FastAPI
        would read any size into memory, before it checks the caller's key). Else the status
        and size to count (answered 413, or the body never ended), or None (counted already)."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        if not has_body(headers):
            return b""
        limit = self.server.settings.max_body_bytes
        declared = declared_length(headers)
        if not limit or declared is None or declared <= limit:
            try:
                # JSON is parsed in memory anyway: no temporary file for an admin body.
                buffered = await read_body(
                    receive, limit=limit, memory=sys.maxsize, directory=self.server.bodies
                )
            except BodyIncomplete as exc:
                target = scope["path"]
                return self._incomplete(scope, exc, target, "the admin API did not see it")
            except BodyTooLarge:
                pass
            else:
                content = buffered.content()
                assert isinstance(content, bytes)  # in memory: never spilled
                return content
        message = f"the request body is larger than {limit} bytes (max_body_bytes)"
        payload = json.dumps({"error": "too_large", "message": message}).encode()
        response = Response(
            413,
            (
                ("content-type", "application/json"),
                ("content-length", str(len(payload))),
                ("connection", "close"),
            ),
            payload,
        )
        await send_response(send, response)
        return 413, len(payload)

    async def _drain(self) -> None:
        server = self.server
        deadline = time.monotonic() + server.settings.graceful_timeout
        if server.in_flight:
            logger.info("waypost: waiting for %d request(s) in flight", server.in_flight)
        while server.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.server.in_flight += 1
        try:
            await self._answer(scope, receive, send)
        finally:
            self.server.in_flight -= 1

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.admin is not None and self.to_admin(scope["path"], scope["headers"]):
            await self._admin(scope, receive, send)
            return
        server = self.server
        method: str = scope["method"]
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        client = scope.get("client")
        peer = client[0] if client else None
        request = server.request(
            method, raw_path, query, headers, peer, scope.get("scheme", "http")
        )
        answer = server.answer(request, peer)
        if answer.auth is not None:  # a forward_auth guard: its auth service is asked first
            answer = await server.authorized(request, answer, peer)
        target = raw_path + ("?" + query if query else "")
        if answer.response is not None:
            response = answer.response
            await send_response(send, response)
            status, size = response.status, len(response.body)
        elif answer.forward is not None:
            result = await self._proxy(
                scope, receive, send, answer.forward, answer.vary, headers, target
            )
            if result is None:  # the connection answered, counted and logged it
                return
            status, size = result
        else:  # pragma: no cover - an Answer always carries one of the two
            raise RuntimeError("empty answer")
        server.done(
            answer.action,
            status,
            size,
            client_ip=request.client_ip,
            method=method,
            target=target,
            protocol="HTTP/" + scope.get("http_version", "1.1"),
            headers=headers,
        )

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        forward: Forward,
        vary: tuple[str, ...],
        headers: list[tuple[str, str]],
        target: str,
    ) -> tuple[int, int] | None:
        """Send the request upstream (its body buffered first, or streamed) and relay the answer.
        Returns ``(status, bytes sent)`` for the access log, or None when the connection has
        counted the request already."""
        server = self.server
        settings = server.settings
        head = forward.method == "HEAD"
        limit = settings.max_body_bytes
        body: bytes | AsyncIterator[bytes] | None = None
        buffered: BufferedBody | None = None
        if forward.has_body:
            coding = unsupported_coding(headers)
            if coding is not None:
                detail = (
                    f"Transfer-Encoding {coding!r} is not supported; send the body as it is, "
                    "with Content-Length or Transfer-Encoding: chunked."
                )
                return await _refuse(send, _closing(error_response(501, detail, head=head)))
            declared = declared_length(headers)
            if limit and declared is not None and declared > limit:
                # Refused before any of the body is read (so no 100 Continue goes out either).
                return await _refuse(send, _too_large(limit, head))
            if settings.buffers_requests:
                try:
                    buffered = await read_body(
                        receive,
                        limit=limit,
                        memory=settings.body_buffer_bytes,
                        directory=server.bodies,
                    )
                except BodyTooLarge:
                    return await _refuse(send, _too_large(limit, head))
                except BodyIncomplete as exc:
                    return self._incomplete(scope, exc, target, "nothing was sent upstream")
                forward = forward.with_length(buffered.size)
                body = buffered.content()
            else:
                # A body that stalls is ended by the connection (body_timeout): the iterator
                # then raises, and the upstream request with it.
                body = stream_body(receive, limit=limit)

        async def start(status: int, out: list[tuple[str, str]]) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out],
                }
            )

        async def write(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        try:
            status, size = await server.relay(forward, vary, body, start, write, head=head)
        except BodyTooLarge:  # streamed: httpx closed the upstream connection mid-body
            return await _refuse(send, _too_large(limit, head))
        except BodyIncomplete as exc:
            return self._incomplete(scope, exc, target, "the upstream request was aborted")
        finally:
            if buffered is not None:
                buffered.close()
        await send({"type": "http.response.body", "body": b""})
        return status, size

    def _incomplete(
        self, scope: Scope, exc: BodyIncomplete, target: str, outcome: str
    ) -> tuple[int, int] | None:
        """Log a body that did not arrive complete (one line: the client's doing, not a fault
        of the server) and return the status for the access log: 400 (malformed, answered by the
        connection) or 499 (the client closed, as nginx logs it); None for one that stalled (the
        connection answered 408 and counted it)."""
        received = exc.received
        failed = scope.get(BODY_FAILED)
        status: int | None
        if failed == "malformed":
            status, why = 400, "the body was malformed (answered 400)"
        elif failed == "stalled":
            status, why = None, f"the body stopped arriving after {received} bytes (answered 408)"
        else:
            status, why = (
                499,
                f"the client closed the connection after {received} bytes of the body",
            )
        client = scope.get("client")
        logger.info(
            "waypost: %s %r from %s: %s; %s",
            scope["method"],
            target,
            client[0] if client else "-",
            why,
            outcome,
        )
        return None if status is None else (status, 0)


async def _refuse(send: Send, response: Response) -> tuple[int, int]:
    await send_response(send, response)
    return response.status, len(response.body)
