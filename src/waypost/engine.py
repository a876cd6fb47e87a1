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
import gc
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, unquote_plus

from waypost.decision import (
    NO_MATCH,
    Decision,
    Step,
    Trace,
    new_decision,
    new_packed_redirect,
    new_redirect,
)
from waypost.exceptions import RuleError, RulesError, UrlBuildError
from waypost.matching import Matcher, compile_matcher
from waypost.rules.converters import (
    AnyConverter,
    BaseConverter,
    FloatConverter,
    IntConverter,
    PathConverter,
    UUIDConverter,
    merge_converters,
)
from waypost.rules.load import read_rules, rules_from_mappings
from waypost.rules.model import Redirect, Respond, Rewrite, Rule, RuleSet
from waypost.rules.request import HeaderInput, Request, split_url
from waypost.rules.safety import location_problem
from waypost.rules.target import RouteTarget, Target, fill_indexed, parse_target

__all__ = ["Decision", "Engine", "Step", "Trace"]

Stage = Literal["all", "before", "missing"]
# Re-quoting a raw query string keeps existing escapes and reserved characters but encodes
# anything a client should not have sent raw (spaces, control characters, non-ASCII).
_QUERY_SAFE = "=&+%/:@!$'()*,;?-._~"
_REFUSED_BODY = "Bad Request: the redirect target built from this request is not allowed.\n"


def _merge_query(location: str, request_query: str) -> str:
    """``location`` with the request's query carried over; the target's own params win."""
    if not request_query:
        return location
    try:
        # surrogateescape: bytes decoded with surrogateescape go back as the same %XX escapes.
        extra = quote(request_query, safe=_QUERY_SAFE, errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no encoding can write: never raise on a request
        extra = quote(request_query, safe=_QUERY_SAFE, errors="replace")
    hash_at = location.find("#")
    fragment = ""
    if hash_at >= 0:
        location, fragment = location[:hash_at], location[hash_at:]
    base, sep, own = location.partition("?")
    if not sep or not own:
        return f"{base}?{extra}{fragment}"
    own_keys = {unquote_plus(pair.partition("=")[0]) for pair in own.split("&") if pair}
    kept = [
        pair
        for pair in extra.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in own_keys
    ]
    if not kept:
        return f"{location}{fragment}"
    return f"{base}?{own}&{'&'.join(kept)}{fragment}"


class _Snapshot:
    """One rule set and its matcher; swapped as a whole."""

    __slots__ = ("allowed_hosts", "has_fallbacks", "matcher", "ruleset")

    def __init__(self, ruleset: RuleSet, matcher: Matcher) -> None:
        self.ruleset = ruleset
        self.matcher = matcher
        self.allowed_hosts = ruleset.allowed_hosts
        self.has_fallbacks = any(rule.options.only_if_missing for rule in ruleset.rules)


RouteResolver = Callable[[str, Mapping[str, str]], str]
_SAME_SITE = parse_target("/")


def _sample(converter: BaseConverter) -> Any:
    """A value the converter accepts, to try route targets at start-up."""
    example = getattr(converter, "example", None)
    if callable(example):
        return example()
    if isinstance(converter, IntConverter):
        return converter.min if converter.min is not None else 1
    if isinstance(converter, FloatConverter):
        return 1.5
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=1)
    if isinstance(converter, AnyConverter):
        return converter.items[0]
    if isinstance(converter, PathConverter):
        return "a/b"
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


def _plan(rule: Rule) -> tuple[Any, ...] | None:
    """What :func:`_apply_plan` needs to apply the pattern rule ``rule``, in one flat tuple.

    None for the rules left to :meth:`Engine._apply`: rules with conditions, route targets, and
    targets needing the per-request safety check (see ``Target.fixed_origin``). One tuple, not
    a tree of objects: with a million rules each object a request reads is a likely cache miss.
    """
    pattern = rule.pattern
    if pattern is None or not rule.conditions.empty:
        return None
    action = rule.action
    keep_query = rule.options.query == "keep"
    if isinstance(action, Redirect | Rewrite):
        target = action.target
        fill: tuple[Any, ...]
        if isinstance(target, str):
            fill = (target, None, (), ())
        elif isinstance(target, Target) and target.fixed_origin:
            indexed = target.indexed_plan(tuple(pattern.converters), pattern.converters)
            if indexed is None:
                return None
            fill = tuple(indexed)
        else:
            return None
        if isinstance(action, Redirect):
            return ("redirect", action.status, keep_query, *fill, ())
        return ("rewrite", None, keep_query, *fill, action.set_headers)
    if isinstance(action, Respond):
        return ("respond", action.status, action.body, action.headers)
    return ("pass",)


def _apply_plan(
    plan: tuple[Any, ...], rule: Rule, values: tuple[Any, ...], query: str
) -> Decision | None:
    """What :meth:`Engine._apply` decides for ``rule`` (made into ``plan`` by :func:`_plan`).

    None when a value needs the general way of building the target (then call ``_apply()``).
    """
    action = plan[0]
    if action == "redirect" or action == "rewrite":
        _, status, keep_query, text, pick, texts, paths, headers = plan
        built = text if pick is None else fill_indexed(text, pick, texts, paths, values)
        if built is None:
            return None
        if query and keep_query:
            built = _merge_query(built, query)
        if action == "redirect":
            return new_redirect(status, built, rule)
        new_path, _, new_query = built.partition("?")
        return new_decision(
            "rewrite", None, path=new_path, query=new_query, headers=headers, rule=rule
        )
    if action == "respond":
        return new_decision("respond", plan[1], headers=plan[3], body=plan[2], rule=rule)
    return new_decision("pass", rule=rule)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector off while a rule set is built.

    A load makes hundreds of thousands of objects and no reference cycles, so every collection
    it triggers walks the growing heap for nothing: with it off, a 10,000-rule YAML file loads
    in half the time (and a hot reload holds the GIL, which the serving thread wants, that much
    less).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _compile(ruleset: RuleSet, errors: list[RuleError]) -> _Snapshot:
    matcher = compile_matcher(ruleset.rules, payload=_plan)
    errors = [*errors, *matcher.duplicates]
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0, e.col or 0))
        raise RulesError(errors, file=ruleset.source)
    return _Snapshot(ruleset, matcher)


class Engine:
    """Resolve requests against a rule set.

    ``rules`` is a list of mappings in the rules file's structure (the entries under ``rules:``),
    with optional ``defaults`` and ``allowed_hosts``; or use :meth:`from_file`. Raises
    :class:`~waypost.exceptions.RulesError` listing every problem. ``pack_rules=False`` keeps
    every rule a plain Rule, in this load and in every reload (no packed literal redirects).
    """

    __slots__ = ("_converters", "_pack_rules", "_routes", "_snapshot")

    def __init__(
        self,
        rules: Sequence[Mapping[str, Any]] | RuleSet = (),
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        converters: Mapping[str, type[BaseConverter]] | None = None,
        pack_rules: bool = True,
    ) -> None:
        self._converters = merge_converters(converters)
        self._pack_rules = pack_rules
        self._routes: RouteResolver | None = None
        self._snapshot = self._build(rules, defaults, allowed_hosts)

    def _build(
        self,
        rules: Sequence[Mapping[str, Any]] | RuleSet,
        defaults: Mapping[str, Any] | None,
        allowed_hosts: Sequence[str],
    ) -> _Snapshot:
        if isinstance(rules, RuleSet):
            return _compile(rules, [])
        ruleset, errors = rules_from_mappings(
            rules,
            defaults=defaults,
            allowed_hosts=allowed_hosts,
            converters=self._converters,
            pack_rules=self._pack_rules,
        )
        return _compile(ruleset, errors)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        converters: Mapping[str, type[BaseConverter]] | None = None,
        pack_rules: bool = True,
    ) -> Engine:
        """An engine for a rules file (.yaml, .yml, .toml, .json or .csv)."""
        engine = cls.__new__(cls)
        engine._converters = merge_converters(converters)
        engine._pack_rules = pack_rules
        engine._routes = None
        engine._snapshot = engine._load_file(path)
        return engine

    def _load_file(self, path: str | Path) -> _Snapshot:
        with _collector_paused():
            ruleset, errors = read_rules(
                path, converters=self._converters, pack_rules=self._pack_rules
            )
            return _compile(ruleset, errors)

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
    ) -> None:
        """Swap in a new rule set atomically; on any error the current rules stay in place."""
        self._install(self._build(rules, defaults, allowed_hosts))

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
        self._snapshot = snapshot

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
        self._routes = resolver

    # -- resolving --------------------------------------------------------------------------

    def resolve(
        self,
        method: str,
        url: str,
        headers: HeaderInput = None,
        client_ip: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Decision:
        """What happens to ``method url``. ``url`` is a path with query, or an absolute URL."""
        snapshot = self._snapshot
        if url[:1] == "/" and "#" not in url:  # what split_url() does with a plain path, inline
            host = None
            raw_path, _, query = url.partition("?")
        else:
            host, raw_path, query = split_url(url)
        path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
        matcher = snapshot.matcher
        prefetch = matcher.prefetch_packed
        if prefetch is not None:
            # Does the path start like an exact rule's, and if so, load the packed rule's bucket
            # while _shortcut() gets to the lookup (with a million rules it is a miss to memory).
            exact = prefetch(path, matcher.exact_prefixes)
        else:
            prefixes = matcher.exact_prefixes
            exact = prefixes is None or path.startswith(prefixes)
        decision = self._shortcut(path, query, snapshot, "all", exact)
        if decision is not None:
            return decision
        request = Request(
            method, raw_path, query, headers, host=host, client_ip=client_ip, now=now, path=path
        )
        return self._decide(request, snapshot, None)

    def resolve_request(self, request: Request, *, stage: Stage = "all") -> Decision:
        """Like :meth:`resolve`, for a :class:`~waypost.rules.request.Request` built by middleware.

        ``stage`` serves ``only_if_missing`` rules: ``"before"`` (before the app runs) skips them,
        ``"missing"`` (the app answered 404) considers only them, ``"all"`` considers every rule
        (the standalone server with no app behind it).
        """
        snapshot = self._snapshot
        decision = self._shortcut(request.path, request.query_string, snapshot, stage)
        if decision is not None:
            return decision
        return self._decide(request, snapshot, None, stage)

    def apply(
        self, rule: Rule, values: Mapping[str, Any] | None = None, query: str = ""
    ) -> Decision:
        """What ``rule`` decides for a request it matched, its conditions aside.

        ``values`` are what its pattern's converters made (none for an exact rule) and ``query``
        the request's query string. The checks use it to ask what one rule does on its own.
        """
        return self._apply(rule, values or {}, query, self._snapshot, None)

    def _shortcut(
        self,
        path: str,
        query: str,
        snapshot: _Snapshot,
        stage: Stage,
        exact: bool | None = None,
    ) -> Decision | None:
        """The decision when the first candidate decides alone (it has no conditions and belongs
        to ``stage``), or when nothing matches; None when the full search must run. ``exact``:
        whether the path starts with one of ``exact_prefixes``, when the caller knows."""
        matcher = snapshot.matcher
        hit = None
        if exact is None:
            prefixes = matcher.exact_prefixes
            exact = prefixes is None or path.startswith(prefixes)
        # The exact lookup is skipped when no exact rule starts with the path's first segment:
        # with a million rules it is a miss to memory, the dearest step of a pattern hit.
        if exact:
            table = matcher.exact_table
            if table is not None:
                key = path if len(path) < 2 or path[-1] != "/" else (path.rstrip("/") or "/")
                hit = table.get(key)
                if hit is None and (find := matcher.find_packed) is not None:
                    # A packed literal redirect (see PackedRule): unconditional, its target and
                    # meta come with it, and the rule object is left alone (new_packed_redirect);
                    # one miss to memory with a million rules.
                    packed = find(key)
                    if packed is not None:
                        meta, index, target = packed
                        options = meta.options
                        if stage == "all" or options.only_if_missing == (stage == "missing"):
                            if query and options.query == "keep":
                                target = _merge_query(target, query)
                            return new_packed_redirect(
                                meta.status, target, (matcher.rules, index, meta)
                            )
                        hit = matcher.rules[index]
            if (
                hit is not None
                and not isinstance(hit, tuple)
                and hit.conditions.empty
                and (stage == "all" or hit.options.only_if_missing == (stage == "missing"))
            ):
                # The common case: one unconditional exact rule, no request parsing needed.
                return self._apply(hit, {}, query, snapshot, None)
        if hit is None and matcher.lookup_is_complete:
            # Only patterns can match. When none does, or the first has no conditions, the
            # answer is the one _decide() would give, without building a Request.
            found = matcher.first_pattern(path)
            if found is None:
                return NO_MATCH
            rule, plan, values = found
            if stage != "all" and rule.options.only_if_missing != (stage == "missing"):
                return None
            if plan is not None:  # made by _plan(): the rule has no conditions
                decision = _apply_plan(plan, rule, values, query)
                if decision is not None:
                    return decision
            if rule.conditions.empty:
                names = rule.pattern.converters if rule.pattern else ()
                return self._apply(
                    rule, dict(zip(names, values, strict=True)), query, snapshot, None
                )
        return None

    def explain(
        self,
        method: str,
        url: str,
        headers: HeaderInput = None,
        client_ip: str | None = None,
        *,
        now: datetime | None = None,
        stage: Stage = "all",
    ) -> Trace:
        """The decision for this request and the trace of every candidate tried.

        ``stage`` is as for :meth:`resolve_request`: ``"before"`` explains what the middleware
        does before the app runs, ``"missing"`` what it does when the app answered 404.
        """
        snapshot = self._snapshot
        host, raw_path, query = split_url(url)
        request = Request(method, raw_path, query, headers, host=host, client_ip=client_ip, now=now)
        steps: list[Step] = []
        decision = self._decide(request, snapshot, steps, stage)
        return Trace(
            request.method, request.path, decision, tuple(steps), snapshot.matcher.rule_count
        )

    def _decide(
        self,
        request: Request,
        snapshot: _Snapshot,
        steps: list[Step] | None,
        stage: Stage = "all",
    ) -> Decision:
        vary: list[str] = []
        for rule, values in snapshot.matcher.candidates(request.path):
            if stage != "all" and rule.options.only_if_missing != (stage == "missing"):
                if steps is not None:
                    reason = (
                        "only when the app answers 404"
                        if stage == "before"
                        else "not a 404 fallback"
                    )
                    steps.append(Step(rule, values, "skipped", reason))
                continue
            if not rule.conditions.empty:
                # The outcome now depends on what these conditions read: say so in Vary.
                vary.extend(n for n in rule.conditions.reads() if n not in vary)
                failure = rule.conditions.failure(request)
                if failure is not None:
                    if steps is not None:
                        steps.append(Step(rule, values, "skipped", f"condition failed: {failure}"))
                    continue
            decision = self._apply(rule, values, request.query_string, snapshot, steps)
            return replace(decision, vary=tuple(vary)) if vary else decision
        return Decision("pass", vary=tuple(vary)) if vary else NO_MATCH

    def _apply(
        self,
        rule: Rule,
        values: Mapping[str, Any],
        query: str,
        snapshot: _Snapshot,
        steps: list[Step] | None,
    ) -> Decision:
        action = rule._action
        if isinstance(action, str):  # a literal redirect, the bulk of a big table
            location = (
                action
                if not query or rule._meta.options.query != "keep"
                else _merge_query(action, query)
            )
            if steps is not None:
                steps.append(Step(rule, values, "applied"))
            return new_redirect(rule._meta.status, location, rule)
        if isinstance(action, Redirect):
            target = action.target
            if isinstance(target, str):
                location = target
            elif isinstance(target, RouteTarget):
                built = self._route(rule, target, values, steps)
                if isinstance(built, Decision):
                    return built
                location = built
            else:
                built = self._fill(rule, target, values, snapshot, steps)
                if isinstance(built, Decision):
                    return built
                location = built
            if query and rule.options.query == "keep":
                location = _merge_query(location, query)
            decision = new_redirect(action.status, location, rule)
        elif isinstance(action, Rewrite):
            target = action.target
            if isinstance(target, str):
                built_target = target
            else:
                built = self._fill(rule, target, values, snapshot, steps)
                if isinstance(built, Decision):
                    return built
                built_target = built
            if query and rule.options.query == "keep":
                built_target = _merge_query(built_target, query)
            new_path, _, new_query = built_target.partition("?")
            decision = new_decision(
                "rewrite",
                None,
                path=new_path,
                query=new_query,
                headers=action.set_headers,
                rule=rule,
            )
        elif isinstance(action, Respond):
            decision = new_decision(
                "respond", action.status, headers=action.headers, body=action.body, rule=rule
            )
        else:
            decision = new_decision("pass", rule=rule)
        if steps is not None:
            steps.append(Step(rule, values, "applied"))
        return decision

    def _route(
        self, rule: Rule, target: RouteTarget, values: Mapping[str, Any], steps: list[Step] | None
    ) -> str | Decision:
        resolver = self._routes
        problem: str | None
        if resolver is None:
            problem = "route targets are resolved by the host app; use the middleware"
        else:
            try:
                location = resolver(target.route, target.fill(values))
                problem = location_problem(location, _SAME_SITE, ())
            except Exception as exc:  # the host app's router may raise anything
                problem = f"the app could not build route {target.route!r}: {exc}"
            if problem is None:
                return location
        if steps is not None:
            steps.append(Step(rule, values, "refused", problem))
        return Decision(
            "respond",
            500 if resolver is None else 400,
            headers=(("Content-Type", "text/plain; charset=utf-8"),),
            body=f"{problem}\n" if resolver is None else _REFUSED_BODY,
            rule=rule,
        )

    def _fill(
        self,
        rule: Rule,
        target: Target,
        values: Mapping[str, Any],
        snapshot: _Snapshot,
        steps: list[Step] | None,
    ) -> str | Decision:
        pattern = rule.pattern
        try:
            location = target.build(values, pattern.converters if pattern else {})
            if target.fixed_origin:
                return location
            problem = location_problem(location, target, snapshot.allowed_hosts)
        except (ValueError, TypeError, KeyError) as exc:
            problem = f"the target could not be built: {exc}"
        if problem is None:
            return location
        if steps is not None:
            steps.append(Step(rule, values, "refused", f"unsafe target: {problem}"))
        return Decision(
            "respond",
            400,
            headers=(("Content-Type", "text/plain; charset=utf-8"),),
            body=_REFUSED_BODY,
            rule=rule,
        )

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
            missing = [n for n in used if n not in values]
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
        # As Flask does: values the pattern does not use go to the query string, None ones nowhere.
        extra = [(k, v) for k, v in values.items() if k not in used and v is not None]
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
