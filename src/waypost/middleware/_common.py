"""What the ASGI and WSGI middleware share: holding the app and the engine, binding the app's
reverse routing, and answering a decision under the app's mount point.

Each middleware differs only in how it reads a request and writes a response; everything else
lives here once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote

from waypost.engine import Decision, Engine, RouteResolver
from waypost.exceptions import WaypostError
from waypost.follow import FileSource, RulesWatcher, StoreSource, StoreSync
from waypost.follow.reloading import file_signature
from waypost.follow.store_sync import engine_and_snapshot
from waypost.guards import GUARD_HEADER, KEY_ID_HEADER, USER_HEADER
from waypost.responses import DEFAULT_MAX_AGE, Response, decision_response, error_response
from waypost.rules.model import Rewrite
from waypost.rules.request import Request
from waypost.stats import StatsSink
from waypost.store.recorder import StatsRecorder

__all__ = [
    "AppRoutes",
    "GuardIdentity",
    "MiddlewareBase",
    "identity_of",
    "proxy_rules_problem",
    "record_missing",
    "resolver_for",
    "under_mount",
]

logger = logging.getLogger("waypost.middleware")

_NO_PROXY = (
    "the middleware cannot proxy (it has no HTTP client): serve these rules with the "
    "standalone server ('waypost serve', which proxies them), put the proxy in front of the "
    "app (nginx proxy_pass), or redirect with 'to:' instead"
)

App = TypeVar("App")
#: A framework's reverse routing read off an app, or None when the object is not such an app.
AppRoutes = Callable[[Any], RouteResolver | None]


def under_mount(decision: Decision, mount: str) -> Decision:
    """``decision`` with a same-site Location moved under ``mount`` (ASGI's ``root_path``,
    WSGI's ``SCRIPT_NAME``): rules match the path inside the app, the browser needs it all."""
    location = decision.location
    if mount and location and location.startswith("/"):
        location = quote(mount) + location
        if decision.path is not None:
            # A guard's login redirect: its 'next' (last in the Location) is under the mount too.
            start = location.rindex("next=") + len("next=")
            location = location[:start] + quote(quote(mount) + decision.path, safe="/")
        return replace(decision, location=location)
    return decision


class GuardIdentity:
    """Who the guards let through, where a framework looks for it: ASGI ``scope["user"]``
    (Starlette's ``request.user``), WSGI ``environ["waypost.identity"]``.

    ``user`` is the identity the guards found (``X-Waypost-User``, '' when a guard gave none),
    ``guards`` the names of the guards that passed, ``key_id`` the id of the access key an
    ``api_key`` guard let in (``X-Waypost-Key-Id``; None without one). Shaped like Starlette's
    ``BaseUser`` (``is_authenticated``, ``display_name``, ``identity``).
    """

    __slots__ = ("guards", "key_id", "user")

    def __init__(self, user: str, guards: tuple[str, ...], key_id: str | None = None) -> None:
        self.user = user
        self.guards = guards
        self.key_id = key_id

    @property
    def is_authenticated(self) -> bool:
        """Always True: only a request that passed its guards has one."""
        return True

    @property
    def display_name(self) -> str:
        """The user."""
        return self.user

    @property
    def identity(self) -> str:
        """The user."""
        return self.user

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GuardIdentity) and (self.user, self.guards, self.key_id) == (
            other.user,
            other.guards,
            other.key_id,
        )

    def __hash__(self) -> int:
        return hash((self.user, self.guards, self.key_id))

    def __repr__(self) -> str:
        key = "" if self.key_id is None else f", key_id={self.key_id!r}"
        return f"GuardIdentity({self.user!r}, {self.guards!r}{key})"


def identity_of(decision: Decision) -> GuardIdentity | None:
    """The identity the guards put on ``decision`` (a pass or a rewrite), None without one."""
    user = guards = key_id = None
    for name, value in decision.headers:
        if name == USER_HEADER:
            user = value
        elif name == GUARD_HEADER:
            guards = value
        elif name == KEY_ID_HEADER:
            key_id = value
    if guards is None:
        return None
    return GuardIdentity(user or "", tuple(guards.split(", ")), key_id)


def resolver_for(routes: Any, app_routes: AppRoutes, kind: str) -> RouteResolver:
    """The ``routes=`` a middleware was given, as a resolver: an app's own reverse routing (read
    by ``app_routes``), or a callable ``(name, params) -> path``; ``kind`` names the app for the
    error ("a Flask app")."""
    # An app first: a Starlette or Flask app is itself callable, but not a resolver.
    resolver = app_routes(routes)
    if resolver is not None:
        return resolver
    if callable(routes):
        return cast(RouteResolver, routes)
    raise WaypostError(f"routes={routes!r} is neither a callable nor {kind}")


def record_missing(stats: StatsSink, request: Request) -> None:
    """Tell ``stats`` the app answered ``request`` with 404 (its path and query as sent, its
    referrer and user agent)."""
    query = request.query_string
    target = f"{request.raw_path}?{query}" if query else request.raw_path
    headers = request.headers
    stats.missing(target, headers.get("referer"), headers.get("user-agent"), time.time())


def proxy_rules_problem(engine: Engine) -> str | None:
    """Why the middleware refuses ``engine``'s rules: each rule that proxies to another origin
    (a rewrite to an absolute URL), by ``file:line``; None when there is none."""
    if not engine.ruleset.proxy_hosts:
        return None  # the loader lets no proxy rule through without proxy_hosts
    found = [
        f"{rule.source} (rewrite: {action.text})"
        for rule in engine.rules
        if isinstance(action := rule.action, Rewrite) and action.proxy
    ]
    if not found:
        return None
    return f"{len(found)} rule(s) proxy to another origin, and {_NO_PROXY}: " + "; ".join(found)


def _rules_and_follower(
    rules: str | Path | Engine | None, reload: bool, store: str | None, max_shrink: float
) -> tuple[Engine, RulesWatcher | StoreSync | None]:
    """The engine a middleware serves, and what keeps it in step with its source (None: nothing
    does). WaypostError saying what to give for a combination that cannot work."""
    if (rules is None) == (store is None):
        raise WaypostError(
            "give the rules (a rules file or an Engine) or store= (a rule store URL), one of them"
        )
    if store is not None:
        if reload:
            raise WaypostError("store= is followed revision by revision already: leave reload out")
        engine, snapshot, _ = engine_and_snapshot(store)
        source = StoreSource(store, snapshot.revision, snapshot.rule_ids)
        return engine, StoreSync(engine, source, max_shrink=max_shrink)
    assert rules is not None
    if isinstance(rules, Engine):
        if reload:
            raise WaypostError("reload=True watches a rules file: give its path, not an Engine")
        return rules, None
    if not reload:
        return Engine.from_file(rules), None
    signature = file_signature(rules)  # before loading: a change from now on is reloaded
    engine = Engine.from_file(rules)
    watcher = RulesWatcher(
        engine, FileSource(rules, signature=signature), interval=1.0, max_shrink=max_shrink
    )
    return engine, watcher


class MiddlewareBase(Generic[App]):
    """The app, the engine, the redirect cache lifetime, and the answer to a decision.

    ``rules`` is a rules file path or an :class:`~waypost.engine.Engine`; with ``reload=True``
    the file is watched and a changed one swapped in (the server's hot reload, shrink guard
    included); ``store`` (a rule store URL, instead of ``rules``) serves the store's rules and
    follows every committed revision within a second, the last good rules serving while the
    database is away. The watching thread runs in each worker process (started with the first
    request, after any fork); ``degraded`` says why the rules serving are not the source's.
    ``routes`` resolves
    ``to: {route: ...}`` targets (see each middleware); ``default_max_age`` is the cache lifetime
    of a permanent redirect whose rule sets none; ``stats``, when given, records each rule hit
    and each request the app answers 404 (a :class:`~waypost.stats.StatsSink`, such as a
    :class:`~waypost.store.recorder.StatsRecorder` writing to a rule store). It is started on the
    first request (or the ASGI lifespan's start-up) and stopped, its last counts written, at the
    lifespan's shutdown or when the interpreter exits.

    Proxy rules (a ``rewrite`` to an absolute URL) need an HTTP client, which the middleware does
    not have: rules that hold one are refused when the middleware is made
    (:class:`~waypost.exceptions.WaypostError` naming each by ``file:line``), and a proxy
    decision that still comes (rules swapped in later with ``Engine.replace``/``reload``) is
    answered 502 with an error logged on ``waypost.middleware``; never handed to the app as if
    no rule applied.
    """

    def __init__(
        self,
        app: App,
        rules: str | Path | Engine | None = None,
        *,
        routes: RouteResolver | Any | None = None,
        default_max_age: int = DEFAULT_MAX_AGE,
        stats: StatsSink | None = None,
        reload: bool = False,
        store: str | None = None,
        max_shrink: float = 0.5,
    ) -> None:
        self.app = app
        self.stats = stats
        self._stats_lock = threading.Lock()
        self._stats_started = False
        self._started = False
        self.engine, self.follower = _rules_and_follower(rules, reload, store, max_shrink)
        if isinstance(self.follower, StoreSync) and isinstance(stats, StatsRecorder):
            self.follower.stats = stats  # hits count against each revision's rule ids
        problem = proxy_rules_problem(self.engine)
        if problem is not None:
            raise WaypostError(problem)
        self.default_max_age = default_max_age
        self._routes_bound = False
        resolver = self._route_resolver(routes)
        if resolver is not None:
            self._bind(resolver)

    @property
    def degraded(self) -> str | None:
        """Why the rules serving are not their source's (None when they are, or when nothing
        is followed)."""
        return None if self.follower is None else self.follower.degraded

    def start(self) -> None:
        """Start what runs in the background, once, in the serving process (after any fork):
        the follower of the rules and the stats sink; both stop when the interpreter exits."""
        if self._started:
            return
        with self._stats_lock:
            if self._started:
                return
            if self.follower is not None:
                self.follower.start()
                atexit.register(self.follower.stop)
            self._started = True
        self.start_stats()

    def stop(self) -> None:
        """Stop the follower and the stats sink (its last counts written)."""
        follower = self.follower
        if follower is not None and self._started:
            atexit.unregister(follower.stop)
            follower.stop()
        self._started = False
        self.stop_stats()

    def start_stats(self) -> None:
        """Start the stats sink (once; in the serving process, after any fork) and have it
        stopped when the interpreter exits. No-op without one."""
        stats = self.stats
        if stats is None or self._stats_started:
            return
        with self._stats_lock:
            if self._stats_started:
                return
            stats.start()
            atexit.register(self.stop_stats)
            self._stats_started = True

    def stop_stats(self) -> None:
        """Stop the stats sink, writing its last counts (no-op when it is not running)."""
        stats = self.stats
        with self._stats_lock:
            if stats is None or not self._stats_started:
                return
            self._stats_started = False
            atexit.unregister(self.stop_stats)
        stats.stop()

    def _route_resolver(self, routes: Any) -> RouteResolver | None:
        """The resolver for ``routes=`` (None: none yet); each middleware knows its framework."""
        raise NotImplementedError

    def _bind(self, resolver: RouteResolver) -> None:
        # Raises RulesError naming every rule whose route the app does not have.
        self.engine.bind_routes(resolver)
        self._routes_bound = True

    def answer_missing(
        self, decision: Decision, request: Request, mount: str, head: bool
    ) -> Response | None:
        """The answer to ``request``, which the app answered 404, by its settled
        ``only_if_missing`` ``decision`` (see :meth:`answer`), counted as a rule hit; None when
        the app's 404 stands, counted as a 404."""
        response = self.answer(decision, mount, head)
        stats = self.stats
        if stats is not None:
            if response is not None:
                stats.hit(decision, time.time())
            else:
                record_missing(stats, request)
        return response

    def answer(self, decision: Decision, mount: str, head: bool) -> Response | None:
        """The middleware's own response to a redirect or respond ``decision``, with a same-site
        Location under ``mount``; None for a rewrite or a pass, which the app answers; 502 for a
        proxy decision, which the middleware cannot carry out. An ``auth`` decision is settled
        before (see :mod:`._auth`); one that comes here, or an action this version does not
        know, is a 500: never a pass."""
        action = decision.action
        if action != "redirect" and action != "respond":
            if action == "pass" or action == "rewrite":
                return None
            if action == "proxy":
                return self._cannot_proxy(decision, head)
            logger.error("waypost: the middleware cannot carry out a %r decision", action)
            return error_response(500, head=head)
        return decision_response(
            under_mount(decision, mount), head=head, default_max_age=self.default_max_age
        )

    @staticmethod
    def _cannot_proxy(decision: Decision, head: bool) -> Response:
        rule = decision.rule
        logger.error(
            "waypost: not proxying to %s (rule %s): %s",
            decision.location,
            rule.source if rule is not None else "-",
            _NO_PROXY,
        )
        return error_response(
            502, "This address is proxied, which this server cannot do.", head=head
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r}, rules={self.engine!r})"
