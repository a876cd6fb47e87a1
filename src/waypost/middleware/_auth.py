"""Asking a ``forward_auth`` guard's auth service from the middleware.

The engine answers an ``auth`` decision (see :class:`~waypost.decision.AuthRequest`); the
middleware makes the GET and gives the answer back to ``Engine.resolve_authorized`` until the
engine decides. The request is made with the standard library's :mod:`http.client`: the
middleware needs no HTTP client library (the import contract in pyproject.toml keeps httpx out
of it), and one GET without a body, read up to a limit, is all it takes. The WSGI middleware asks
in its own thread; the ASGI one in a worker thread (:func:`asyncio.to_thread`), so the event loop
never waits on the service.

A service that cannot be reached is a 502, one that does not answer within the guard's
``timeout`` a 504 (fail closed): the app never sees the request. Redirects are not followed (a
302 to a login page is the service's answer), no proxy from the environment is used, and an
https URL is verified against the system's certificates.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from waypost.decision import AuthRequest, Decision
from waypost.engine import Engine, Stage
from waypost.guards.forward_auth import BODY_LIMIT
from waypost.responses import Response, error_response
from waypost.rules.request import Request

__all__ = ["AuthFailed", "ask", "ask_async", "settle", "settle_async"]

logger = logging.getLogger("waypost.middleware")

# Each forward_auth guard a request must pass is asked once; more in a row is a loop.
_MAX_ASKS = 8
Answer = tuple[int, list[tuple[str, str]], bytes]


class AuthFailed(Exception):
    """The auth service could not be asked: ``status`` is 502 (failed) or 504 (too slow)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def ask(auth: AuthRequest) -> Answer:
    """GET ``auth.url`` with ``auth.headers``: the status, headers and body (up to
    :data:`BODY_LIMIT` bytes and one). Raises :class:`AuthFailed`."""
    parts = urlsplit(auth.url)
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=auth.timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=auth.timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        # Host is the service's own (http.client writes it); the body comes back unencoded.
        connection.putrequest(auth.method, target, skip_accept_encoding=True)
        for name, value in auth.headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read(BODY_LIMIT + 1)
        return response.status, response.getheaders(), body
    except TimeoutError:
        raise AuthFailed(504, f"no answer within {auth.timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise AuthFailed(502, type(exc).__name__) from None
    finally:
        connection.close()


async def ask_async(auth: AuthRequest) -> Answer:
    """:func:`ask` in a worker thread, within ``auth.timeout`` seconds in all."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(ask, auth), auth.timeout)
    except TimeoutError:
        raise AuthFailed(504, f"no answer within {auth.timeout:g} s") from None


def _failed(auth: AuthRequest, exc: AuthFailed, head: bool) -> Response:
    # The URL has no user or password (the loader refuses one); the headers sent carry the
    # client's credentials and are never logged.
    logger.error("waypost: guard %r: the auth service %s failed: %s", auth.guard, auth.url, exc)
    detail = (
        "The authentication service did not answer in time."
        if exc.status == 504
        else "The authentication service failed."
    )
    return error_response(exc.status, detail, head=head)


def _looped(request: Request, head: bool) -> Response:
    logger.error(
        "waypost: %s %r still asks an auth service after %d answers",
        request.method,
        request.raw_path,
        _MAX_ASKS,
    )
    return error_response(502, "The authentication service failed.", head=head)


def settle(
    engine: Engine,
    request: Request,
    decision: Decision,
    stage: Stage,
    head: bool,
    asker: Callable[[AuthRequest], Answer] = ask,
) -> Decision | Response:
    """``decision`` with every auth service it needs asked: the engine's final decision, or
    the 502/504 of a service that failed."""
    for _ in range(_MAX_ASKS):
        auth = decision.auth
        if decision.action != "auth" or auth is None:
            return decision
        try:
            status, headers, body = asker(auth)
        except AuthFailed as exc:
            return _failed(auth, exc, head)
        decision = engine.resolve_authorized(request, decision, status, headers, body, stage)
    return decision if decision.action != "auth" else _looped(request, head)


async def settle_async(
    engine: Engine,
    request: Request,
    decision: Decision,
    stage: Stage,
    head: bool,
    asker: Callable[[AuthRequest], Awaitable[Answer]] = ask_async,
) -> Decision | Response:
    """:func:`settle` for the ASGI middleware."""
    for _ in range(_MAX_ASKS):
        auth = decision.auth
        if decision.action != "auth" or auth is None:
            return decision
        try:
            status, headers, body = await asker(auth)
        except AuthFailed as exc:
            return _failed(auth, exc, head)
        decision = engine.resolve_authorized(request, decision, status, headers, body, stage)
    return decision if decision.action != "auth" else _looped(request, head)
