"""The standalone server's ASGI application: every request is answered from the engine.

- redirect and respond decisions are answered directly;
- ``/_waypost/health`` reports liveness and the loaded rule count;
- anything else (pass, or a rewrite with no app behind the server) gets a 404 page.

Plain ASGI: no framework. Run it with uvicorn (``waypost serve``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from waypost.engine import Engine
from waypost.http import Response, decision_response, plain_response
from waypost.rules.request import Request

__all__ = ["WaypostApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH_PATH = "/_waypost/health"


def request_from_scope(scope: Scope) -> Request:
    """A :class:`Request` for an ASGI HTTP scope."""
    raw = scope.get("raw_path")
    raw_path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    client = scope.get("client")
    return Request(
        scope.get("method", "GET"),
        raw_path,
        scope.get("query_string", b"").decode("latin-1"),
        headers,
        client_ip=client[0] if client else None,
        path=scope["path"],
    )


async def send_response(send: Send, response: Response) -> None:
    """Write ``response`` to ASGI ``send``."""
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.encoded_headers()}
    )
    await send({"type": "http.response.body", "body": response.body})


class WaypostApp:
    """An ASGI app answering every request from ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        head = scope.get("method") == "HEAD"
        if scope["path"] == HEALTH_PATH:
            text = f'{{"status": "ok", "rules": {len(self.engine)}}}\n'
            response = plain_response(200, text, head=head)
            response = Response(
                200,
                (("content-type", "application/json"), *response.headers[1:]),
                response.body,
            )
            await send_response(send, response)
            return
        decision = self.engine.resolve_request(request_from_scope(scope))
        if decision.action in ("redirect", "respond"):
            await send_response(send, decision_response(decision, head=head))
            return
        await send_response(send, plain_response(404, "Not Found\n", head=head))

    def __repr__(self) -> str:
        return f"WaypostApp({self.engine!r})"
