"""ASGI middleware: Waypost in front of any ASGI app (FastAPI, Starlette, Django's ASGI handler).

::

    app.add_middleware(WaypostMiddleware, rules="rules.yaml")        # FastAPI / Starlette
    app = WaypostMiddleware(app, rules=Engine.from_file("rules.yaml"))  # any ASGI app

- redirect and respond decisions are answered here; the app never sees the request;
- a rewrite changes what the app sees (``path``, ``raw_path``, ``query_string``, headers) while
  the browser's URL stays; pass hands the request on untouched;
- ``only_if_missing`` rules apply only when the app answers 404;
- proxy rules (a ``rewrite`` to an absolute URL, listed in ``proxy_hosts``) need the standalone
  server: a middleware given rules that proxy refuses them when it is made (WaypostError naming
  each rule by file:line); a proxy decision from rules swapped in later is answered 502 with an
  error logged on the ``waypost.middleware`` logger, never passed to the app unchanged;
- ``to: {route: name, ...}`` targets are built by the app's own ``url_path_for`` and checked at
  start-up (lifespan), so a missing endpoint fails fast;
- lifespan and other scope types pass straight through; ``root_path`` is respected: rules match
  the path inside the app, and same-site Locations get the ``root_path`` prefix back;
- a ``forward_auth`` guard's auth service is asked in a worker thread (see
  :mod:`waypost.middleware._auth`); the app sees the request only after a 2xx.

Plain ASGI: no web framework is imported.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote, unquote

from waypost.engine import Decision, RouteResolver, Stage
from waypost.exceptions import WaypostError
from waypost.guards import IDENTITY_KEYS, without_identity_headers
from waypost.middleware._auth import settle_async
from waypost.middleware._common import (
    MiddlewareBase,
    identity_of,
    record_missing,
    resolver_for,
)
from waypost.middleware._types import ASGIApp, Message, Receive, Scope, Send
from waypost.middleware.request import app_path, read_headers, request_from_scope, scope_query
from waypost.responses import Response
from waypost.rules.request import Request
from waypost.stats import StatsSink

__all__ = ["WaypostMiddleware", "request_from_scope", "send_response"]


async def send_response(send: Send, response: Response) -> None:
    """Write ``response`` to ASGI ``send``."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": response.encoded_headers(),
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def rewritten_scope(scope: Scope, decision: Decision) -> Scope:
    """A copy of ``scope`` that sends the app to the rewritten path, query and headers."""
    root = scope.get("root_path", "") or ""
    raw_path = decision.path or "/"
    new = dict(scope)
    new["path"] = root + unquote(raw_path)
    new["raw_path"] = (quote(root) + raw_path).encode("latin-1")
    new["query_string"] = (decision.query or "").encode("latin-1")
    if decision.headers:
        replaced = {name.lower().encode("latin-1") for name, _ in decision.headers}
        headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in replaced]
        headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in decision.headers
        )
        new["headers"] = headers
    return new


def guarded_scope(
    scope: Scope, decision: Decision, names: Collection[str] = IDENTITY_KEYS
) -> Scope:
    """A copy of ``scope`` without the client's identity headers (``names``, lower case: see
    ``Engine.identity_header_names``), with the guards' own (for a pass or a rewrite), and the
    identity in ``scope["user"]`` and ``scope["state"]`` (``request.user`` and
    ``request.state.waypost_identity`` in Starlette and FastAPI)."""
    new = dict(scope)
    raw = [(k.decode("latin-1"), v) for k, v in scope.get("headers", ())]
    kept = {k for k, _ in without_identity_headers(((k, "") for k, _ in raw), names)}
    headers = [(k.encode("latin-1"), v) for k, v in raw if k in kept]
    identity = identity_of(decision)
    if identity is not None:
        headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in decision.headers
            if value and name.lower() in names
        )
        new["user"] = identity
        new["state"] = {**(scope.get("state") or {}), "waypost_identity": identity}
    new["headers"] = headers
    return new


def _starlette_routes(app: Any) -> RouteResolver | None:
    url_path_for = getattr(app, "url_path_for", None)
    if not callable(url_path_for):
        return None

    def build(name: str, params: Mapping[str, str]) -> str:
        return str(url_path_for(name, **params))

    return build


class WaypostMiddleware(MiddlewareBase[ASGIApp]):
    """ASGI middleware answering redirects and responses, rewriting, or passing requests on.

    ``WaypostMiddleware(app, rules, *, routes=None, default_max_age=3600, stats=None)``:
    ``rules`` is a rules file path or an :class:`~waypost.engine.Engine`. ``routes`` resolves
    ``to: {route: ...}`` targets; by default the app's own ``url_path_for`` (Starlette/FastAPI,
    found at start-up), or give an app or a callable ``(name, params) -> path``. ``stats``
    records rule hits and the app's 404s (see :class:`~waypost.middleware._common.MiddlewareBase`).
    """

    def _route_resolver(self, routes: Any) -> RouteResolver | None:
        # None: the app is found in the scope at start-up (lifespan) or on the first request.
        return None if routes is None else resolver_for(routes, _starlette_routes, "an app")

    def _bind_from(self, scope: Scope) -> None:
        if self._routes_bound:
            return
        resolver = _starlette_routes(scope.get("app"))
        if resolver is not None:
            self._bind(resolver)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        if not self._routes_bound and "app" in scope:
            self._bind_from(scope)
        if not self._started:
            self.start()
        stats = self.stats
        root = scope.get("root_path", "") or ""
        engine = self.engine
        fallbacks = engine.has_fallback_rules
        head = scope.get("method") == "HEAD"
        # None when the compiled road decided by the path and query alone (see
        # Engine.quick_decision()), which it is asked to only without fallbacks or statistics.
        request: Request | None = None
        decision = (
            engine.quick_decision(app_path(scope), scope_query(scope), "all")
            if stats is None and not fallbacks
            else None
        )
        if decision is None:
            request = request_from_scope(scope)
            stage: Stage = "before" if fallbacks else "all"
            decision = engine.resolve(request, stage=stage)
            if decision.action == "auth":
                settled = await settle_async(engine, request, decision, stage, head)
                if isinstance(settled, Response):
                    await send_response(send, settled)
                    return
                decision = settled
            if stats is not None:
                stats.hit(decision, time.time())
        response = self.answer(decision, root, head)
        if response is not None:
            await send_response(send, response)
            return
        if decision.action == "rewrite":
            scope = rewritten_scope(scope, decision)
        if engine.has_guards:
            scope = guarded_scope(scope, decision, engine.identity_header_names)
        if fallbacks and request is not None:
            read_headers(request)
            await self.app(scope, receive, self._fallback_send(send, request, root, head))
        elif stats is not None and request is not None:
            read_headers(request)
            await self.app(scope, receive, _counting_send(send, request, stats))
        else:
            await self.app(scope, receive, send)

    def _fallback_send(self, send: Send, request: Request, root: str, head: bool) -> Send:
        """A ``send`` that replaces the app's 404 by an ``only_if_missing`` rule's answer."""
        replaced = False

        async def wrapped(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's own 404 body is dropped
            if message["type"] == "http.response.start" and message.get("status") == 404:
                decision = self.engine.resolve(request, stage="missing")
                if decision.action == "auth":  # the guards run again: their services too
                    settled = await settle_async(self.engine, request, decision, "missing", head)
                    if isinstance(settled, Response):
                        replaced = True
                        await send_response(send, settled)
                        return
                    decision = settled
                response = self.answer_missing(decision, request, root, head)
                if response is not None:
                    replaced = True
                    await send_response(send, response)
                    return
            await send(message)

        return wrapped

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check route targets at start-up (fail fast), then hand lifespan to the app; the
        stats sink starts here and stops (its last counts written) before shutdown completes."""
        try:
            self._bind_from(scope)
        except WaypostError as exc:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
        if self.stats is None and self.follower is None:
            await self.app(scope, receive, send)
            return
        self.start()

        async def stopping_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self.stop()
            await send(message)

        await self.app(scope, receive, stopping_send)


def _counting_send(send: Send, request: Request, stats: StatsSink) -> Send:
    """A ``send`` that records the app's 404 for ``request`` in ``stats``."""

    async def counting(message: Message) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 404:
            record_missing(stats, request)
        await send(message)

    return counting
