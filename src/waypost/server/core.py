"""The server's logic, apart from any server interface: what to answer, and what to count and log.

:class:`WaypostServer` builds the one :class:`~waypost.rules.request.Request` of a request
(:meth:`WaypostServer.request`) and turns it into an :class:`Answer`: a finished
:class:`~waypost.responses.Response`, or a :class:`~waypost.server.proxy.Forward` to send
upstream. The connection (:mod:`waypost.server.protocol`) and the ASGI adapter
(:mod:`waypost.server.app`) only move bytes.

In order, a request is:

1. refused with 414 / 431 if its target or headers are larger than the limits;
2. answered by Waypost itself on ``/_waypost/health`` (details only with a read API key, see
   :class:`~waypost.server.app.WaypostApp`) and ``/_waypost/metrics``;
3. decided by the engine: redirect and respond are answered here; pass and rewrite are proxied
   to the upstream when there is one, else answered with the 404 page; a proxy decision (a
   rewrite to an absolute URL) is proxied to its URL, upstream or not, once
   :func:`~waypost.server.proxy.proxy_refusal` has no objection (else 502); an auth decision (a
   ``forward_auth`` guard) is asked of its auth service first (:meth:`WaypostServer.authorized`),
   and the engine decides again with the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from typing import NamedTuple, cast

import httpx

from waypost.engine import Decision, Engine
from waypost.follow.reloading import RulesWatcher
from waypost.follow.sources import FileSource, RulesSource, StoreSource
from waypost.follow.store_sync import StoreSync
from waypost.guards import without_identity_headers
from waypost.guards.forward_auth import BODY_LIMIT
from waypost.responses import Response, decision_response, error_response, plain_response
from waypost.rules.request import Request
from waypost.server.access_log import AccessLog, BufferedAccessLog
from waypost.server.bodies import BodyDirectory
from waypost.server.config import Settings
from waypost.server.forwarding import TrustedProxies, parse_trusted_proxies
from waypost.server.metrics import CONTENT_TYPE, ServerMetrics
from waypost.server.pages import NotFoundPage
from waypost.server.proxy import Forward, UpstreamProxy, proxy_refusal
from waypost.stats.visits import AddressMode
from waypost.store.keyring import StoreKeyRing
from waypost.store.recorder import StatsRecorder

__all__ = ["HEALTH_PATH", "METRICS_PATH", "Answer", "WaypostServer"]

logger = logging.getLogger("waypost.server")

HEALTH_PATH = "/_waypost/health"
METRICS_PATH = "/_waypost/metrics"
_INTERNAL_PREFIX = "/_waypost/"
#: The actions whose 404 is a page nothing answers (see done()).
_NOT_FOUND_ACTIONS = frozenset({"pass", "rewrite", "proxy"})
# Each forward_auth guard a request must pass is asked once; more than this many in a row is a
# loop (rules swapped again and again while asking), answered 502.
_MAX_ASKS = 8


class Answer(NamedTuple):
    """What to do with a request: send ``response``, or send ``forward`` upstream.

    ``action`` labels the request in the metrics: the decision's action, ``rejected`` (over a
    limit) or ``internal`` (health, metrics). ``auth``, with neither a response nor a forward,
    is an auth decision: :meth:`WaypostServer.authorized` asks the auth service and gives the
    answer to send. (A named tuple: one is made per request.)
    """

    action: str
    response: Response | None = None
    forward: Forward | None = None
    vary: tuple[str, ...] = ()
    auth: Decision | None = None


# Per request: a C-level constructor (a NamedTuple's own __new__ is a Python function).
_answer = partial(tuple.__new__, Answer)
_clock = time.perf_counter


def _printable_path(path: str) -> str:
    # A decoded path may hold surrogate escapes (bytes that were not UTF-8): show them as U+FFFD.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class WaypostServer:
    """The standalone server's state and logic for one worker process.

    ``source`` says where the rules come from: a :class:`~waypost.follow.sources.FileSource` is
    reloaded when the file changes (looked at every ``settings.reload_interval`` seconds), a
    :class:`~waypost.follow.sources.StoreSource` follows the store's committed revisions; with
    None the rules stay as they are. Call :meth:`start` in the worker (after any fork) and
    :meth:`aclose` when it stops. ``buffered_log`` writes the access log to standard output in
    batches (see :class:`~waypost.server.access_log.BufferedAccessLog`); :meth:`flush` writes
    them out.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        source: RulesSource | None = None,
        buffered_log: bool = False,
    ) -> None:
        self.settings = settings = settings or Settings()
        self.engine = engine
        #: Where the rules come from (see :mod:`waypost.follow.sources`).
        self.source = source
        self.metrics = ServerMetrics()
        self.metrics.rules.set(len(engine))
        self.watcher: RulesWatcher | None = None
        self.store_sync: StoreSync | None = None
        if isinstance(source, FileSource):
            self.watcher = RulesWatcher(
                engine,
                source,
                interval=settings.reload_interval,
                on_reload=self._reloaded,
                max_shrink=settings.reload_max_shrink,
            )
        elif isinstance(source, StoreSource):
            self.store_sync = StoreSync(
                engine, source, on_reload=self._reloaded, max_shrink=settings.reload_max_shrink
            )
        #: Rule hits and 404s, counted here and added to the store in batches: the rule store
        #: (with --db), or a served file's temporary one (see FileSource.stats_url).
        self.stats: StatsRecorder | None = None
        stats_url = None
        if isinstance(source, StoreSource):
            stats_url = source.url
        elif isinstance(source, FileSource):
            stats_url = source.stats_url
        if settings.stats and stats_url is not None:
            self.stats = StatsRecorder(
                stats_url,
                interval=settings.stats_interval,
                retention_days=settings.stats_retention or None,
                rules=engine.rules,
                rule_ids=source.rule_ids if isinstance(source, StoreSource) else (),
                top_rules=settings.stats_top_rules,
                redis=settings.redis,
                fold_interval=settings.stats_fold_interval,
                visits=settings.stats_visits,
                addresses=cast(AddressMode, settings.stats_visit_addresses),
                geoip=settings.geoip,
            )
            if self.store_sync is not None:
                self.store_sync.stats = self.stats
            # Hits decided on the compiled road are counted there (answer() asks
            # resolve_counted()); the recorder takes them at every fold.
            self.stats.count_from(engine)
        self.page = NotFoundPage(settings.not_found_template)
        self.proxy = (
            UpstreamProxy(settings.upstream, timeout=settings.upstream_timeout)
            if settings.upstream
            else None
        )
        #: What proxy decisions (and relay()) go through: the upstream's proxy when there is one
        #: (one pool of connections, kept per origin), else a proxy without an upstream.
        self.origins = self.proxy or UpstreamProxy(None, timeout=settings.upstream_timeout)
        self.access_log: AccessLog | None = None
        if settings.access_log:
            self.access_log = BufferedAccessLog() if buffered_log else AccessLog()
        self.proxies = TrustedProxies(parse_trusted_proxies(settings.trusted_proxies))
        #: Where request bodies larger than ``body_buffer_bytes`` are buffered.
        self.bodies = BodyDirectory()
        self._behind_proxies = bool(self.proxies)
        self._observe = self.metrics.observe_decision
        self.in_flight = 0

    def __repr__(self) -> str:
        return f"WaypostServer({self.engine!r}, upstream={self.settings.upstream!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching the rules file, or the store, and the access keys (in the worker
        process)."""
        if self.watcher is not None:
            self.watcher.start()
        if self.store_sync is not None:
            self.store_sync.start()
        keys = self.engine.keys
        if isinstance(keys, StoreKeyRing):
            keys.start(strict=False)  # loaded before the fork: a store outage keeps those
        if self.stats is not None:
            self.stats.start()

    async def aclose(self) -> None:
        """Stop watching, write the access keys' last use and close upstream connections."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.store_sync is not None:
            self.store_sync.stop()
        keys = self.engine.keys
        if isinstance(keys, StoreKeyRing):
            keys.close()
        if self.stats is not None:
            # The last counts go to the store before the worker ends (a database write).
            await asyncio.to_thread(self.stats.stop)
        await self.origins.aclose()
        self.bodies.remove()

    def flush(self) -> None:
        """Write what the metrics and the access log hold back (see ``buffered_log``)."""
        self._gauge_degraded()
        self.metrics.flush()
        stats = self.stats
        if stats is not None:
            self.metrics.rules_hit(stats.top_rules())
            self.metrics.stats_held.set(stats.held)
            self.metrics.stats_dropped.set(stats.dropped)
        if isinstance(self.access_log, BufferedAccessLog):
            self.access_log.flush()

    def _reloaded(self, ok: bool) -> None:
        self.metrics.reloaded(ok, len(self.engine))
        self._gauge_degraded()

    def _gauge_degraded(self) -> None:
        self.metrics.degraded.set(1 if self.degraded() else 0)

    # -- answering ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        raw_path: str,
        query: str,
        headers: list[tuple[str, str]],
        peer: str | None,
        scheme: str = "http",
    ) -> Request:
        """The one :class:`~waypost.rules.request.Request` of a request to this server: the path
        decoded once, the client worked out once (the connection's ``peer`` and ``scheme``, or
        behind trusted proxies the address and scheme they forwarded). ``raw_path`` is
        percent-encoded, ``query`` raw."""
        client = peer
        if self._behind_proxies:
            client = self.proxies.client(peer, headers)
            scheme = self.proxies.scheme(peer, headers, scheme)
        # Positional: a call with keywords costs CPython 3.11 a dict; the Request decodes the path.
        return Request(method, raw_path, query, headers, None, client, None, None, scheme)

    def client(self, peer: str | None, headers: list[tuple[str, str]]) -> str | None:
        """The client's address for a request no :meth:`request` was built for (a refusal)."""
        return self.proxies.client(peer, headers) if self._behind_proxies else peer

    def answer(self, request: Request, peer: str | None) -> Answer:
        """What to do with ``request`` (from :meth:`request`); ``peer`` is the connection's
        address, which the upstream gets appended to X-Forwarded-For."""
        settings = self.settings
        method = request.method
        raw_path = request.raw_path
        query = request.query_string
        headers: list[tuple[str, str]] = request.raw_headers  # type: ignore[assignment]
        head = method == "HEAD"
        if len(raw_path) + len(query) + 1 > settings.max_request_line:
            detail = f"The request target is longer than {settings.max_request_line} bytes."
            return Answer("rejected", error_response(414, detail, head=head))
        size = 0
        for name, value in headers:
            size += len(name) + len(value) + 4
        if size > settings.max_header_bytes:
            detail = f"The request headers are larger than {settings.max_header_bytes} bytes."
            return Answer("rejected", error_response(431, detail, head=head))
        if raw_path.startswith(_INTERNAL_PREFIX):
            internal = self._internal(raw_path, head)
            if internal is not None:
                return Answer("internal", internal)
        started = _clock()
        stats = self.stats
        try:
            if stats is None:
                decision = self.engine.resolve(request)
            else:  # the hit counted (on the compiled road, by the road itself)
                decision = self.engine.resolve_counted(request, self._count)
        except Exception:  # a bug must cost one request, not the worker
            logger.exception("waypost: deciding %s %s failed", method, raw_path)
            return Answer("error", error_response(500, head=head))
        self._observe(_clock() - started)
        if stats is not None:
            rate = stats.visit_rate
            if rate and decision.action == "redirect" and (rate >= 1 or random.random() < rate):
                headers_of = request.headers
                stats.visit(
                    decision,
                    time.time(),
                    request.client_ip,
                    headers_of.get("referer"),
                    headers_of.get("user-agent"),
                )
        return self._decided(request, decision, peer)

    def _count(self, decision: Decision) -> None:
        """Count the hit of a decision made on the Python road (see answer())."""
        stats = self.stats
        if stats is not None:
            stats.hit(decision, time.time())

    def _decided(self, request: Request, decision: Decision, peer: str | None) -> Answer:
        action = decision.action
        method = request.method
        raw_path = request.raw_path
        query = request.query_string
        headers: list[tuple[str, str]] = request.raw_headers  # type: ignore[assignment]
        head = method == "HEAD"
        engine = self.engine
        if engine.has_guards:
            # Only the guards set the identity headers: a client's own copy never goes on (nor
            # one of the headers a forward_auth guard copies from its auth service).
            headers = without_identity_headers(headers, engine.identity_header_names)
        if action == "redirect" or action == "respond":
            response = decision_response(
                decision, head=head, default_max_age=self.settings.redirect_max_age
            )
            return _answer((action, response, None, (), None))
        if action == "auth":
            return Answer("auth", auth=decision)
        if action == "proxy":
            return self._to_origin(request, decision, peer, head, headers)
        proxy = self.proxy
        if proxy is not None:
            if action == "rewrite":
                raw_path, query = decision.path or "/", decision.query or ""
            forward = proxy.forward(
                method,
                raw_path,
                query,
                headers,
                client_ip=peer,
                scheme=request.scheme,
                set_headers=decision.headers,  # a rewrite's set_headers, a guard's identity
            )
            return Answer(action, forward=forward, vary=decision.vary)
        if action != "pass" and action != "rewrite":  # pragma: no cover - a new action
            logger.error("waypost: unknown action %r for %s %r", action, method, raw_path)
            return Answer("error", error_response(500, head=head))
        shown = _printable_path(request.path)
        page = self.page.render(shown, method, head=head, vary=decision.vary)
        return Answer(action, page)

    async def authorized(self, request: Request, answer: Answer, peer: str | None) -> Answer:
        """The answer to an ``auth`` ``answer``: each auth service asked in turn (one per
        ``forward_auth`` guard the request must pass), then what the engine decides with the
        answers. A service that cannot be reached is a 502, one that does not answer within its
        guard's ``timeout`` a 504: the request goes nowhere (fail closed)."""
        decision = answer.auth
        head = request.method == "HEAD"
        for _ in range(_MAX_ASKS):
            auth = decision.auth if decision is not None else None
            if decision is None or auth is None:
                break
            try:
                status, headers, body = await self.origins.ask(
                    auth.url, auth.headers, auth.timeout, BODY_LIMIT
                )
            except httpx.TimeoutException:
                # The URL has no user or password (the loader refuses one); the headers, which
                # carry the client's credentials, are never logged.
                logger.error(
                    "waypost: guard %r: the auth service %s did not answer within %g s",
                    auth.guard,
                    auth.url,
                    auth.timeout,
                )
                detail = "The authentication service did not answer in time."
                return Answer("auth", error_response(504, detail, head=head))
            except httpx.HTTPError as exc:
                logger.error(
                    "waypost: guard %r: the auth service %s failed: %s",
                    auth.guard,
                    auth.url,
                    type(exc).__name__,
                )
                detail = "The authentication service failed."
                return Answer("auth", error_response(502, detail, head=head))
            try:
                decision = self.engine.resolve_authorized(request, decision, status, headers, body)
            except Exception:  # a bug must cost one request, not the worker
                logger.exception(
                    "waypost: deciding %s %s after its auth failed",
                    request.method,
                    request.raw_path,
                )
                return Answer("error", error_response(500, head=head))
            if decision.action != "auth":
                return self._decided(request, decision, peer)
        logger.error(
            "waypost: %s %r still asks an auth service after %d answers (rules swapped meanwhile?)",
            request.method,
            request.raw_path,
            _MAX_ASKS,
        )
        return Answer("auth", error_response(502, "The authentication service failed.", head=head))

    def _to_origin(
        self,
        request: Request,
        decision: Decision,
        peer: str | None,
        head: bool,
        headers: list[tuple[str, str]],
    ) -> Answer:
        """A proxy decision: the request goes to the decision's URL, with the headers, forwarded
        headers, limits and timeouts of the upstream (see :mod:`waypost.server.proxy`)."""
        url = decision.location or ""
        refusal = proxy_refusal(url, self.engine.ruleset.proxy_hosts)
        if refusal is not None:
            rule = decision.rule
            logger.error(
                "waypost: not proxying %s %r (rule %s): %s",
                request.method,
                request.raw_path,
                rule.source if rule is not None else "-",
                refusal,
            )
            return Answer(
                "proxy", error_response(502, "The proxy target is not allowed.", head=head)
            )
        forward = self.origins.forward(
            request.method,
            decision.path or "/",
            decision.query or "",
            headers,
            client_ip=peer,
            scheme=request.scheme,
            set_headers=decision.headers,
            url=url,
        )
        return Answer("proxy", forward=forward, vary=decision.vary)

    def _internal(self, raw_path: str, head: bool) -> Response | None:
        # Without a key (see WaypostApp, which checks one): health says only ok or degraded,
        # metrics answer only when public. The details name the database and quote its errors.
        if raw_path == HEALTH_PATH:
            return self.health_response(head, details=self.settings.public_health_details)
        if raw_path == METRICS_PATH:
            if not self.settings.public_metrics:
                detail = "The metrics need a read API key (Authorization: Bearer wp_...)."
                return error_response(401, detail, head=head)
            return self.metrics_response(head)
        return None

    def health_response(self, head: bool, *, details: bool) -> Response:
        """``/_waypost/health``: :meth:`health` with ``details``, else :meth:`public_health`."""
        return self._json(self.health() if details else self.public_health(), head)

    def metrics_response(self, head: bool) -> Response:
        """``/_waypost/metrics``: the Prometheus text."""
        self._gauge_degraded()
        body = self.metrics.render()
        headers = (
            ("content-type", CONTENT_TYPE),
            ("content-length", str(len(body))),
            ("cache-control", "no-store"),
        )
        return Response(200, headers, b"" if head else body)

    def public_health(self) -> dict[str, object]:
        """What anyone may see of :meth:`health`: ``{"status": "ok"}`` or ``"degraded"``."""
        return {"status": self.health()["status"]}

    def degraded(self) -> str | None:
        """Why the rules serving are not their source's (None when they are)."""
        if self.store_sync is not None:
            return self.store_sync.degraded
        return self.watcher.degraded if self.watcher is not None else None

    def health(self) -> dict[str, object]:
        """Liveness and what is serving: rule count, revision (file hash), load time, worker pid;
        ``degraded`` with the ``reason`` when the source has changes that are not serving; from
        a store, which one (for a read key: see public_health)."""
        sync = self.store_sync
        if sync is not None:
            return {
                "status": "degraded" if sync.degraded else "ok",
                "rules": len(self.engine),
                "revision": sync.revision,
                "loaded_at": sync.loaded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "store": sync.location,
                "reason": sync.degraded,
                "pid": os.getpid(),
                "stats": None if self.stats is None else self.stats.report(),
            }
        loaded = self.watcher.loaded if self.watcher is not None else None
        reason = self.degraded()
        return {
            "status": "degraded" if reason else "ok",
            "rules": len(self.engine),
            "revision": loaded.revision if loaded else None,
            "loaded_at": loaded.label.partition("@")[2] if loaded else None,
            "reason": reason,
            "pid": os.getpid(),
        }

    @staticmethod
    def _json(data: object, head: bool) -> Response:
        text = json.dumps(data) + "\n"
        response = plain_response(200, text, head=head)
        return Response(
            200,
            (
                ("content-type", "application/json"),
                response.headers[1],
                ("cache-control", "no-store"),
            ),
            response.body,
        )

    async def relay(
        self,
        forward: Forward,
        vary: tuple[str, ...],
        body: bytes | AsyncIterator[bytes] | None,
        start: Callable[[int, list[tuple[str, str]]], Awaitable[None]],
        write: Callable[[bytes], Awaitable[None]],
        *,
        head: bool,
    ) -> tuple[int, int]:
        """Send ``forward`` upstream and stream its response through ``start`` and ``write``.

        Returns ``(status, bytes sent)``. An upstream that cannot be reached is answered 502, one
        that times out before answering 504; a failure mid-body raises (the adapter drops the
        connection, as the status has been sent). An exception raised by a streamed ``body``
        (the client's body failed, see :mod:`waypost.server.bodies`) comes out as it is, before
        anything is sent, with the upstream connection closed.
        """
        proxy = self.origins
        try:
            upstream = await proxy.send(forward, body)
        except httpx.TimeoutException:
            logger.error("waypost: upstream timed out: %s %s", forward.method, forward.url)
            return await self._send_error(504, start, write, head)
        except httpx.HTTPError as exc:
            logger.error("waypost: upstream failed: %s %s: %s", forward.method, forward.url, exc)
            return await self._send_error(502, start, write, head)
        size = 0
        try:
            await start(
                upstream.status_code, proxy.response_headers(upstream.headers.multi_items(), vary)
            )
            if not head:
                async for chunk in upstream.aiter_raw():
                    if chunk:
                        size += len(chunk)
                        await write(chunk)
        finally:
            await upstream.aclose()
        return upstream.status_code, size

    @staticmethod
    async def _send_error(
        status: int,
        start: Callable[[int, list[tuple[str, str]]], Awaitable[None]],
        write: Callable[[bytes], Awaitable[None]],
        head: bool,
    ) -> tuple[int, int]:
        detail = "The upstream did not answer in time." if status == 504 else "The upstream failed."
        response = error_response(status, detail, head=head)
        await start(status, list(response.headers))
        if response.body:
            await write(response.body)
        return status, len(response.body)

    # -- after the answer -----------------------------------------------------------------

    def done(
        self,
        action: str,
        status: int,
        size: int,
        *,
        client_ip: str | None,
        method: str,
        target: str,
        protocol: str,
        headers: Iterable[tuple[str, str]],
    ) -> None:
        """Count the request and write its access log line; ``client_ip`` is the real client's
        address (the request's, or :meth:`client` for a request refused before one was built)."""
        self.metrics.count(action, status)
        # What no rule answers (or a rule passed on) and the upstream or the 404 page did not
        # find goes to the not-found log (a rule's own 'respond: 404' is that rule's hit).
        stats = self.stats if status == 404 and action in _NOT_FOUND_ACTIONS else None
        if stats is None and self.access_log is None:
            return
        referer = user_agent = None
        for name, value in headers:
            key = name.lower()
            if key == "referer":
                referer = value
            elif key == "user-agent":
                user_agent = value
        if stats is not None:
            stats.missing(target, referer, user_agent, time.time())
        if self.access_log is not None:
            self.access_log.write(
                client_ip, method, target, protocol, status, size, referer, user_agent
            )
