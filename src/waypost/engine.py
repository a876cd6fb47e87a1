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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, unquote_plus

from waypost.exceptions import RuleError, RulesError, UrlBuildError
from waypost.matching import Matcher, compile_matcher
from waypost.rules.converters import BaseConverter, merge_converters
from waypost.rules.load import read_rules, rules_from_mappings
from waypost.rules.model import Pass, Redirect, Respond, Rewrite, Rule, RuleSet
from waypost.rules.request import HeaderInput, Request, split_url
from waypost.rules.safety import location_problem
from waypost.rules.target import Target

__all__ = ["Decision", "Engine", "Step", "Trace"]

ActionName = Literal["redirect", "rewrite", "respond", "pass"]
# Re-quoting a raw query string keeps existing escapes and reserved characters but encodes
# anything a client should not have sent raw (spaces, control characters, non-ASCII).
_QUERY_SAFE = "=&+%/:@!$'()*,;?-._~"
_REFUSED_BODY = "Bad Request: the redirect target built from this request is not allowed.\n"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a request.

    - ``action``: ``"redirect"``, ``"rewrite"``, ``"respond"`` or ``"pass"``;
    - ``status``: the HTTP status for redirect and respond (None otherwise);
    - ``location``: the Location of a redirect (a path or an absolute URL, percent-encoded);
    - ``path`` / ``query``: the new path (percent-encoded) and query string of a rewrite;
    - ``headers``: response headers (respond) or request headers to set (rewrite);
    - ``body``: the body of a respond decision;
    - ``rule``: the rule that decided (its ``name`` and ``source``), None when no rule applied;
    - ``vary``: the request headers the decision depended on (Accept, Cookie, ...).
    """

    action: ActionName
    status: int | None = None
    location: str | None = None
    path: str | None = None
    query: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    rule: Rule | None = None
    #: Request headers the decision depended on (for a ``Vary`` response header).
    vary: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``rule`` is ``{"name": ..., "source": "file:line"}`` or None."""
        return {
            "action": self.action,
            "status": self.status,
            "location": self.location,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "body": self.body,
            "rule": None if self.rule is None else {"name": self.rule.name, "source": self.rule.source},
            "vary": list(self.vary),
        }


NO_MATCH = Decision("pass")


@dataclass(frozen=True, slots=True)
class Step:
    """One candidate the engine looked at: the rule, the values it captured, and the outcome."""

    rule: Rule
    values: Mapping[str, Any]
    outcome: Literal["applied", "skipped", "refused"]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Trace:
    """The answer of :meth:`Engine.explain`: the decision and every candidate tried."""

    method: str
    path: str
    decision: Decision
    steps: tuple[Step, ...] = field(default_factory=tuple)
    rule_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "path": self.path,
            "decision": self.decision.to_dict(),
            "rule_count": self.rule_count,
            "steps": [
                {
                    "rule": {"name": s.rule.name, "source": s.rule.source, "from": s.rule.path},
                    "values": {k: str(v) for k, v in s.values.items()},
                    "outcome": s.outcome,
                    "reason": s.reason,
                }
                for s in self.steps
            ],
        }

    def render(self) -> str:
        """The trace as text for people."""
        lines = [f"{self.method} {self.path}  ({self.rule_count} rules loaded)"]
        if not self.steps:
            lines.append("  no rule matches this path")
        for number, step in enumerate(self.steps, start=1):
            values = ", ".join(f"{k}={v!r}" for k, v in step.values.items())
            head = f"  {number}. {step.rule.source}  from {step.rule.path!r}"
            if step.rule.name:
                head += f"  [{step.rule.name}]"
            if values:
                head += f"  ({values})"
            lines.append(head)
            lines.append(f"     {step.outcome}" + (f": {step.reason}" if step.reason else ""))
        lines.append("=> " + _describe(self.decision))
        return "\n".join(lines)


def _describe(decision: Decision) -> str:
    if decision.action == "redirect":
        return f"redirect {decision.status} to {decision.location}"
    if decision.action == "rewrite":
        query = f"?{decision.query}" if decision.query else ""
        return f"rewrite to {decision.path}{query}"
    if decision.action == "respond":
        return f"respond {decision.status}"
    return "pass (no rule applies; the request goes on unchanged)"


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

    __slots__ = ("allowed_hosts", "matcher", "ruleset")

    def __init__(self, ruleset: RuleSet, matcher: Matcher) -> None:
        self.ruleset = ruleset
        self.matcher = matcher
        self.allowed_hosts = ruleset.allowed_hosts


def _compile(ruleset: RuleSet, errors: list[RuleError]) -> _Snapshot:
    matcher = compile_matcher(ruleset.rules)
    errors = [*errors, *matcher.duplicates]
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0, e.col or 0))
        raise RulesError(errors, file=ruleset.source)
    return _Snapshot(ruleset, matcher)


class Engine:
    """Resolve requests against a rule set.

    ``rules`` is a list of mappings in the rules file's structure (the entries under ``rules:``),
    with optional ``defaults`` and ``allowed_hosts``; or use :meth:`from_file`. Raises
    :class:`~waypost.exceptions.RulesError` listing every problem.
    """

    __slots__ = ("_converters", "_snapshot")

    def __init__(
        self,
        rules: Sequence[Mapping[str, Any]] | RuleSet = (),
        *,
        defaults: Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        converters: Mapping[str, type[BaseConverter]] | None = None,
    ) -> None:
        self._converters = merge_converters(converters)
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
            rules, defaults=defaults, allowed_hosts=allowed_hosts, converters=self._converters
        )
        return _compile(ruleset, errors)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        converters: Mapping[str, type[BaseConverter]] | None = None,
    ) -> Engine:
        """An engine for a rules file (.yaml, .yml, .toml, .json or .csv)."""
        engine = cls.__new__(cls)
        engine._converters = merge_converters(converters)
        engine._snapshot = engine._load_file(path)
        return engine

    def _load_file(self, path: str | Path) -> _Snapshot:
        ruleset, errors = read_rules(path, converters=self._converters)
        return _compile(ruleset, errors)

    # -- state ------------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The current rules, in file order."""
        return self._snapshot.ruleset.rules

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
        self._snapshot = self._build(rules, defaults, allowed_hosts)

    def reload(self, path: str | Path) -> None:
        """Load ``path`` and swap it in atomically; on any error the current rules stay."""
        self._snapshot = self._load_file(path)

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
        host, raw_path, query = split_url(url)
        path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
        hit = snapshot.matcher.lookup(path)
        if hit is not None and not isinstance(hit, tuple) and hit.conditions.empty:
            # The common case: one unconditional exact rule, no request parsing needed.
            return self._apply(hit, {}, query, snapshot, None)
        request = Request(method, raw_path, query, headers, host=host, client_ip=client_ip, now=now, path=path)
        return self._decide(request, snapshot, None)

    def resolve_request(self, request: Request) -> Decision:
        """Like :meth:`resolve`, for a :class:`~waypost.rules.request.Request` built by middleware."""
        return self._decide(request, self._snapshot, None)

    def explain(
        self,
        method: str,
        url: str,
        headers: HeaderInput = None,
        client_ip: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Trace:
        """The decision for this request and the trace of every candidate tried."""
        snapshot = self._snapshot
        host, raw_path, query = split_url(url)
        request = Request(method, raw_path, query, headers, host=host, client_ip=client_ip, now=now)
        steps: list[Step] = []
        decision = self._decide(request, snapshot, steps)
        return Trace(request.method, request.path, decision, tuple(steps), snapshot.matcher.rule_count)

    def _decide(self, request: Request, snapshot: _Snapshot, steps: list[Step] | None) -> Decision:
        vary: list[str] = []
        for rule, values in snapshot.matcher.candidates(request.path):
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
        action = rule.action
        if isinstance(action, Redirect):
            target = action.target
            if isinstance(target, str):
                location = target
            else:
                built = self._fill(rule, target, values, snapshot, steps)
                if isinstance(built, Decision):
                    return built
                location = built
            if query and rule.options.query == "keep":
                location = _merge_query(location, query)
            decision = Decision("redirect", action.status, location=location, rule=rule)
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
            decision = Decision(
                "rewrite", None, path=new_path, query=new_query, headers=action.set_headers, rule=rule
            )
        elif isinstance(action, Respond):
            decision = Decision(
                "respond", action.status, headers=action.headers, body=action.body, rule=rule
            )
        else:
            decision = Decision("pass", rule=rule)
        if steps is not None:
            steps.append(Step(rule, values, "applied"))
        return decision

    def _fill(
        self,
        rule: Rule,
        target: Target,
        values: Mapping[str, Any],
        snapshot: _Snapshot,
        steps: list[Step] | None,
    ) -> str | Decision:
        pattern = rule.pattern
        converters = {v.name: v.converter for v in pattern.variables} if pattern else {}
        try:
            location = target.build(values, converters)
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
        extra = [(k, v) for k, v in values.items() if k not in used]
        if extra:
            path += "?" + "&".join(
                f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in extra
            )
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

