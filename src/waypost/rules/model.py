"""The rule model: frozen values the loader builds and the matcher and engine read.

A :class:`Rule` is a pattern, an action and conditions. Actions:

- :class:`Redirect`: answer with a 301/302/303/307/308 and a Location;
- :class:`Rewrite`: let the request continue to the app with another path and query;
- :class:`Respond`: answer with a fixed status, body and headers;
- :class:`Pass`: leave the request alone (an exception carved out of broader rules).

Rules are kept small: a million of them are held in memory. A static rule has no parsed pattern
(``pattern is None``) and a literal target is a plain string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass, field, replace
from operator import attrgetter
from typing import Any, ClassVar, Literal

from waypost.rules.conditions import EMPTY_CONDITIONS, Conditions, ValuePattern
from waypost.rules.converters import AnyConverter
from waypost.rules.pattern import Pattern, quote_path
from waypost.rules.target import RouteTarget, Target

__all__ = [
    "AUDIENCE",
    "REDIRECT_STATUSES",
    "Action",
    "GuardSpec",
    "PackedRule",
    "Pass",
    "Redirect",
    "Requirement",
    "Respond",
    "Rewrite",
    "Rule",
    "RuleMeta",
    "RuleOptions",
    "RuleSet",
    "pack_position",
    "sample_paths",
]

RedirectStatus = Literal[301, 302, 303, 307, 308]
REDIRECT_STATUSES: tuple[int, ...] = (301, 302, 303, 307, 308)
QueryMode = Literal["keep", "drop"]


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """Per-rule settings that usually come from ``defaults:`` (shared between rules)."""

    query: QueryMode = "keep"
    strict_slashes: bool = False
    case_insensitive: bool = False
    #: Apply only when the app behind the middleware answers 404 (Django/Wagtail redirects style).
    only_if_missing: bool = False
    #: Cache-Control max-age for permanent redirects (None: the server's default).
    max_age: int | None = None
    #: ``trailing_slash: redirect``: strict, and the path with the other slash is sent here
    #: with a 308 (Werkzeug's strict slashes), ``/a`` to the rule's ``/a/`` or the reverse.
    slash_redirect: bool = False


DEFAULT_OPTIONS = RuleOptions()


class _Targeted:
    """The part of an action with a target (a redirect, a rewrite) that reads it back."""

    __slots__ = ()
    target: str | Target | RouteTarget

    @property
    def text(self) -> str:
        """The target as written."""
        return self.target if isinstance(self.target, str) else self.target.text


@dataclass(frozen=True, slots=True)
class Redirect(_Targeted):
    """Send the client elsewhere. ``target`` is the finished URL (str), a template, or a route
    of the host app (resolved by the middleware through the app's own reverse routing)."""

    target: str | Target | RouteTarget
    status: int = 301
    kind: ClassVar[Literal["redirect"]] = "redirect"


@dataclass(frozen=True, slots=True)
class Rewrite(_Targeted):
    """Continue to the app with another path and query; ``set_headers`` are added to the request.

    A target that is an absolute http(s) URL proxies the request to that origin instead (see
    :attr:`proxy`); its host is fixed in the rules file and listed in the rule set's
    ``proxy_hosts``.
    """

    target: str | Target
    set_headers: tuple[tuple[str, str], ...] = ()
    kind: ClassVar[Literal["rewrite"]] = "rewrite"

    @property
    def proxy(self) -> bool:
        """True when the target is an absolute URL: the request is proxied to another origin."""
        target = self.target
        if isinstance(target, str):
            return target.startswith(("http://", "https://"))
        return target.absolute


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer directly with ``status``, ``body`` and ``headers``."""

    status: int
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    kind: ClassVar[Literal["respond"]] = "respond"


@dataclass(frozen=True, slots=True)
class Pass:
    """Leave the request alone."""

    kind: ClassVar[Literal["pass"]] = "pass"


Action = Redirect | Rewrite | Respond | Pass

#: The guard kinds a rules file may name under ``guards:``; the later ones are not built yet.
GUARD_KINDS = ("api_key", "basic", "session", "jwt", "forward_auth")
LATER_GUARD_KINDS: tuple[str, ...] = ()
#: An access key's audience, as an ``api_key`` guard names it and ``waypost keys create
#: --audience`` gives it.
AUDIENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The JWT algorithms (PyJWT's names) a ``jwt`` guard with a public key (``jwks_url``,
#: ``public_key``) accepts, and those of one with a shared secret (``secret_env``). They never
#: mix: a public key used as an HMAC secret lets anyone who has it sign (algorithm confusion),
#: and ``none`` (no signature at all) is in neither.
JWT_KEY_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
JWT_SECRET_ALGORITHMS = ("HS256", "HS384", "HS512")


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """A guard declared under ``guards:``: its name, its kind and the kind's options.

    The options are checked by the loader (:mod:`waypost.rules.load`); the check itself is built
    from them by :mod:`waypost.guards`. A path in the options (``htpasswd``) is already made
    relative to the rules file's folder. ``login_url`` is where a browser is sent when the guard
    fails and the rule names none.
    """

    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    login_url: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def source(self) -> str:
        """``file:line`` where the guard was declared."""
        return f"{self.file or '<rules>'}:{self.line}" if self.line else (self.file or "<rules>")


@dataclass(frozen=True, slots=True)
class Requirement:
    """A rule's ``require:``: the guards that must all pass, and where a browser logs in.

    ``guard_only`` is True for a rule without an action: it only guards (it is not one of the
    rules that decide; see :attr:`RuleSet.guard_rules`).
    """

    guards: tuple[str, ...]
    login_url: str | None = None
    guard_only: bool = False


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """The parts of a rule that most rules share (a million CSV rows share one of these)."""

    pattern: Pattern | None = None
    conditions: Conditions = EMPTY_CONDITIONS
    name: str | None = None
    file: str | None = None
    options: RuleOptions = DEFAULT_OPTIONS
    #: For a compact literal redirect (see :class:`Rule`): its status.
    status: int = 301
    #: For a :class:`PackedRule`: the store holding its path and target (a
    #: ``waypost._plainstore.PlainStore``), shared by every packed rule of the load.
    store: Any = field(default=None, compare=False, repr=False)
    #: The rule's ``require:`` (None for a rule that guards nothing).
    requirement: Requirement | None = None
    #: False for a rule kept but switched off (``enabled: false``): no request meets it.
    enabled: bool = True


_INDEX_MASK = 0xFFFFFFFF


def pack_position(index: int, line: int | None) -> int:
    """A rule's ``index`` and ``line`` as one int: the index in the low 32 bits, ``line + 1``
    above them (0 for no line). Raises ValueError for an index outside 0..2**32-1 or a
    negative line."""
    if not 0 <= index <= _INDEX_MASK:
        raise ValueError(f"a rule's index is its position in the rule set, 0 or more: {index!r}")
    if line is None:
        return index
    if line < 0:
        raise ValueError(f"a rule's line is 0 or more: {line!r}")
    return index | (line + 1) << 32


def _from_meta(name: str, doc: str) -> Any:
    """A Rule attribute kept in its :class:`RuleMeta`: a read-only property whose getter is an
    ``attrgetter`` (C), as quick as a method that returns ``self._meta.<name>``."""
    return property(attrgetter(f"_meta.{name}"), doc=doc)


class Rule:
    """One rule. ``index`` is its position in the rule set (file order), used to break ties.

    ``path`` is the ``from`` text as written; ``pattern`` is its parsed form, None when the
    pattern has no variables (then it is matched by exact lookup). Immutable.

    A million rules are held in memory, so a rule keeps four slots and puts what rules usually
    share (pattern, conditions, name, file, options) in one :class:`RuleMeta`. A literal
    redirect (the bulk of a large CSV table) is kept compactly as its target string, its status
    in the shared meta; ``action`` still gives the :class:`Redirect`. ``index`` and ``line`` are
    kept as one int (see :func:`pack_position`): a slot and an int object fewer a rule, 46 MB
    fewer with a million rules loaded.
    """

    __slots__ = ("_action", "_meta", "_position", "path")

    path: str
    _action: Action | str
    _position: int
    _meta: RuleMeta

    def __init__(
        self,
        path: str,
        action: Action,
        index: int,
        pattern: Pattern | None = None,
        conditions: Conditions = EMPTY_CONDITIONS,
        name: str | None = None,
        file: str | None = None,
        line: int | None = None,
        options: RuleOptions = DEFAULT_OPTIONS,
        *,
        meta: RuleMeta | None = None,
    ) -> None:
        if meta is None:
            meta = RuleMeta(pattern, conditions, name, file, options)
        _set = object.__setattr__
        _set(self, "path", path)
        _set(self, "_action", action)
        _set(self, "_position", pack_position(index, line))
        _set(self, "_meta", meta)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: a Rule is immutable")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: a Rule is immutable")

    @property
    def index(self) -> int:
        """The rule's position in its rule set (file order), used to break ties."""
        return self._position & _INDEX_MASK

    @property
    def line(self) -> int | None:
        """The line of its file the rule starts on, None for rules given in Python."""
        line = self._position >> 32
        return line - 1 if line else None

    @property
    def action(self) -> Action:
        """What the rule does."""
        action = self._action
        if isinstance(action, str):
            return Redirect(action, self._meta.status)
        return action

    @property
    def literal_target(self) -> str | None:
        """The target of a literal redirect kept compactly (the loader's shortcut for a plain
        ``from,to,status``: no conditions, no requirement), without making its Redirect; None
        for any other rule."""
        action = self._action
        return action if isinstance(action, str) else None

    # What the rule keeps in its shared RuleMeta, read-only like the rest (see __setattr__).
    pattern: Pattern | None = _from_meta(
        "pattern", "The parsed pattern, None for a pattern without variables."
    )
    conditions: Conditions = _from_meta("conditions", "The parsed ``when:`` (and ``methods``).")
    name: str | None = _from_meta("name", "The rule's name, for url_for().")
    file: str | None = _from_meta("file", "The file the rule came from.")
    options: RuleOptions = _from_meta(
        "options", "query / trailing_slash / case / only_if_missing / max_age for this rule."
    )
    enabled: bool = _from_meta(
        "enabled", "False for a rule switched off (``enabled: false``): kept, never applied."
    )

    @property
    def requirement(self) -> Requirement | None:
        """The guards the rule requires (``require:``), None for most rules."""
        return self._meta.requirement

    @property
    def meta(self) -> RuleMeta:
        """The shared parts of the rule."""
        return self._meta

    def replace(self, **changes: Any) -> Rule:
        """A copy with some fields changed (like ``dataclasses.replace``)."""
        fields_now: dict[str, Any] = {
            "path": self.path,
            "action": self.action,
            "index": self.index,
            "pattern": self.pattern,
            "conditions": self.conditions,
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "options": self.options,
        }
        requirement = changes.pop("requirement", self.requirement)
        unknown = changes.keys() - fields_now.keys()
        if unknown:
            raise TypeError(f"Rule has no field {sorted(unknown)[0]!r}")
        fields_now.update(changes)
        rule = Rule(**fields_now)
        if requirement is not None:
            object.__setattr__(rule, "_meta", replace(rule._meta, requirement=requirement))
        return rule

    @property
    def source(self) -> str:
        """``file:line`` where the rule was written (``<rules>:N`` for rules given in Python)."""
        if self.line is None:
            return f"{self.file or '<rules>'}#{self.index + 1}"
        return f"{self.file or '<rules>'}:{self.line}"

    @property
    def label(self) -> str:
        """How the rule is named in messages: its name, or its pattern."""
        return self.name if self.name else self.path

    def to_mapping(self) -> dict[str, Any]:
        """The rule as a rules-file mapping (the inverse of loading it)."""
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        out["from"] = self.path
        requirement = self.requirement
        if requirement is not None:
            out["require"] = (
                requirement.guards[0] if len(requirement.guards) == 1 else list(requirement.guards)
            )
            if requirement.login_url is not None:
                out["login_url"] = requirement.login_url
        action = self.action
        if requirement is not None and requirement.guard_only:
            pass
        elif isinstance(action, Redirect):
            target = action.target
            if isinstance(target, RouteTarget):
                out["to"] = {
                    "route": target.route,
                    **{
                        k: "".join(
                            p.replace("{", "{{").replace("}", "}}")
                            if isinstance(p, str)
                            else "{" + p.name + "}"
                            for p in v
                        )
                        for k, v in target.params
                    },
                }
            else:
                out["to"] = action.text
            out["status"] = action.status
        elif isinstance(action, Rewrite):
            out["rewrite"] = action.text
            if action.set_headers:
                out["set_headers"] = dict(action.set_headers)
        elif isinstance(action, Respond):
            if action.body or action.headers:
                respond: dict[str, Any] = {"status": action.status}
                if action.body:
                    respond["body"] = action.body
                if action.headers:
                    respond["headers"] = dict(action.headers)
                out["respond"] = respond
            else:
                out["respond"] = action.status
        else:
            out["pass"] = True
        options = self.options
        out["query"] = options.query
        out["trailing_slash"] = (
            "redirect"
            if options.slash_redirect
            else "strict"
            if options.strict_slashes
            else "ignore"
        )
        out["case"] = "insensitive" if options.case_insensitive else "sensitive"
        if options.only_if_missing:
            out["only_if_missing"] = True
        if options.max_age is not None:
            out["max_age"] = options.max_age
        if not self.conditions.empty:
            out["when"] = conditions_to_mapping(self.conditions)
        return out

    def __repr__(self) -> str:
        return f"Rule({self.path!r}, {self.action!r}, source={self.source!r})"


class PackedRule(Rule):
    """A literal redirect whose path and target are kept packed in a store.

    The bulk of a large CSV table. The loader adds such rules to a
    ``waypost._plainstore.PlainStore`` (a compiled module; without it every rule is a plain
    :class:`Rule`): the store keeps the path and the target as bytes and finds a rule by its path
    in one miss to memory. The rule's shared :class:`RuleMeta` names the store (``store``);
    ``path`` and the target read back from it; everything else is a Rule's. (The ``path`` and
    ``_action`` slots it inherits stay empty: a slot of its own for the store would cost 16 MB
    with a million rules, for a reference every rule of the load shares.)
    """

    __slots__ = ()

    @property
    def store(self) -> Any:
        """The store holding this rule's path and target."""
        return self._meta.store

    @property
    def path(self) -> str:  # type: ignore[override]
        """The ``from`` text as written."""
        return self._meta.store.path(self._position & _INDEX_MASK)  # type: ignore[no-any-return]

    @property
    def _action(self) -> str:  # type: ignore[override]
        return self._meta.store.target(self._position & _INDEX_MASK)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy or a pickle is an ordinary Rule: the store is not copied.
        meta = replace(self._meta, store=None)
        return (_unpacked, (self.path, self._action, self.index, self.line, meta))


def _unpacked(path: str, target: str, index: int, line: int | None, meta: RuleMeta) -> Rule:
    return Rule(path, target, index, line=line, meta=meta)  # type: ignore[arg-type]


def _want_out(want: Any) -> Any:
    """A value test as a rules file writes it."""
    if want is None or want == "*":
        return want
    if isinstance(want, ValuePattern):
        return want.to_mapping()
    return list(want)


def conditions_to_mapping(conditions: Conditions) -> dict[str, Any]:
    """A ``when:`` mapping that parses back to ``conditions``."""
    out: dict[str, Any] = {}
    if conditions.methods is not None:
        methods = set(conditions.methods)
        if "GET" in methods:
            methods.discard("HEAD")
        out["methods"] = sorted(methods)
    if conditions.hosts is not None:
        out["host"] = list(conditions.hosts)
    if conditions.schemes is not None:
        out["scheme"] = list(conditions.schemes)
    for key, values in (
        ("query", conditions.query),
        ("headers", conditions.headers),
        ("cookies", conditions.cookies),
    ):
        if values:
            out[key] = {name: _want_out(want) for name, want in values}
    if conditions.accept is not None:
        out["accept"] = conditions.accept
    if conditions.languages is not None:
        out["language"] = list(conditions.languages)
    if conditions.networks is not None:
        out["ip"] = [str(n) for n in conditions.networks]
    if conditions.after is not None:
        out["after"] = conditions.after.isoformat()
    if conditions.before is not None:
        out["before"] = conditions.before.isoformat()
    if conditions.negated is not None:
        out["not"] = conditions_to_mapping(conditions.negated)
    return out


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded, validated set of rules, with the settings they were loaded under."""

    rules: tuple[Rule, ...]
    allowed_hosts: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    #: The file says ``allow_shrink: true``: a hot reload may swap it in even when it drops more
    #: of the serving rules than the server's shrink guard lets through (see the server docs).
    allow_shrink: bool = False
    #: The hosts a ``rewrite`` to an absolute URL may proxy to (``*.example.org`` allows its
    #: subdomains); a separate list from ``allowed_hosts``, which is about redirect targets.
    proxy_hosts: tuple[str, ...] = ()
    #: The guards declared under ``guards:``, in file order.
    guards: tuple[GuardSpec, ...] = ()
    #: Every rule with ``require:``, in file order: the guard layer (see :mod:`waypost.engine`).
    #: They are in ``rules`` too (a rule's index is its place there); one without an action
    #: (``requirement.guard_only``) only guards: the matcher leaves it out of the rules that
    #: decide.
    guard_rules: tuple[Rule, ...] = ()

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet(<{len(self.rules)} rules>, source={self.source!r})"


# The most words of an ``any`` converter sample_paths() tries.
MAX_ANY_SAMPLES = 6


def sample_paths(rule: Rule, count: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """Up to ``count`` request paths (percent-encoded) that ``rule``'s pattern matches.

    A static rule has one: its own path. A pattern rule gets each variable filled with a
    representative value (int 4711, string 'wpsample', path 'wp/sample', any: each word in
    turn, uuid: a fixed one); every word of an ``any`` is tried. Returns the paths with the
    values used; empty when no value fits a custom converter.
    """
    pattern = rule.pattern
    if pattern is None:
        return [(quote_path(rule.path), {})]
    words = max(
        (
            len(v.converter.items)
            for v in pattern.variables
            if isinstance(v.converter, AnyConverter)
        ),
        default=0,
    )
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for k in range(max(count, min(words, MAX_ANY_SAMPLES))):
        try:
            values = {v.name: v.converter.sample(k) for v in pattern.variables}
            path = pattern.build(values)
        except (ValueError, TypeError, KeyError, OverflowError):
            continue
        if path not in seen:
            seen.add(path)
            out.append((path, values))
    return out
