"""How a rule is applied: a plan made once per rule, and one way to apply it.

:func:`plan_for` reads a rule once (its action, target, options, whether it has conditions) and
makes a :class:`Plan`; :meth:`Plan.apply` turns the rule's values and the request's query into the
:class:`~waypost.decision.Decision`. Every decision the engine makes for a rule goes through a
plan's ``apply``: the first candidate of the fast road, every candidate of the full search, and
``explain()`` (which passes ``steps`` to be told what happened).

What a redirect or rewrite target becomes is a :class:`Fill`: fixed text, the general build with
its safety check (:class:`Checked`), or the host app's reverse routing (:class:`Route`). The common
case of a pattern's target, one string format filled from the values in order, is held by the plan
itself (:class:`ToTarget`), with the general build as its fallback. When a filled-in target would
leave the site (see :mod:`waypost.rules.safety`) the decision is ``respond`` 400 and the trace
says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote, unquote, unquote_plus

from waypost.decision import Decision, Step, make_decision
from waypost.rules.model import Redirect, Respond, Rewrite, Rule, RuleMeta
from waypost.rules.safety import location_problem
from waypost.rules.target import IndexedPlan, RouteTarget, Target, fill_indexed, parse_target

__all__ = ["Plan", "Site", "Stage", "merge_query", "plan_for"]

Stage = Literal["all", "before", "missing"]
RouteResolver = Callable[[str, Mapping[str, str]], str]
Steps = list[Step] | None
#: A rule's values: in the order of its pattern's variables (from the compiled index), or by name
#: (from the trie's full search, which names them already).
Values = Sequence[Any] | Mapping[str, Any]

# Re-quoting a raw query string keeps existing escapes and reserved characters but encodes
# anything a client should not have sent raw (spaces, control characters, non-ASCII).
_QUERY_SAFE = "=&+%/:@!$'()*,;?-._~"
_REFUSED_BODY = "Bad Request: the redirect target built from this request is not allowed.\n"
_TEXT_PLAIN = (("Content-Type", "text/plain; charset=utf-8"),)
_SAME_SITE = parse_target("/")
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.\.?(?:[/\\]|$)")


def merge_query(location: str, request_query: str) -> str:
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


class Site:
    """What applying a rule needs beyond the rule: the rule set's allowed hosts, and the host
    app's reverse routing for ``to: {route: ...}`` targets (None outside a middleware)."""

    __slots__ = ("allowed_hosts", "routes")

    def __init__(self, allowed_hosts: tuple[str, ...], routes: RouteResolver | None) -> None:
        self.allowed_hosts = allowed_hosts
        self.routes = routes


def _named(rule: Rule, values: Values) -> Mapping[str, Any]:
    if isinstance(values, Mapping):
        return values
    pattern = rule.pattern
    return dict(zip(pattern.converters, values, strict=True)) if pattern else {}


def _refused(
    rule: Rule,
    values: Values,
    steps: Steps,
    reason: str,
    status: int = 400,
    body: str = _REFUSED_BODY,
) -> Decision:
    """The decision when ``rule``'s target cannot be sent (``reason`` goes to the trace)."""
    if steps is not None:
        steps.append(Step(rule, _named(rule, values), "refused", reason))
    return make_decision("respond", status, None, None, None, _TEXT_PLAIN, body, rule)


# -- targets --------------------------------------------------------------------------------


class Fill:
    """What a redirect or rewrite target becomes for a request: :meth:`build` gives the text, or
    the refusal decision when the filled-in target is not allowed."""

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def build(self, rule: Rule, values: Values, site: Site, steps: Steps) -> str | Decision:
        raise NotImplementedError


class Text(Fill):
    """A target without placeholders (``target`` is its text)."""

    __slots__ = ()
    target: str

    def build(self, rule: Rule, values: Values, site: Site, steps: Steps) -> str | Decision:
        return self.target


class Checked(Fill):
    """A target filled in the general way (:meth:`Target.build`); unless its scheme and host are
    fixed, the result is checked (:func:`~waypost.rules.safety.location_problem`)."""

    __slots__ = ()
    target: Target

    def build(self, rule: Rule, values: Values, site: Site, steps: Steps) -> str | Decision:
        target = self.target
        pattern = rule.pattern
        try:
            location = target.build(_named(rule, values), pattern.converters if pattern else {})
            if target.fixed_origin:
                return location
            problem = location_problem(location, target, site.allowed_hosts)
        except (ValueError, TypeError, KeyError) as exc:
            problem = f"the target could not be built: {exc}"
        if problem is None:
            return location
        return _refused(rule, values, steps, f"unsafe target: {problem}")


class Route(Fill):
    """A ``to: {route: ...}`` target: built by the host app's reverse routing, then checked."""

    __slots__ = ()
    target: RouteTarget

    def build(self, rule: Rule, values: Values, site: Site, steps: Steps) -> str | Decision:
        target = self.target
        resolver = site.routes
        if resolver is None:
            problem = "route targets are resolved by the host app; use the middleware"
            return _refused(rule, values, steps, problem, 500, f"{problem}\n")
        try:
            location = resolver(target.route, target.fill(_named(rule, values)))
            refusal = location_problem(location, _SAME_SITE, ())
        except Exception as exc:  # the host app's router may raise anything
            refusal = f"the app could not build route {target.route!r}: {exc}"
        return location if refusal is None else _refused(rule, values, steps, refusal)


def fill_for(target: str | Target | RouteTarget) -> Fill:
    """The :class:`Fill` of a target."""
    if isinstance(target, str):
        return Text(target)
    if isinstance(target, RouteTarget):
        return Route(target)
    return Checked(target)


def prepared_format(rule: Rule, target: str | Target | RouteTarget) -> IndexedPlan | None:
    """``rule``'s target as one string format filled from the values in order
    (:meth:`Target.indexed_plan`), or None when it needs the general build: a target whose scheme
    or host a value could change, a placeholder that is no variable of the pattern, a custom
    converter."""
    pattern = rule.pattern
    if pattern is None or not isinstance(target, Target) or not target.fixed_origin:
        return None
    return target.indexed_plan(tuple(pattern.converters), pattern.converters)


# -- plans ----------------------------------------------------------------------------------


# What Plan.alone holds: one shared set each, so that a plan's set is no object of its own to
# read (with a million rules, a likely miss to memory on every request).
_NO_STAGE: frozenset[Stage] = frozenset()
_BEFORE_OR_ALL: frozenset[Stage] = frozenset(("all", "before"))
_MISSING_OR_ALL: frozenset[Stage] = frozenset(("all", "missing"))
_ALL: frozenset[Stage] = frozenset(("all",))


class Plan:
    """How one rule is applied. ``conditional``: the rule has conditions (the engine checks them
    before :meth:`apply`); ``only_if_missing``: the rule waits for the app's 404; ``alone``: the
    stages in which the rule, as the first candidate, decides without a look at the others (it
    has no conditions and belongs to the stage). An attribute, not a method: it is read once per
    request, and a set lookup costs less than a call."""

    __slots__ = ("alone", "conditional", "only_if_missing")

    def __init__(self, rule: Rule) -> None:
        self.conditional = not rule.conditions.empty
        self.only_if_missing = rule.options.only_if_missing
        self.alone = (
            _NO_STAGE
            if self.conditional
            else (_MISSING_OR_ALL if self.only_if_missing else _BEFORE_OR_ALL)
        )

    def apply(self, rule: Any, values: Values, query: str, site: Site, steps: Steps) -> Decision:
        """The decision of ``rule`` (its conditions hold) for its ``values`` and the request's
        raw ``query``; ``steps``, when given, is told what happened."""
        raise NotImplementedError


class ToTarget(Plan):
    """A redirect (``redirect``: to ``status``) or a rewrite (what the app sees changes, and
    ``headers`` are set on the request): its target built from the values, with the request's
    query when the rule keeps it.

    The two commonest targets are kept in the plan itself rather than in its :class:`Fill`: fixed
    ``text``, or a prepared ``format`` (see :func:`prepared_format`), whose general build
    ``fill`` is then the fallback for a value that needs quoting. With a million rules every
    object a request reads is a likely miss to memory, and a pattern hit read the plan and its
    fill (a pattern hit at 1,000,000 rules took 1.15x as long,
    benchmarks/bench_engine.py --baseline-src).
    """

    __slots__ = (
        "fill",
        "format",
        "headers",
        "keep_query",
        "paths",
        "pick",
        "redirect",
        "status",
        "text",
        "texts",
    )

    def __init__(self, rule: Rule, action: Redirect | Rewrite, prepared: bool) -> None:
        super().__init__(rule)
        target = action.target
        self.fill = fill_for(target)
        self.text = target if isinstance(target, str) else None
        indexed = prepared_format(rule, target) if prepared else None
        self.format: str | None = None
        if indexed is not None:
            self.format, self.pick, self.texts, self.paths = indexed
        self.keep_query = rule.options.query == "keep"
        self.redirect = isinstance(action, Redirect)
        self.status = action.status if isinstance(action, Redirect) else None
        self.headers = action.set_headers if isinstance(action, Rewrite) else ()

    def apply(self, rule: Any, values: Values, query: str, site: Site, steps: Steps) -> Decision:
        location = self.text
        if location is None:
            text_format = self.format
            if text_format is not None:
                # Prepared plans get their values in order, from the compiled index.
                ordered: Sequence[Any] = values  # type: ignore[assignment]
                location = fill_indexed(text_format, self.pick, self.texts, self.paths, ordered)
            if location is None:
                built = self.fill.build(rule, values, site, steps)
                if isinstance(built, Decision):  # refused
                    return built
                location = built
        if query and self.keep_query:
            location = merge_query(location, query)
        if steps is not None:
            steps.append(Step(rule, _named(rule, values), "applied"))
        if self.redirect:
            return make_decision("redirect", self.status, location, None, None, (), None, rule)
        path, _, new_query = location.partition("?")
        return make_decision("rewrite", None, None, path, new_query, self.headers, None, rule)


class ProxyTo(ToTarget):
    """A rewrite to an absolute URL: the request is proxied to that origin. Its scheme and host
    are literal text (the loader refuses a host filled from the request), so only the path and
    query are filled in; the decision's ``location`` is the whole URL, ``path`` and ``query``
    its parts. A plan of its own, so that ordinary rewrites pay nothing for it (its ``apply``
    repeats ToTarget's rather than adding a call to the common road)."""

    __slots__ = ()

    def apply(self, rule: Any, values: Values, query: str, site: Site, steps: Steps) -> Decision:
        url = self.text
        if url is None:
            if self.format is not None:
                ordered: Sequence[Any] = values  # type: ignore[assignment]
                url = fill_indexed(self.format, self.pick, self.texts, self.paths, ordered)
            if url is None:
                built = self.fill.build(rule, values, site, steps)
                if isinstance(built, Decision):  # refused
                    return built
                url = built
        if query and self.keep_query:
            url = merge_query(url, query)
        url, _, new_query = url.partition("?")
        # 'https://host/path': the path starts at the first '/' after the scheme's '//'.
        at = url.find("/", url.index("//") + 2)
        path = url[at:] if at >= 0 else "/"
        if "." in path and _DOT_SEGMENT.search(unquote(path)):
            # '/api/<path:rest>' to 'https://api.example.com/v1/{rest}' must not reach
            # 'https://api.example.com/admin' by way of '/api/../admin' (or '%2e%2e'): the origin
            # would resolve the dot segment (RFC 3986 5.2.4) outside the target's path.
            reason = f"the proxied path {path!r} has a dot segment ('.' or '..')"
            return _refused(rule, values, steps, reason)
        if steps is not None:
            steps.append(Step(rule, _named(rule, values), "applied"))
        location = f"{url}{'' if at >= 0 else '/'}{'?' if new_query else ''}{new_query}"
        return make_decision("proxy", None, location, path, new_query, self.headers, None, rule)


class RespondWith(Plan):
    __slots__ = ("body", "headers", "status")

    def __init__(self, rule: Rule, action: Respond) -> None:
        super().__init__(rule)
        self.status = action.status
        self.body = action.body
        self.headers = action.headers

    def apply(self, rule: Any, values: Values, query: str, site: Site, steps: Steps) -> Decision:
        if steps is not None:
            steps.append(Step(rule, _named(rule, values), "applied"))
        return make_decision(
            "respond", self.status, None, None, None, self.headers, self.body, rule
        )


class PassOn(Plan):
    __slots__ = ()

    def apply(self, rule: Any, values: Values, query: str, site: Site, steps: Steps) -> Decision:
        if steps is not None:
            steps.append(Step(rule, _named(rule, values), "applied"))
        return make_decision("pass", None, None, None, None, (), None, rule)


class StoredRedirect(Plan):
    """A literal redirect found in the compiled store: ``rule`` is its index in ``rules`` and
    ``values`` the store's ``(meta, index, target)``. The rule object is not read (with a million
    rules it is a miss to memory): the decision looks it up when its ``rule`` is first read."""

    __slots__ = ("rules",)

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.conditional = False
        self.only_if_missing = False
        # Whether the rule waits for a 404 is in its meta: outside the standalone server's
        # stage 'all' the engine asks the full search, which reads it (stored rules rarely wait).
        self.alone = _ALL
        self.rules = rules

    def apply(self, rule: Any, values: Values, query: str, site: Site, steps: Steps) -> Decision:
        meta: RuleMeta
        index: int
        target: str
        meta, index, target = values  # type: ignore[assignment]
        if query and meta.options.query == "keep":
            target = merge_query(target, query)
        return make_decision(
            "redirect", meta.status, target, None, None, (), None, None, (self.rules, index, meta)
        )


def plan_for(rule: Rule, *, prepared: bool = True) -> Plan:
    """The :class:`Plan` of ``rule``.

    ``prepared``: the values will be those of the rule's own converters, in their order (what the
    compiled index guarantees), so the target may be filled by a prepared format
    (:func:`prepared_format`). The trie's candidates may carry values another rule's converters made
    (rules of one shape share an edge), which only the general build writes right.
    """
    action = rule.action
    if isinstance(action, Rewrite) and action.proxy:
        return ProxyTo(rule, action, prepared)
    if isinstance(action, Redirect | Rewrite):
        return ToTarget(rule, action, prepared)
    if isinstance(action, Respond):
        return RespondWith(rule, action)
    return PassOn(rule)
