"""Django middleware: ``MIDDLEWARE = ["waypost.contrib.django.middleware.WaypostMiddleware", ...]``
with ``WAYPOST = {"RULES": BASE_DIR / "redirects.yaml"}`` in the settings.

Put it first (above ``CommonMiddleware``, so an ``APPEND_SLASH`` redirect never answers a path a
rule owns). For each request it asks the engine, as :class:`waypost.wsgi.WaypostMiddleware`
does, and:

- answers a redirect or respond decision itself: the view never runs;
- carries out a rewrite by changing what the URLconf resolves and the view reads
  (``request.path_info``, ``request.path``, ``META["PATH_INFO"]``, ``QUERY_STRING``,
  ``request.GET``, and the rule's ``set_headers`` in ``META``); the browser's URL stays;
- applies ``only_if_missing`` rules when the view answers 404, as Django's
  ``RedirectFallbackMiddleware`` does, so a redirect table never hides a live page;
- builds ``to: {route: name, ...}`` targets with ``reverse()`` (checked by ``manage.py check``;
  bound on the first request);
- respects ``SCRIPT_NAME`` / ``FORCE_SCRIPT_NAME``: rules match ``request.path_info``, and a
  same-site Location gets the prefix;
- removes a client's own identity headers (``X-Waypost-User``, ...) when a rule requires a
  guard, puts the guards' own in ``META`` and the identity in ``request.waypost_identity``.

The request is the engine's own :class:`~waypost.rules.request.Request`, built from Django's
(the method, ``path_info`` and query string, ``request.headers``, ``REMOTE_ADDR`` and
``request.scheme``, which follows ``SECURE_PROXY_SSL_HEADER``); every Location and header comes
from the engine's decision and :mod:`waypost.responses`, which never let CR or LF through.
Synchronous: under ASGI Django runs it in a thread, as it does every sync-only middleware.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from django.core.handlers.wsgi import WSGIRequest  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse, QueryDict  # type: ignore[import-untyped]

from waypost.contrib.django._config import django_routes, waypost_settings
from waypost.engine import Decision, Engine, RouteResolver, Stage
from waypost.middleware._auth import settle
from waypost.middleware._common import MiddlewareBase, record_missing
from waypost.middleware.request import read_headers, request_from_path
from waypost.middleware.wsgi import guarded_environ
from waypost.responses import Response
from waypost.rules.request import LazyHeaders, Request

__all__ = ["WaypostMiddleware", "django_request", "mount_of"]

GetResponse = Callable[[Any], Any]


def _django_headers(request: Any) -> list[tuple[str, str]]:
    return list(request.headers.items())


def django_request(request: Any) -> Request:
    """The engine's :class:`~waypost.rules.request.Request` for a Django ``HttpRequest``: the
    path inside the project (``path_info``), the query string as sent, ``request.headers``,
    ``REMOTE_ADDR`` and ``request.scheme``."""
    meta = request.META
    return request_from_path(
        request.method or "GET",
        request.path_info or "/",
        meta.get("QUERY_STRING", "") or "",
        LazyHeaders(request, _django_headers),
        meta.get("REMOTE_ADDR"),
        request.scheme or "http",
    )


def mount_of(request: Any) -> str:
    """The project's mount point (``SCRIPT_NAME``, or ``FORCE_SCRIPT_NAME``) without its trailing
    slash, '' at the root: what ``request.path`` has in front of ``request.path_info``."""
    path, path_info = request.path, request.path_info
    if path_info and path.endswith(path_info):
        return str(path[: len(path) - len(path_info)].rstrip("/"))
    return str(path.rstrip("/")) if path != path_info else ""


def _django_response(response: Response) -> Any:
    """Waypost's ``response`` as an ``HttpResponse`` (its headers are already header-safe)."""
    out = HttpResponse(response.body, status=response.status)
    for name, value in response.headers:
        out[name] = value
    return out


def _wsgi_text(value: str) -> str:
    """PEP 3333 'native strings': the UTF-8 bytes of the path, seen as latin-1 (what a WSGI
    request's ``META["PATH_INFO"]`` holds; an ASGI request's holds the text itself)."""
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def rewrite_request(request: Any, decision: Decision) -> None:
    """Send ``request`` on to the rewrite ``decision``'s path, query and headers, before the
    URLconf resolves it (Django resolves ``request.path_info``)."""
    path_info = unquote(decision.path or "/", errors="surrogateescape")
    query = decision.query or ""
    mount = mount_of(request)
    meta = request.META
    meta["PATH_INFO"] = _wsgi_text(path_info) if isinstance(request, WSGIRequest) else path_info
    meta["QUERY_STRING"] = query
    request.path_info = path_info
    request.path = f"{mount}{path_info}"
    request.GET = QueryDict(query, encoding=request.encoding)
    for name, value in decision.headers:
        key = name.upper().replace("-", "_")
        meta[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    if decision.headers:
        request.__dict__.pop("headers", None)  # HttpRequest.headers is read from META once


class WaypostMiddleware(MiddlewareBase[GetResponse]):
    """Django middleware answering redirects and responses, rewriting, or passing requests on.

    Configured by ``settings.WAYPOST`` (see :mod:`waypost.contrib.django._config`): ``RULES``, a
    rules file or an :class:`~waypost.engine.Engine`; ``DEFAULT_MAX_AGE``; ``STATS``, a rule
    store URL or a :class:`~waypost.stats.StatsSink` counting rule hits and the views' 404s.
    Django makes it once, with the next handler (``get_response``), when it loads the
    middleware; a rules file that does not load, or that proxies, fails then.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: GetResponse) -> None:
        config = waypost_settings()
        super().__init__(
            get_response,
            config.rules if config.reload else config.engine(),
            default_max_age=config.default_max_age,
            stats=config.stats_sink(),
            reload=config.reload,
        )
        self._bind_lock = threading.Lock()

    @property
    def get_response(self) -> GetResponse:
        """The next handler: the rest of ``MIDDLEWARE``, then the URLconf and the view."""
        return self.app

    def _route_resolver(self, routes: Any) -> RouteResolver | None:
        # Bound on the first request: the URLconf may import what imports the middleware, and
        # 'manage.py check' has resolved every route target before the server started.
        return None

    def _bind_routes(self) -> None:
        with self._bind_lock:
            if not self._routes_bound:
                self._bind(django_routes)

    def __call__(self, request: Any) -> Any:
        if not self._routes_bound:
            self._bind_routes()
        if not self._started:
            self.start()
        stats = self.stats
        engine: Engine = self.engine
        fallbacks = engine.has_fallback_rules
        head = request.method == "HEAD"
        # None when the compiled road decided by the path and query alone (see
        # Engine.quick_decision()), which it is asked to only without fallbacks or statistics.
        asked: Request | None = None
        decision = (
            engine.quick_decision(
                request.path_info or "/", request.META.get("QUERY_STRING", "") or "", "all"
            )
            if stats is None and not fallbacks
            else None
        )
        if decision is None:
            asked = django_request(request)
            stage: Stage = "before" if fallbacks else "all"
            decision = engine.resolve(asked, stage=stage)
            if decision.action == "auth":
                settled = settle(engine, asked, decision, stage, head)
                if isinstance(settled, Response):
                    return _django_response(settled)
                decision = settled
            if stats is not None:
                stats.hit(decision, time.time())
        mount = mount_of(request)
        answer = self.answer(decision, mount, head)
        if answer is not None:
            return _django_response(answer)
        if asked is not None and (fallbacks or stats is not None):
            read_headers(asked)  # as sent: the rewrite and the view may change META
        if decision.action == "rewrite":
            rewrite_request(request, decision)
        if engine.has_guards:
            _guard(request, decision, engine)
        response = self.app(request)
        if getattr(response, "status_code", None) != 404:
            return response
        if fallbacks and asked is not None:
            return self._fallback(request, asked, mount, head, response)
        if stats is not None and asked is not None:
            record_missing(stats, asked)
        return response

    def _fallback(
        self, request: HttpRequest, asked: Request, mount: str, head: bool, response: Any
    ) -> Any:
        """The answer of an ``only_if_missing`` rule to a request the view answered 404, or
        that 404."""
        decision = self.engine.resolve(asked, stage="missing")
        if decision.action == "auth":  # the guards run again: their services too
            settled = settle(self.engine, asked, decision, "missing", head)
            if isinstance(settled, Response):
                return _django_response(settled)
            decision = settled
        answer = self.answer_missing(decision, asked, mount, head)
        if answer is not None:
            # The view's 404 is dropped unclosed, as RedirectFallbackMiddleware drops it:
            # closing a response sends request_finished, which belongs to the handler.
            return _django_response(answer)
        return response


def _guard(request: Any, decision: Decision, engine: Engine) -> None:
    """Replace the client's identity headers by the guards' own in ``request.META``, and put
    the identity in ``request.waypost_identity`` (as the WSGI middleware does in the environ)."""
    guarded = guarded_environ(request.META, decision, engine.identity_header_names)
    request.waypost_identity = guarded.pop("waypost.identity")
    request.META = guarded
    request.__dict__.pop("headers", None)  # HttpRequest.headers is read from META once
