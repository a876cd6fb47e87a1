"""WSGI middleware: Waypost in front of any WSGI app (Flask, Django's WSGI handler, ...).

::

    app.wsgi_app = WaypostMiddleware(app.wsgi_app, rules="rules.yaml")   # Flask

- redirect and respond decisions are answered here; the app never sees the request;
- a rewrite changes ``PATH_INFO``, ``QUERY_STRING`` and ``HTTP_*`` while the browser's URL stays;
- ``only_if_missing`` rules apply only when the app answers 404;
- proxy rules (a ``rewrite`` to an absolute URL, listed in ``proxy_hosts``) need the standalone
  server: a middleware given rules that proxy refuses them when it is made (WaypostError naming
  each rule by file:line); a proxy decision from rules swapped in later is answered 502 with an
  error logged on the ``waypost.middleware`` logger, never passed to the app unchanged;
- ``to: {route: name, ...}`` targets are built by the app's own URL map (Flask's ``url_for``
  rules), found from ``app.wsgi_app``'s Flask app or given as ``routes=``, and checked when the
  middleware is created;
- ``SCRIPT_NAME`` is respected: rules match ``PATH_INFO``, same-site Locations get the prefix;
- a ``forward_auth`` guard's auth service is asked before the app runs (see
  :mod:`waypost.middleware._auth`); the app sees the request only after a 2xx.

Plain WSGI: no web framework is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from waypost.engine import Decision, RouteResolver, Stage
from waypost.guards import IDENTITY_KEYS
from waypost.middleware._auth import settle
from waypost.middleware._common import (
    MiddlewareBase,
    identity_of,
    record_missing,
    resolver_for,
)
from waypost.middleware._types import Environ, ExcInfo, StartResponse, WSGIApp
from waypost.middleware.request import read_headers, request_from_environ
from waypost.responses import Response, reason
from waypost.rules.request import Request
from waypost.stats import StatsSink

__all__ = ["WaypostMiddleware", "request_from_environ"]


def _environ_keys(names: Collection[str]) -> frozenset[str]:
    """The environ keys of the headers ``names`` (X-Waypost-User and X_Waypost_User alike)."""
    return frozenset("HTTP_" + name.upper().replace("-", "_") for name in names)


_IDENTITY_KEYS = _environ_keys(IDENTITY_KEYS)


def _wsgi_text(value: str) -> str:
    """PEP 3333 'native strings': the UTF-8 bytes of the path, seen as latin-1."""
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _flask_routes(app: Any) -> RouteResolver | None:
    url_map = getattr(app, "url_map", None)
    if url_map is None or not hasattr(url_map, "bind"):
        return None
    adapter = url_map.bind("localhost", script_name="/")

    def build(name: str, params: Mapping[str, str]) -> str:
        return str(adapter.build(name, dict(params), force_external=False))

    return build


def _start(start_response: StartResponse, response: Response) -> list[bytes]:
    """Start ``response`` and return its body, as a WSGI app's return value."""
    # PEP 3333 wants a phrase after the code, even for a status HTTP has not registered.
    status = f"{response.status} {reason(response.status) or 'Unknown'}"
    start_response(status, list(response.headers))
    return [response.body]


def _rewritten(environ: Environ, decision: Decision) -> Environ:
    """A copy of ``environ`` that sends the app to the rewritten path, query and headers."""
    new = dict(environ)
    new["PATH_INFO"] = _wsgi_text(unquote(decision.path or "/"))
    new["QUERY_STRING"] = decision.query or ""
    new["RAW_URI"] = new["REQUEST_URI"] = (
        (environ.get("SCRIPT_NAME", "") or "")
        + (decision.path or "/")
        + (f"?{decision.query}" if decision.query else "")
    )
    for name, value in decision.headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            new[key] = value
        else:
            new["HTTP_" + key] = value
    return new


def guarded_environ(
    environ: Environ, decision: Decision, names: Collection[str] = IDENTITY_KEYS
) -> Environ:
    """A copy of ``environ`` without the client's identity headers (``names``, lower case: see
    ``Engine.identity_header_names``), with the guards' own (for a pass or a rewrite), and the
    identity in ``environ["waypost.identity"]`` (a
    :class:`~waypost.middleware._common.GuardIdentity`, or None)."""
    keys = _IDENTITY_KEYS if names is IDENTITY_KEYS else _environ_keys(names)
    new = {k: v for k, v in environ.items() if k not in keys}
    identity = identity_of(decision)
    if identity is not None:
        for name, value in decision.headers:
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in keys and value:
                new[key] = _wsgi_text(value)
    new["waypost.identity"] = identity
    return new


class WaypostMiddleware(MiddlewareBase[WSGIApp]):
    """WSGI middleware answering redirects and responses, rewriting, or passing requests on.

    ``WaypostMiddleware(app, rules, *, routes=None, default_max_age=3600, stats=None)``:
    ``rules`` is a rules file path or an :class:`~waypost.engine.Engine`. ``routes`` resolves
    ``to: {route: ...}`` targets: a Flask app, or a callable ``(name, params) -> path``; by
    default the Flask app behind ``app.wsgi_app`` is used. Route targets are checked here, when
    the middleware is made. ``stats`` records rule hits and the app's 404s (see
    :class:`~waypost.middleware._common.MiddlewareBase`; started on the first request).
    """

    def _route_resolver(self, routes: Any) -> RouteResolver | None:
        if routes is None:
            return _flask_routes(getattr(self.app, "__self__", None))
        return resolver_for(routes, _flask_routes, "a Flask app")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self._started:
            self.start()
        stats = self.stats
        engine = self.engine
        fallbacks = engine.has_fallback_rules
        head = environ.get("REQUEST_METHOD") == "HEAD"
        script = environ.get("SCRIPT_NAME", "") or ""
        # None when the compiled road decided by the path and query alone (see
        # Engine.quick_decision()), which it is asked to only without fallbacks or statistics
        # (and for an ASCII PATH_INFO: another is recovered from its latin-1 reading first).
        request: Request | None = None
        decision = None
        if stats is None and not fallbacks:
            path = environ.get("PATH_INFO", "") or "/"
            if path.isascii():
                decision = engine.quick_decision(path, environ.get("QUERY_STRING", ""), "all")
        if decision is None:
            request = request_from_environ(environ)
            stage: Stage = "before" if fallbacks else "all"
            decision = engine.resolve(request, stage=stage)
            if decision.action == "auth":
                settled = settle(engine, request, decision, stage, head)
                if isinstance(settled, Response):
                    return _start(start_response, settled)
                decision = settled
            if stats is not None:
                stats.hit(decision, time.time())
        response = self.answer(decision, script, head)
        if response is not None:
            return _start(start_response, response)
        if decision.action == "rewrite":
            environ = _rewritten(environ, decision)
        if engine.has_guards:
            environ = guarded_environ(environ, decision, engine.identity_header_names)
        if fallbacks and request is not None:
            read_headers(request)
            return self._with_fallback(environ, start_response, request, script, head)
        if stats is not None and request is not None:
            read_headers(request)
            return self.app(environ, _counting_start(start_response, request, stats))
        return self.app(environ, start_response)

    def _with_fallback(
        self,
        environ: Environ,
        start_response: StartResponse,
        request: Request,
        script: str,
        head: bool,
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            captured["status"], captured["headers"], captured["exc_info"] = (
                status,
                headers,
                exc_info,
            )
            return written.append

        body = self.app(environ, capture)
        if str(captured.get("status", "")).startswith("404"):
            decision = self.engine.resolve(request, stage="missing")
            if decision.action == "auth":  # the guards run again: their services too
                settled = settle(self.engine, request, decision, "missing", head)
                if isinstance(settled, Response):
                    _close(body)
                    return _start(start_response, settled)
                decision = settled
            response = self.answer_missing(decision, request, script, head)
            if response is not None:
                _close(body)
                return _start(start_response, response)
        if "status" not in captured:
            # The app starts the response lazily, while iterating: nothing to intercept.
            return _Passthrough(body, start_response, captured, written)
        write = start_response(captured["status"], captured["headers"], captured["exc_info"])
        for chunk in written:
            write(chunk)
        return body


def _counting_start(
    start_response: StartResponse, request: Request, stats: StatsSink
) -> StartResponse:
    """A ``start_response`` that records the app's 404 for ``request`` in ``stats``."""

    def counting(
        status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if status[:3] == "404":
            record_missing(stats, request)
        return start_response(status, headers, exc_info)

    return counting


def _close(body: Iterable[bytes]) -> None:
    """Close an app's body, as PEP 3333 asks of whoever stops iterating it."""
    close = getattr(body, "close", None)
    if close is not None:
        close()


class _Passthrough:
    """Iterates an app body whose start_response comes during iteration (generators)."""

    def __init__(
        self,
        body: Iterable[bytes],
        start_response: StartResponse,
        captured: dict[str, Any],
        written: list[bytes],
    ) -> None:
        self.body = body
        self.start_response = start_response
        self.captured = captured
        self.written = written

    def __iter__(self) -> Iterator[bytes]:
        started = False
        for chunk in self.body:
            if not started and "status" in self.captured:
                self.start_response(
                    self.captured["status"], self.captured["headers"], self.captured["exc_info"]
                )
                started = True
                yield from self.written
            yield chunk
        if not started and "status" in self.captured:
            self.start_response(
                self.captured["status"], self.captured["headers"], self.captured["exc_info"]
            )
            yield from self.written

    def close(self) -> None:
        _close(self.body)
