"""The engine: holds the current matcher and answers "what happens to this request?".

``Engine.resolve()`` returns a :class:`Decision`; ``explain()`` returns the same decision with the
trace of every candidate tried and why it did or did not apply; ``url_for()`` builds a URL from a
named rule; ``replace()`` swaps in a new rule set atomically: a request reads the matcher reference
once, so it sees the old set or the new one, never a mix. No I/O happens on the request path.

When a redirect target filled in from request values would leave the site (see
:mod:`waypost.rules.safety`), the engine refuses it: the decision is ``respond`` 400 and the trace
says why. The request never reaches a later rule or the app with an attacker's URL.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from waypost.decision import NO_MATCH, Decision, Step, Trace, make_decision
from waypost.engine._compiled import FastMethod, fast_path
from waypost.engine._guards import GuardLayer, identity_headers, identity_headers_of
from waypost.engine._plans import Plan, Site, Stage, StoredRedirect, merge_query, plan_for
from waypost.exceptions import RuleError, RulesError, UrlBuildError
from waypost.guards import (
    GUARD_HEADER,
    IDENTITY_KEYS,
    USER_HEADER,
    Allowed,
    GuardCheck,
    KeyRing,
    build_guards,
)
from waypost.guards._limit import explaining
from waypost.matching import Matcher, compile_matcher
from waypost.rules.converters import BaseConverter, merge_converters
from waypost.rules.load import collector_paused, read_rules, rules_from_mappings
from waypost.rules.model import Redirect, Rule, RuleSet
from waypost.rules.pattern import quote_path
from waypost.rules.request import HeaderInput, Request, normal_path, parse_url
from waypost.rules.safety import location_problem
from waypost.rules.target import RouteTarget, parse_target

__all__ = ["Decision", "Engine", "Stage", "Step", "Trace"]

RouteResolver = Callable[[str, Mapping[str, str]], str]
_SAME_SITE = parse_target("/")


class _Snapshot:
    """One rule set, its matcher and the plans of its rules; swapped as a whole."""

    __slots__ = (
        "counted",
        "fast",
        "guards",
        "has_fallbacks",
        "matcher",
        "merge_slashes",
        "packed",
        "plans",
        "ruleset",
        "site",
        "slash_redirects",
    )

    def __init__(self, ruleset: RuleSet, routes: RouteResolver | None = None) -> None:
        self.ruleset = ruleset
        #: The guard layer; None when no rule requires a guard (resolve() then pays nothing).
        self.guards: GuardLayer | None = None
        self.has_fallbacks = any(rule.options.only_if_missing for rule in ruleset.rules)
        #: ``defaults: {merge_slashes: false}``: a path with repeated slashes (and no dot
        #: segment) is not sent to its merged form; no rule matches it, so it passes.
        self.merge_slashes = ruleset.defaults.get("merge_slashes", True) is not False
        #: Whether a rule has ``trailing_slash: redirect`` (a miss then tries the other slash).
        self.slash_redirects = any(rule.options.slash_redirect for rule in ruleset.rules)
        self.site = Site(ruleset.allowed_hosts, routes)
        #: Plans by id(rule) (the rule set keeps every rule alive), made when a rule is first
        #: applied; the compiled index holds the plans of its pattern rules already (see
        #: compile_matcher(payload=...)).
        self.plans: dict[int, Plan] = {}
        #: What the matcher hands back with a hit in the compiled store (a literal redirect).
        self.packed = StoredRedirect(ruleset.rules)
        self.matcher: Matcher = compile_matcher(
            ruleset.rules,
            payload=plan_for,
            packed=self.packed,
            first_match=ruleset.defaults.get("order") == "first_match",
        )
        #: The compiled road of resolve() (see _compiled.py); None: the Python road only. With
        #: guards, it answers only what its gate lets through (the guards remember the
        #: request's credential), and the guard layer asks its ``resolve_rules()`` for the
        #: rules' decision once the guards passed on the Python road.
        self.fast: Any = None
        #: ``fast`` once it counts hits (see Engine.count_hits()).
        self.counted: Any = None

    def plan(self, rule: Rule) -> Plan:
        """The plan of ``rule`` for values from the trie (made once; see plan_for())."""
        plan = self.plans.get(id(rule))
        if plan is None:
            plan = self.plans[id(rule)] = plan_for(rule, prepared=False)
        return plan


def _arm(snapshot: _Snapshot) -> None:
    """Make ``snapshot``'s compiled road count hits, when it can (see Engine.count_hits())."""
    fast = snapshot.fast
    if fast is not None and fast.start_counting():
        snapshot.counted = fast


def _sample(converter: BaseConverter) -> Any:
    """A value the converter accepts, to try route targets at start-up."""
    try:
        return converter.sample()
    except ValueError:  # a converter that cannot give one: its route is tried with some text
        return "sample"


def _check_routes(rules: Iterable[Rule], resolver: RouteResolver) -> None:
    errors: list[RuleError] = []
    for rule in rules:
        target = rule.action.target if isinstance(rule.action, Redirect) else None
        if not isinstance(target, RouteTarget):
            continue
        values = (
            {v.name: _sample(v.converter) for v in rule.pattern.variables} if rule.pattern else {}
        )
        try:
            location = resolver(target.route, target.fill(values))
        except Exception as exc:  # whatever the host app's router raises, it is this rule's error
            errors.append(
                RuleError(
                    f"the app has no route {target.route!r} taking "
                    f"{sorted(k for k, _ in target.params)}: "
                    f"{type(exc).__name__}: {exc}",
                    file=rule.file,
                    line=rule.line,
                )
            )
            continue
        if not isinstance(location, str) or location_problem(location, _SAME_SITE, ()) is not None:
            errors.append(
                RuleError(
                    f"route {target.route!r} built {location!r}, not a path on this site",
                    file=rule.file,
                    line=rule.line,
                )
            )
    if errors:
        raise RulesError(errors)


def _merge_slashes_problems(ruleset: RuleSet) -> list[RuleError]:
    """``merge_slashes: false`` with rules that keep clients out: refused, since ``//admin/x``
    would match no rule on ``/admin/...`` and reach an app that merges the slashes."""
    if ruleset.defaults.get("merge_slashes", True) is not False:
        return []
    gates = [
        rule
        for rule in ruleset.rules
        if rule.enabled and (rule.requirement is not None or rule.action.kind == "respond")
    ]
    if not gates:
        return []
    first = gates[0]
    return [
        RuleError(
            "defaults.merge_slashes: false cannot go with rules that keep clients out "
            f"(require: or respond:, like {first.path!r} at {first.source}): a path such as "
            f"'/{first.path}' would match none of them and reach the app, which may merge the "
            "slashes; leave merge_slashes out (the default sends such a path to its merged "
            "form with a 308)",
            file=first.file,
            line=first.line,
        )
    ]


def _compile(
    ruleset: RuleSet,
    errors: list[RuleError],
    checks: Mapping[str, GuardCheck] | None = None,
    keys: KeyRing | None = None,
    compiled: bool = True,
) -> _Snapshot:
    snapshot = _Snapshot(ruleset)
    errors = [*errors, *snapshot.matcher.duplicates, *_merge_slashes_problems(ruleset)]
    if ruleset.guard_rules or ruleset.guards or checks:
        guards, problems = build_guards(ruleset.guards, checks, keys)
        errors.extend(problems)
        if ruleset.guard_rules:
            layer = GuardLayer(ruleset.guard_rules, guards)
            errors.extend(layer.problems())
            snapshot.guards = layer
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0, e.col or 0))
        raise RulesError(errors, file=ruleset.source)
    if not compiled:
        return snapshot
    with collector_paused():  # no cycles: collecting would only walk a large heap again
        fast = fast_path(
            snapshot.matcher,
            snapshot.packed,
            merge_slashes=snapshot.merge_slashes,
            slash_redirects=snapshot.slash_redirects,
            guards=snapshot.guards,
        )
    snapshot.fast = fast
    return snapshot


class Engine:
    """Resolve requests against a rule set.

    ``rules`` is a list of mappings in the rules file's structure (the entries under ``rules:``),
    with optional ``defaults``, ``allowed_hosts`` and ``proxy_hosts`` (the hosts a rewrite to an
    absolute URL may proxy to); or use :meth:`from_file`. Raises
    :class:`~waypost.exceptions.RulesError` listing every problem. ``pack_rules=False`` keeps
    every rule a plain Rule, in this load and in every reload (no packed literal redirects).

    ``guards`` are the guards rules may ``require`` (see :mod:`waypost.guards`): a name maps to
    a Python check (``check(request)`` returns an identity mapping, None or False) or, like a
    file's ``guards:``, to one kind with its options (``{"basic": {"htpasswd": ...}}``).
    ``keys`` are the access keys ``api_key`` guards check: a rule store's
    ``store.keyring()``, which follows the store (see :mod:`waypost.guards.api_key`).
    ``compiled=False`` builds no compiled road (every request on the Python road): for tools
    that load a large table and resolve few requests (``waypost check``).
    """

    __slots__ = (
        "_checks",
        "_compiled",
        "_converters",
        "_counting",
        "_declared",
        "_keys",
        "_pack_rules",
        "_retired",
        "_routes",
        "_snapshot",
    )

    def __init__(
        self,
        rules: Sequence[Mapping[str, Any]] | RuleSet = (),
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        converters: Mapping[str, type[BaseConverter]] | None = None,
        pack_rules: bool = True,
        proxy_hosts: Sequence[str] = (),
        guards: Mapping[str, GuardCheck | Mapping[str, Any]] | None = None,
        keys: KeyRing | None = None,
        compiled: bool = True,
    ) -> None:
        self._converters = merge_converters(converters)
        self._compiled = compiled
        self._pack_rules = pack_rules
        self._routes: RouteResolver | None = None
        self._keys = keys
        self._counting = False
        self._retired: list[tuple[tuple[Rule, ...], Any]] = []
        self._checks, self._declared = _split_guards(guards)
        self._snapshot = self._build(
            rules, defaults, allowed_hosts, proxy_hosts, self._checks, self._declared
        )

    def _build(
        self,
        rules: Sequence[Mapping[str, Any]] | RuleSet,
        defaults: Mapping[str, Any] | None,
        allowed_hosts: Sequence[str],
        proxy_hosts: Sequence[str],
        checks: Mapping[str, GuardCheck],
        declared: Mapping[str, Any] | None,
    ) -> _Snapshot:
        if isinstance(rules, RuleSet):
            return _compile(rules, [], checks, self._keys, self._compiled)
        ruleset, errors = rules_from_mappings(
            rules,
            defaults=defaults,
            allowed_hosts=allowed_hosts,
            proxy_hosts=proxy_hosts,
            converters=self._converters,
            pack_rules=self._pack_rules,
            guards=declared,
            guard_names=checks.keys(),
        )
        return _compile(ruleset, errors, checks, self._keys, self._compiled)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        converters: Mapping[str, type[BaseConverter]] | None = None,
        pack_rules: bool = True,
        guards: Mapping[str, GuardCheck] | None = None,
        keys: KeyRing | None = None,
        compiled: bool = True,
    ) -> Engine:
        """An engine for a rules file (.yaml, .yml, .toml, .json or .csv); ``guards`` are
        Python checks its rules may ``require`` (the file declares the others), ``keys`` the
        access keys its ``api_key`` guards check."""
        engine = cls.__new__(cls)
        engine._converters = merge_converters(converters)
        engine._compiled = compiled
        engine._pack_rules = pack_rules
        engine._routes = None
        engine._checks = dict(guards or {})
        engine._declared = None
        engine._keys = keys
        engine._counting = False
        engine._retired = []
        engine._snapshot = engine._load_file(path)
        return engine

    def _load_file(self, path: str | Path) -> _Snapshot:
        with collector_paused():
            ruleset, errors = read_rules(
                path,
                converters=self._converters,
                pack_rules=self._pack_rules,
                guard_names=self._checks.keys(),
            )
            return _compile(ruleset, errors, self._checks, self._keys, self._compiled)

    # -- state ------------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The current rules, in file order."""
        return self._snapshot.ruleset.rules

    @property
    def pack_rules(self) -> bool:
        """False when every rule is kept a plain Rule (see ``pack_rules`` above)."""
        return self._pack_rules

    @property
    def ruleset(self) -> RuleSet:
        """The current rule set."""
        return self._snapshot.ruleset

    @property
    def matcher(self) -> Matcher:
        """The current matcher."""
        return self._snapshot.matcher

    def __len__(self) -> int:
        return self._snapshot.matcher.rule_count

    def __repr__(self) -> str:
        return f"<Engine {len(self)} rules from {self._snapshot.ruleset.source or 'Python'}>"

    def replace(
        self,
        rules: Sequence[Mapping[str, Any]] | RuleSet,
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        proxy_hosts: Sequence[str] = (),
        guards: Mapping[str, GuardCheck | Mapping[str, Any]] | None = None,
    ) -> None:
        """Swap in a new rule set atomically; on any error the current rules stay in place.

        ``guards`` are as the constructor takes them. Without it the engine keeps the guards it
        was given (the Python checks, and the guards declared as mappings), so a reload of the
        rules, from a file or from the store, keeps the application's checks; with it, they
        are swapped together with the rules (``{}`` drops them), and only if the new rules load.
        """
        if guards is None:
            checks, declared = self._checks, self._declared
        else:
            checks, declared = _split_guards(guards)
        self._install(self._build(rules, defaults, allowed_hosts, proxy_hosts, checks, declared))
        self._checks, self._declared = checks, declared

    def reload(self, path: str | Path, *, accept: Callable[[RuleSet], None] | None = None) -> None:
        """Load ``path`` and swap it in atomically; on any error the current rules stay.

        ``accept``, when given, sees the new rule set before the swap; whatever it raises keeps
        the current rules and reaches the caller (the server's shrink guard is one).
        """
        snapshot = self._load_file(path)
        if accept is not None:
            accept(snapshot.ruleset)
        self._install(snapshot)

    def _install(self, snapshot: _Snapshot) -> None:
        if self._routes is not None:
            _check_routes(snapshot.ruleset.rules, self._routes)
            snapshot.site.routes = self._routes
        old = self._snapshot
        if self._counting:
            _arm(snapshot)
        self._snapshot = snapshot
        if old.counted is not None:
            # Drained by hit_counters() for a while: a request that raced the swap may count
            # in it still.
            self._retired = [*self._retired[-1:], (old.ruleset.rules, old.counted)]

    # -- hit counting -----------------------------------------------------------------------

    def count_hits(self) -> None:
        """Count rule hits on the compiled road from now on, for :meth:`resolve_counted` (the
        server's statistics): by rule position, in C, with no object made per hit; a stats
        recorder drains them (:meth:`hit_counters`)."""
        self._counting = True
        _arm(self._snapshot)

    def resolve_counted(
        self, request: Request, record: Callable[[Decision], None], stage: Stage = "all"
    ) -> Decision:
        """``resolve(request, stage=stage)``, the hit of the rule that decided counted: on the
        compiled road by the road itself (see :meth:`count_hits`), otherwise by
        ``record(decision)``."""
        counted = self._snapshot.counted
        if counted is not None:
            decision = counted.resolve_counted(request, None, stage)
            if decision is not None:
                return decision  # type: ignore[no-any-return]
            # The compiled road said no: the Python road, without asking it again.
            decision = _python_resolve(self, request, stage=stage)
        else:
            decision = self.resolve(request, stage=stage)
        record(decision)
        return decision

    def hit_counters(self) -> list[tuple[tuple[Rule, ...], Any]]:
        """The hit counters to drain (see :meth:`count_hits`), each with the rules whose
        positions it counts: the current rule set's, and those of the two it replaced last.
        Each is a ``FastPath``: ``counter.drain_into(slots, when, touched)``."""
        counted = self._snapshot.counted
        current = [] if counted is None else [(self._snapshot.ruleset.rules, counted)]
        return current + self._retired

    @property
    def guard_layer(self) -> GuardLayer | None:
        """The guard rules and guards of the current rules (None without guards); the checks
        use it."""
        return self._snapshot.guards

    @property
    def keys(self) -> KeyRing | None:
        """The access keys this engine's ``api_key`` guards check (None: none given)."""
        return self._keys

    @property
    def guard_names(self) -> frozenset[str]:
        """The names of the guards given to the engine as Python checks (rules ``require``
        them without declaring them; a reload parses its rules with these names)."""
        return frozenset(self._checks)

    @property
    def has_guards(self) -> bool:
        """True when some rule requires a guard: the adapters then remove a client's own
        ``X-Waypost-User`` / ``X-Waypost-Guard`` and send on the ones the guards set."""
        return self._snapshot.guards is not None

    @property
    def has_fallback_rules(self) -> bool:
        """True when some rule has ``only_if_missing`` (it waits for the app's 404)."""
        return self._snapshot.has_fallbacks

    def bind_routes(self, resolver: RouteResolver) -> None:
        """Resolve ``to: {route: ...}`` targets through the host app's reverse routing.

        ``resolver(name, params)`` returns the path for the app's route ``name``. Every route
        target is checked now, with sample values, so a missing endpoint fails at start-up with
        a RulesError naming the rule's file:line, not later as a redirect into a 404.
        """
        _check_routes(self._snapshot.ruleset.rules, resolver)
        self._routes = self._snapshot.site.routes = resolver

    # -- resolving --------------------------------------------------------------------------

    # No keyword-only parameters: CPython 3.11 does not specialize a call to a function that
    # has them (a slower frame set-up), and resolve() is the call made per request.
    def resolve(
        self,
        request: Request | str,
        url: str | None = None,
        headers: HeaderInput = None,
        client_ip: str | None = None,
        now: datetime | None = None,
        stage: Stage = "all",
    ) -> Decision:
        """What happens to ``request``: a :class:`~waypost.rules.request.Request`, or, as a
        convenience, a method and a URL (a path with query, or an absolute URL) with optional
        headers and client address.

        ``stage`` serves ``only_if_missing`` rules: ``"before"`` (before the app runs) skips them,
        ``"missing"`` (the app answered 404) considers only them, ``"all"`` considers every rule
        (the standalone server with no app behind it).
        """
        # With the compiled store built, Engine.resolve is this function wrapped (see the end
        # of this module): the compiled road answered already if it could. Here is the Python
        # road, the reference.
        snapshot = self._snapshot
        if url is None:
            try:
                path, query = request.path, request.query_string  # type: ignore[union-attr]
            except AttributeError:  # a str without a URL (try: free in CPython 3.11)
                raise TypeError("resolve() takes a Request, or a method and a URL") from None
        else:
            # The convenience: the URL is split and decoded here, once (a path with a query
            # inline: parse_url() does the same); its Request is built only when the first
            # candidate does not decide alone (below), from these parts.
            method: str = request  # type: ignore[assignment]
            if url[:1] == "/" and "#" not in url:
                scheme, host = "http", None
                raw_path, _, query = url.partition("?")
                path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
            else:
                scheme, host, raw_path, query, path = parse_url(url)
        if snapshot.guards is not None:
            # The one check a rule set without guards pays (see _guarded()).
            if "/." in path or ("//" in path and snapshot.merge_slashes):
                fixed = normal_path(path)
                if fixed is not None:
                    return _to_normal_form(fixed, query)
            if url is not None:
                parts = (scheme, host, raw_path, query, path)
                request = Request.from_url(method, parts, headers, client_ip, now)
            return self._guarded(request, snapshot, snapshot.guards, None, stage)  # type: ignore[arg-type]
        hit = snapshot.matcher.first(path)
        # A path with dot segments or repeated slashes goes to its normal form before any rule
        # answers it (see normal_path()). An exact path's hit (in the dict: no values; in the
        # compiled store) needs no look: the path is that rule's, which is normal (the loader
        # refuses others), but for trailing slashes. So an exact hit pays nothing for it; a
        # miss or a pattern hit pays about 40 ns.
        if (hit is None or (hit[2] and hit[1] is not snapshot.packed)) and (
            "/." in path or ("//" in path and snapshot.merge_slashes)
        ):
            fixed = normal_path(path)
            if fixed is not None:
                return _to_normal_form(fixed, query)
        if hit is None:
            if snapshot.slash_redirects:
                return _other_slash(snapshot, path, query, stage)
            return NO_MATCH
        rule, payload, values = hit
        plan: Plan = snapshot.plan(rule) if payload is None else payload  # type: ignore[arg-type]
        if stage in plan.alone:
            # The common case: the first candidate has no conditions, so it decides.
            return plan.apply(rule, values, query, snapshot.site, None)
        if url is not None:
            parts = (scheme, host, raw_path, query, path)
            request = Request.from_url(method, parts, headers, client_ip, now)
        return self._decide(request, snapshot, None, stage)  # type: ignore[arg-type]

    def quick_decision(self, path: str, query: str = "", stage: Stage = "all") -> Decision | None:
        """The decision for a request given as its decoded ``path`` and raw ``query``, when the
        compiled road answers it from these alone (no guard, no condition: nothing of the
        request but its path and query matters); None otherwise: ask :meth:`resolve` with the
        whole request. The middlewares ask this first and build a Request only when it gives
        None."""
        fast = self._snapshot.fast
        return None if fast is None else fast.resolve_path(path, query, stage)

    def candidates(self, path: str) -> Iterator[tuple[Rule, dict[str, Any]]]:
        """Every rule whose pattern matches the decoded ``path``, in the order the engine tries
        them, with the values each would get (conditions aside). The checks use it."""
        return self._snapshot.matcher.candidates(path)

    def first_candidate(self, path: str) -> Rule | None:
        """The rule the engine tries first for the decoded ``path`` (conditions aside), or
        None: what :meth:`candidates` gives first, without looking for the others (the checks
        ask it of every literal redirect of a large table)."""
        snapshot = self._snapshot
        hit = snapshot.matcher.first(path)
        if hit is None:
            return None
        rule = hit[0]
        if hit[1] is snapshot.packed:  # a rule of the compiled store: its position
            return self.ruleset.rules[rule]  # type: ignore[index]
        return rule  # type: ignore[return-value]

    def apply(
        self, rule: Rule, values: Mapping[str, Any] | None = None, query: str = ""
    ) -> Decision:
        """What ``rule`` decides for a request it matched, its conditions aside.

        ``values`` are what its pattern's converters made (none for an exact rule) and ``query``
        the request's query string. The checks use it to ask what one rule does on its own.
        """
        snapshot = self._snapshot
        return snapshot.plan(rule).apply(rule, values or {}, query, snapshot.site, None)

    def explain(
        self,
        request: Request | str,
        url: str | None = None,
        headers: HeaderInput = None,
        client_ip: str | None = None,
        *,
        now: datetime | None = None,
        stage: Stage = "all",
    ) -> Trace:
        """The decision for this request (as for :meth:`resolve`) and the trace of every
        candidate tried.

        ``stage`` is as for :meth:`resolve`: ``"before"`` explains what the middleware does
        before the app runs, ``"missing"`` what it does when the app answered 404.
        """
        if not isinstance(request, Request):
            if url is None:
                raise TypeError("explain() takes a Request, or a method and a URL")
            request = Request.from_url(request, url, headers, client_ip, now)
        snapshot = self._snapshot
        steps: list[Step] = []
        path = request.path
        fixed = None
        if "/." in path or ("//" in path and snapshot.merge_slashes):
            hit = snapshot.matcher.first(path)  # as resolve() does: an exact hit needs no look
            if hit is None or (hit[2] and hit[1] is not snapshot.packed):
                fixed = normal_path(path)
        if fixed is not None:
            decision = _to_normal_form(fixed, request.query_string)
        elif snapshot.guards is not None:
            with explaining():  # what would happen: no failure of the client is counted
                decision = self._guarded(request, snapshot, snapshot.guards, steps, stage)
        else:
            decision = self._decide(request, snapshot, steps, stage)
        return Trace(
            request.method,
            request.path,
            decision,
            tuple(steps),
            snapshot.matcher.rule_count,
        )

    def resolve_authorized(
        self,
        request: Request,
        decision: Decision,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        stage: Stage = "all",
    ) -> Decision:
        """What happens to ``request`` now that the auth service of the ``auth`` ``decision``
        (from :meth:`resolve`, or from this method) answered ``status`` with ``headers`` and
        ``body`` (read up to :data:`~waypost.guards.forward_auth.BODY_LIMIT` bytes and one).

        A 2xx counts the guard as passed and the guards and rules decide again (the answer may
        be another ``auth`` decision: ask that service too); anything else is the decision that
        answers the client (the service's status, body and safe headers). An adapter that
        cannot reach the service, or gets no answer within ``decision.auth.timeout``, answers
        502 or 504 itself: the request never goes on. If the rules were swapped in the meantime,
        the request is decided afresh (it may ask again).
        """
        auth = decision.auth
        if auth is None:
            raise ValueError(f"resolve_authorized() takes an 'auth' decision, got {decision!r}")
        snapshot = self._snapshot
        layer = snapshot.guards
        if layer is None or auth.origin is not layer:
            return self.resolve(request, None, None, None, None, stage)
        refused, done = layer.answered(request, decision, status, headers, body)
        if refused is not None:
            return refused
        return self._guarded(request, snapshot, layer, None, stage, done)

    @property
    def identity_header_names(self) -> frozenset[str]:
        """The request headers only the guards set, in lower case (``x-waypost-user``, ...,
        and what the ``forward_auth`` guards copy): the adapters remove a client's copies."""
        layer = self._snapshot.guards
        return IDENTITY_KEYS if layer is None else layer.identity_names

    def _guarded(
        self,
        request: Request,
        snapshot: _Snapshot,
        layer: GuardLayer,
        steps: list[Step] | None,
        stage: Stage,
        done: Mapping[str, Allowed] | None = None,
    ) -> Decision:
        """The guard layer, then the rules: every guard whose rule matches must pass before any
        rule that decides is considered (an exact redirect inside a guarded area included).

        A rewrite's new path is checked against the guards again, so a rewrite cannot route
        around one. The identity the guards found goes on as request headers of a pass, rewrite
        or proxy decision; a rule's ``set_headers`` cannot set those headers.
        """
        denied, passed = layer.check(request, steps, done)
        if denied is not None:
            return denied
        decision = None
        if steps is None and snapshot.fast is not None:
            # The rules' own decision on the compiled road (the guards passed; see resolve()).
            decision = snapshot.fast.resolve_rules(request, None, stage)
        if steps is None and decision is None:
            # resolve()'s common case: the first candidate has no conditions, so it decides.
            hit = snapshot.matcher.first(request.path)
            if hit is None:
                decision = (
                    _other_slash(snapshot, request.path, request.query_string, stage)
                    if snapshot.slash_redirects
                    else NO_MATCH
                )
            else:
                rule, payload, values = hit
                plan: Plan = snapshot.plan(rule) if payload is None else payload  # type: ignore[arg-type]
                if stage in plan.alone:
                    decision = plan.apply(rule, values, request.query_string, snapshot.site, None)
        if decision is None:
            decision = self._decide(request, snapshot, steps, stage)
        # Each field read once: Decision has __getattr__ (a packed rule is looked up when first
        # read), which makes every read of its attributes take the slow road.
        action = decision.action
        new_path = decision.path
        query = decision.query
        if action == "rewrite":
            # The new path is percent-encoded: the guards read it decoded, as Request does. One
            # that no guard rule matches has nothing to check again (the path alone says so;
            # see GuardLayer.matches()).
            raw_path = new_path or "/"
            path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
            if layer.matches(path):
                target = Request(
                    request.method,
                    raw_path,
                    query or "",
                    request.raw_headers,
                    request.host or None,
                    request.client_ip,
                    request.now,
                    path,
                    request.scheme,
                )
                # The guards passed already need not run again (a bcrypt or signature check),
                # nor an auth service that answered this request already (a rewrite into its
                # area).
                earlier = {name: allowed for name, allowed in passed}
                denied, also = layer.check(target, steps, {**done, **earlier} if done else earlier)
                if denied is not None:
                    return denied
                passed += [(name, allowed) for name, allowed in also if name not in earlier]
        vary = given_vary = decision.vary
        if passed and not vary:
            vary = layer.vary
        elif passed and any(n not in vary for n in layer.vary):
            # What a guarded area answers depends on the credential: a shared cache must not
            # hand it (a redirect inside the area, say) to a client without one.
            vary = (*vary, *(n for n in layer.vary if n not in vary))
        headers = given_headers = decision.headers
        if action in ("rewrite", "pass", "proxy"):
            # A rule's set_headers cannot forge the identity headers, guards passed or not.
            if len(passed) == 1 and not headers:
                # The common case, inline: identity_headers() of one guard.
                name, allowed = passed[0]
                user = allowed.user
                headers = (
                    ((USER_HEADER, user), (GUARD_HEADER, name)) if user else ((GUARD_HEADER, name),)
                )
                if allowed.headers:  # never Waypost's own two (see Allowed)
                    headers += allowed.headers
            else:
                identity = identity_headers(passed)
                headers = (
                    (*identity_headers_of(headers, layer.identity_names), *identity)
                    if headers
                    else identity
                )
        if vary is given_vary and headers == given_headers:
            return decision
        if action == "rewrite":
            # A rewrite has no status, location, body or packed rule (see ToTarget.apply()):
            # only what it has is read again.
            return make_decision(
                "rewrite", None, None, new_path, query, headers, None, decision.rule, None, vary
            )
        # replace(decision, vary=vary, headers=headers) at a fraction of its cost; a packed rule
        # stays unread (see make_decision()).
        lazy = decision._lazy
        return make_decision(
            action,
            decision.status,
            decision.location,
            new_path,
            query,
            headers,
            decision.body,
            None if lazy is not None else decision.rule,
            lazy,
            vary,
        )

    def _decide(
        self,
        request: Request,
        snapshot: _Snapshot,
        steps: list[Step] | None,
        stage: Stage = "all",
    ) -> Decision:
        """The full search: every candidate in priority order, until one applies."""
        vary: list[str] = []
        for rule, named in snapshot.matcher.candidates(request.path):
            plan = snapshot.plan(rule)
            if stage != "all" and plan.only_if_missing != (stage == "missing"):
                if steps is not None:
                    reason = (
                        "only when the app answers 404"
                        if stage == "before"
                        else "not a 404 fallback"
                    )
                    steps.append(Step(rule, named, "skipped", reason))
                continue
            if plan.conditional:
                # The outcome now depends on what these conditions read: say so in Vary.
                vary.extend(n for n in rule.conditions.reads() if n not in vary)
                failure = rule.conditions.failure(request)
                if failure is not None:
                    if steps is not None:
                        steps.append(Step(rule, named, "skipped", f"condition failed: {failure}"))
                    continue
            decision = plan.apply(rule, named, request.query_string, snapshot.site, steps)
            return replace(decision, vary=tuple(vary)) if vary else decision
        return Decision("pass", vary=tuple(vary)) if vary else NO_MATCH

    # -- building URLs ----------------------------------------------------------------------

    def url_for(self, name: str, /, **values: Any) -> str:
        """The path of the named rule's pattern with ``values`` filled in.

        Values the pattern does not use are added as a query string, as Flask does. Raises
        :class:`~waypost.exceptions.UrlBuildError` for an unknown name, a missing value or an
        ill-typed value.
        """
        by_name = self._snapshot.matcher.by_name
        rule = by_name.get(name)
        if rule is None:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            if close:
                hint = f"; did you mean {close[0]!r}?"
            elif by_name:
                hint = f"; named rules: {', '.join(sorted(by_name)[:10])}"
            else:
                hint = "; no rule has a name (add name: to a rule)"
            raise UrlBuildError(f"no rule named {name!r}{hint}")
        pattern = rule.pattern
        if pattern is None:
            path = quote(rule.path, safe="/!$&'()*+,;=:@-._~")
            used: tuple[str, ...] = ()
        else:
            used = pattern.variable_names
            # None is no value, as for Werkzeug's build (never the text 'None' in a path).
            missing = [n for n in used if values.get(n) is None]
            if missing:
                raise UrlBuildError(
                    f"url_for({name!r}) needs a value for {', '.join(map(repr, missing))} "
                    f"(the pattern is {rule.path!r})"
                )
            try:
                path = pattern.build(values)
            except (ValueError, TypeError) as exc:
                bad = next(
                    (v for v in pattern.variables if _bad_value(v.converter, values[v.name])), None
                )
                which = f" for {bad.name!r} ({bad.spec})" if bad else ""
                raise UrlBuildError(
                    f"url_for({name!r}): bad value{which}: {exc} (the pattern is {rule.path!r})"
                ) from None
            decoded = unquote(path, errors="surrogateescape")
            if ("/." in decoded or "//" in decoded) and normal_path(decoded) is not None:
                # A request for it would be sent to its normal form, never reach this rule.
                raise UrlBuildError(
                    f"url_for({name!r}): the values make the path {path!r}, with a '.' or '..' "
                    "segment or an empty one; a request for it is redirected to its normal "
                    f"form and never reaches this rule (the pattern is {rule.path!r})"
                )
        # As Flask does: values the pattern does not use go to the query string, None ones
        # nowhere, and a list (tuple, set) as the same parameter repeated: v=[1, 2] is v=1&v=2.
        extra = [
            (k, item)
            for k, v in values.items()
            if k not in used
            for item in (v if isinstance(v, list | tuple | set | frozenset) else (v,))
            if item is not None
        ]
        if extra:
            try:
                path += "?" + "&".join(
                    f"{quote(str(k), safe='')}={quote(str(v), safe='', errors='surrogateescape')}"
                    for k, v in extra
                )
            except UnicodeEncodeError:  # a lone surrogate: say so as url_for's own error
                raise UrlBuildError(
                    f"url_for({name!r}): a query value cannot be written as UTF-8: {dict(extra)!r}"
                ) from None
        return path

    def names(self) -> Iterable[str]:
        """The names of the named rules."""
        return self._snapshot.matcher.by_name.keys()


def _bad_value(converter: BaseConverter, value: Any) -> bool:
    try:
        converter.to_url(value)
    except (ValueError, TypeError):
        return True
    return False


def _split_guards(
    guards: Mapping[str, GuardCheck | Mapping[str, Any]] | None,
) -> tuple[dict[str, GuardCheck], dict[str, Any] | None]:
    """The Python checks, and the guards declared as a file declares them."""
    checks: dict[str, GuardCheck] = {}
    declared: dict[str, Any] = {}
    for name, guard in (guards or {}).items():
        if isinstance(guard, Mapping):
            declared[name] = guard
        else:
            checks[name] = guard
    return checks, declared or None


def _other_slash(snapshot: _Snapshot, path: str, query: str, stage: Stage) -> Decision:
    """A path no rule matched: a 308 to it with the other trailing slash (``/a`` to ``/a/`` or
    the reverse), when a rule with ``trailing_slash: redirect`` owns that form, as Werkzeug's
    strict slashes answer; else no match."""
    if path == "/":
        return NO_MATCH
    other = path[:-1] if path.endswith("/") else path + "/"
    hit = snapshot.matcher.first(other)
    # A hit in the compiled store (an int) is a literal rule with the default trailing slash.
    owner = None if hit is None else hit[0]
    if not isinstance(owner, Rule) or not owner.options.slash_redirect:
        return NO_MATCH
    if stage == "before" and owner.options.only_if_missing:
        return NO_MATCH
    return _to_normal_form(other, query)


def _to_normal_form(path: str, query: str) -> Decision:
    """The answer to a request whose path has dot segments or leading slashes (see
    :func:`~waypost.rules.request.normal_path`): a 308 to its normal form, which keeps the
    method and body, so that what the rules check is what the app would be given."""
    location = merge_query(quote_path(path), query)  # the query encoded as any redirect's is
    return make_decision("redirect", 308, location, None, None, (), None, None)


#: resolve()'s Python road, the reference (Engine.resolve asks the compiled road before it).
_python_resolve = Engine.resolve

if FastMethod is not None:
    # The compiled road asked first, in C, then this module's resolve() (see _fastpath.c):
    # a Python frame less on every request it answers.
    Engine.resolve = FastMethod(  # type: ignore[method-assign]
        Engine.resolve, Engine, _Snapshot, Engine.__dict__["_snapshot"], _Snapshot.__dict__["fast"]
    )
    # The same for the server's counting call: the counting road asked first, in C (a request
    # it does not answer asks it once more in resolve_counted(), on the Python road's time).
    Engine.resolve_counted = FastMethod(  # type: ignore[method-assign]
        Engine.resolve_counted,
        Engine,
        _Snapshot,
        Engine.__dict__["_snapshot"],
        _Snapshot.__dict__["counted"],
        counting=True,
    )
