"""What the engine answers: a :class:`Decision`, and for ``explain()`` a :class:`Trace` of
:class:`Step` values.

These are plain immutable values; :mod:`waypost.engine` builds them and
:mod:`waypost.responses` turns a decision into a response. ``waypost.engine`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from waypost.rules.model import Rule, RuleMeta, RuleOptions

__all__ = [
    "NO_MATCH",
    "ActionName",
    "AuthRequest",
    "Decision",
    "Step",
    "Trace",
    "make_decision",
    "rule_options",
]

ActionName = Literal["redirect", "rewrite", "proxy", "respond", "pass", "auth"]
#: A packed rule, not read yet: ``(rules, index, meta)``, the rule being ``rules[index]``.
LazyRule = tuple[tuple[Rule, ...], int, RuleMeta]


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What an ``auth`` decision asks of the adapter: a GET to ``url`` (a ``forward_auth``
    guard's auth service) with ``headers``, within ``timeout`` seconds; its answer goes back to
    :meth:`Engine.resolve_authorized <waypost.engine.Engine.resolve_authorized>` with the
    decision.

    ``headers`` carry the client's credentials (Cookie, Authorization), so they are in no repr;
    ``passed`` and ``origin`` are the engine's own (the services' answers this request has had,
    and the guard layer that asked), not for adapters to read.
    """

    guard: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    timeout: float
    method: str = "GET"
    passed: tuple[tuple[str, Any], ...] = field(default=(), repr=False, compare=False)
    origin: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a request.

    - ``action``: ``"redirect"``, ``"rewrite"``, ``"proxy"``, ``"respond"``, ``"pass"`` or
      ``"auth"``; ``"proxy"`` is a rewrite to an absolute URL: the request goes to another
      origin; ``"auth"`` is not an answer yet: a ``forward_auth`` guard needs its auth service
      asked first (``auth`` says what to ask; ``location`` is the service's URL), and the
      adapter gives the answer to ``Engine.resolve_authorized()``, which decides. An adapter
      that cannot ask must refuse the request, never treat it as a pass;
    - ``status``: the HTTP status for redirect and respond (None otherwise);
    - ``location``: the Location of a redirect (a path or an absolute URL, percent-encoded), or
      the absolute URL (with its query) a proxied request is sent to;
    - ``path`` / ``query``: the new path (percent-encoded) and query string of a rewrite or a
      proxy (for a proxy, those of ``location``); for a guard's redirect to its login page,
      ``path`` is the ``next`` it carries (the path and query asked for, percent-encoded), so
      that a middleware can put its mount point in front of it too;
    - ``headers``: response headers (respond) or request headers to set (rewrite, proxy);
    - ``body``: the body of a respond decision;
    - ``rule``: the rule that decided (its ``name`` and ``source``), None when no rule applied;
    - ``vary``: the request headers the decision depended on (Accept, Cookie, ...);
    - ``auth``: for an ``auth`` decision, the request to make (None otherwise).
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
    auth: AuthRequest | None = None
    # A packed rule's redirect (see make_decision()): (rules, index, meta), ``rule`` being
    # rules[index], looked up when first read. Not part of the value.
    _lazy: LazyRule | None = field(default=None, init=False, repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:
        # Reached only for an unset slot: the rule of a packed redirect, not looked up yet.
        if name == "rule":
            lazy = self._lazy
            if lazy is not None:
                rule = lazy[0][lazy[1]]
                object.__setattr__(self, "rule", rule)
                return rule
        elif name == "auth":
            # make_decision() leaves it unset (one slot store less per request): None.
            return None
        raise AttributeError(f"'Decision' object has no attribute {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy or a pickle holds the rule itself, not the whole rule set.
        return (
            Decision,
            (
                self.action,
                self.status,
                self.location,
                self.path,
                self.query,
                self.headers,
                self.body,
                self.rule,
                self.vary,
                self.auth,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``rule`` is ``{"name": ..., "source": "file:line"}`` or None; an
        ``auth`` decision has ``auth``: the guard and the URL asked (never the headers sent,
        which carry the client's credentials)."""
        out: dict[str, Any] = {
            "action": self.action,
            "status": self.status,
            "location": self.location,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "body": self.body,
            "rule": None
            if self.rule is None
            else {"name": self.rule.name, "source": self.rule.source},
            "vary": list(self.vary),
        }
        auth = self.auth
        if auth is not None:
            out["auth"] = {"guard": auth.guard, "method": auth.method, "url": auth.url}
        return out

    def describe(self, *, detail: bool = True) -> str:
        """The decision for people: the action, its status and target, then (with ``detail``)
        the rule that decided (``[file:line name]``), the headers and a respond's body. The one
        wording ``waypost resolve``, ``explain`` and ``trace`` print::

            redirect 301 /new-page  [rules.yaml:9]
            rewrite /app/items?id=4  [rules.yaml:20]
            proxy https://api.example.com/v1/items?id=4  [rules.yaml:24]
            respond 410  [rules.yaml:12 gone]
            pass (no rule applies)
            auth: guard 'sso' asks GET http://127.0.0.1:4180/oauth2/auth  [rules.yaml:30]
        """
        if self.action == "redirect":
            text = f"redirect {self.status} {self.location}"
        elif self.action == "rewrite":
            text = f"rewrite {self.path}{f'?{self.query}' if self.query else ''}"
        elif self.action == "proxy":
            text = f"proxy {self.location}"
        elif self.action == "respond":
            text = f"respond {self.status}"
        elif self.action == "auth":
            auth = self.auth
            text = (
                f"auth: guard {auth.guard!r} asks {auth.method} {auth.url}"
                if auth is not None
                else "auth"
            )
        else:
            text = "pass (the app answers)" if self.rule else "pass (no rule applies)"
        if not detail:
            return text
        rule = self.rule
        if rule is not None:
            text += f"  [{rule.source}{' ' + rule.name if rule.name else ''}]"
        text += "".join(f"\n  {k}: {v}" for k, v in self.headers)
        if self.action == "respond" and self.body:
            text += f"\n\n{self.body}"
        return text


NO_MATCH = Decision("pass")


# The frozen dataclass __init__ sets each field through object.__setattr__ and costs about a
# microsecond, as much as the rest of a resolve() that hits an exact rule; one Decision is made per
# request. So make_decision() fills an instance of a plain class with the very same slots (a slot
# store is the cheapest write Python has) and then makes it a Decision: CPython allows the
# __class__ change because the two layouts are the same (same slot names; CPython lays slots out
# in sorted order, whatever order __slots__ lists). The result is an ordinary immutable Decision
# (type, equality, hash and repr are the same). benchmarks/bench_engine.py times both ways (its
# "speed tricks" table): make_decision() takes 0.28x the time of the dataclass's __init__.
class _DecisionDraft:
    __slots__ = (
        "_lazy",
        "action",
        "auth",
        "body",
        "headers",
        "location",
        "path",
        "query",
        "rule",
        "status",
        "vary",
    )
    action: ActionName
    status: int | None
    location: str | None
    path: str | None
    query: str | None
    headers: tuple[tuple[str, str], ...]
    body: str | None
    rule: Rule | None
    vary: tuple[str, ...]
    _lazy: LazyRule | None


if sorted(_DecisionDraft.__slots__) != sorted(Decision.__slots__):  # pragma: no cover
    raise RuntimeError("Decision changed its fields: change _DecisionDraft and make_decision()")


def make_decision(
    action: ActionName,
    status: int | None,
    location: str | None,
    path: str | None,
    query: str | None,
    headers: tuple[tuple[str, str], ...],
    body: str | None,
    rule: Rule | None,
    lazy: LazyRule | None = None,
    vary: tuple[str, ...] = (),
) -> Decision:
    """``Decision(action, status, location, path, query, headers, body, rule)``, five times
    faster (see above); every argument but ``lazy`` is positional and required.

    ``lazy``, for the redirect of a packed rule (:class:`~waypost.rules.model.PackedRule`), is
    ``(rules, index, meta)`` and ``rule`` None: the rule is ``rules[index]``, looked up only when
    ``rule`` is first read. With a million rules, reading the rule object is a miss to memory that
    the answer does not need (:func:`rule_options` gives what the server needs from it); the
    "speed tricks" table of benchmarks/bench_engine.py times an exact hit with and without reading
    it (0.6x). ``vary`` is the decision's ``vary``.
    """
    draft = _DecisionDraft()
    draft.action = action
    draft.status = status
    draft.location = location
    draft.path = path
    draft.query = query
    draft.headers = headers
    draft.body = body
    if lazy is None:
        draft.rule = rule
    draft.vary = vary
    draft._lazy = lazy
    draft.__class__ = Decision  # type: ignore[assignment]
    return draft  # type: ignore[return-value]


def rule_options(decision: Decision) -> RuleOptions | None:
    """The options of the rule that decided (None when no rule did), without looking up a
    packed rule."""
    lazy = decision._lazy
    if lazy is not None:
        return lazy[2].options
    rule = decision.rule
    return None if rule is None else rule.options


@dataclass(frozen=True, slots=True)
class Step:
    """One candidate the engine looked at: the rule, the values it captured, and the outcome."""

    rule: Rule
    values: Mapping[str, Any]
    #: ``guarded``: a guard the request passed; ``denied``: the guard that failed (and answered);
    #: ``asks``: a ``forward_auth`` guard whose auth service must be asked.
    outcome: Literal["applied", "skipped", "refused", "guarded", "denied", "asks"]
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
        lines.append("=> " + self.decision.describe(detail=False))
        return "\n".join(lines)
