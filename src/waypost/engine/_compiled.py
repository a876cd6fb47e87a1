"""The compiled road of :meth:`Engine.resolve`: a rule set described for ``FastPath`` (C).

``waypost._plainstore.FastPath`` answers in one call what most requests meet: a literal redirect
of the compiled store, or a pattern rule without conditions whose converters are built-in
(``string``, ``int``, ``any``, ``path``: one variable to a segment, with literal text around it)
and whose target is fixed text or a template filled from the values in order (the rule's
:class:`~waypost.engine._plans.Plan` says which). For anything else it answers None and the
Python road answers: an exact rule with conditions, a path to normalize, a
percent-encoded or non-ASCII path, a rule with conditions, a value that needs quoting, a guard.

:func:`fast_path` describes the rule set in plain tuples (the pattern index's branches and leaves
as :mod:`waypost.matching._index` built them, each rule's whole pattern as a program and its
action) and builds the ``FastPath``; None when there is no compiler's build, or the rule set
leaves nothing for it (guards, first-match order, exact rules of several variants).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from typing import Any

from waypost.decision import NO_MATCH, Decision
from waypost.engine._guards import GuardLayer
from waypost.engine._plans import (
    PassOn,
    Plan,
    RespondWith,
    StoredRedirect,
    ToTarget,
    plan_for,
)
from waypost.guards import GUARD_HEADER, USER_HEADER
from waypost.matching import Matcher
from waypost.matching._index import _Branch, _Leaf, _Tails
from waypost.rules.converters import AnyConverter, IntConverter, PathConverter, StringConverter
from waypost.rules.model import Rule
from waypost.rules.pattern import Segment
from waypost.rules.request import LazyHeaders

__all__ = ["FastMethod", "FastPath", "Gate", "fast_path", "gate"]

FastPath: Any
FastMethod: Any
Gate: Any
try:
    _compiled = importlib.import_module("waypost._plainstore")
    FastPath, FastMethod, Gate = _compiled.FastPath, _compiled.FastMethod, _compiled.Gate
except (ImportError, AttributeError):  # pragma: no cover - built without a C compiler
    FastPath = FastMethod = Gate = None

#: Set to "0" to answer every request on the Python road (for comparing the two).
ENV_SWITCH = "WAYPOST_COMPILED_RESOLVE"

_STAGES = {"all": 1, "before": 2, "missing": 4}
#: The conversions of a prepared format: a placeholder ('%s') or a '%' ('%%').
_CONVERSION = re.compile("%%|%s")
_CHECK_NONE, _CHECK_TEXT, _CHECK_PATH = range(3)
_INT64 = 2**63 - 1
#: More exact rules outside the compiled store than this, and the compiled road looks a path up
#: in their dict and leaves a hit to the Python road, instead of holding a plan of each.
EXACT_MAX = 50_000


def _ascii(*texts: str) -> bool:
    return "".join(texts).isascii()


def _converter(converter: Any) -> tuple[Any, ...] | None:
    kind = type(converter)
    if kind is StringConverter:
        return ("string", converter.minlength, converter.maxlength)
    if kind is IntConverter:
        bounds = (converter.min, converter.max)
        if any(b is not None and abs(b) > _INT64 for b in bounds):
            return None
        return ("int", converter.signed, converter.fixed_digits, *bounds)
    if kind is AnyConverter:
        words = converter.items
        return ("any", words) if _ascii(*words) else None
    if kind is PathConverter:
        return ("path",)
    return None


def _segment(segment: Segment) -> tuple[Any, ...] | None:
    """``(prefix, converter, suffix)`` for a segment of one variable with built-in converter;
    None otherwise (the segment is read on the Python road)."""
    if segment.case_insensitive or len(segment.variables) != 1:
        return None
    variable = segment.variables[0]
    # The signature is the segment's text with '<' doubled and the variable as '<spec>'.
    signature = segment.signature
    mark = f"<{variable.spec}>"
    texts: list[str] = []
    text: list[str] = []
    at = 0
    found = False
    while at < len(signature):
        if signature.startswith("<<", at):
            text.append("<")
            at += 2
        elif signature[at] == "<":
            if found or not signature.startswith(mark, at):
                return None
            texts.append("".join(text))
            text = []
            found = True
            at += len(mark)
        else:
            text.append(signature[at])
            at += 1
    texts.append("".join(text))
    converter = _converter(variable.converter)
    if not found or converter is None or not _ascii(*texts):
        return None
    return (texts[0], converter, texts[1])


def _program(rule: Rule) -> tuple[Any, ...] | None:
    """The rule's whole pattern as segments and a tail, or None."""
    pattern = rule.pattern
    if pattern is None or pattern.case_insensitive:
        return None
    parts: list[tuple[Any, ...]] = []
    for part in pattern.parts:
        if isinstance(part, str):
            if not part.isascii():
                return None
            parts.append(("static", part))
            continue
        described = _segment(part)
        if described is None or described[1][0] == "path":
            return None
        parts.append(described)
    tail = None
    if pattern.tail is not None:
        tail = _segment(pattern.tail)
        if tail is None or tail[1][0] != "path":
            return None
    return (tuple(parts), tail)


def _template(plan: ToTarget) -> tuple[Any, ...] | None:
    if plan.text is not None:
        return ("text", plan.text)
    text_format = plan.format
    if text_format is None or not text_format.isascii():
        return None
    # '%s' is a placeholder, '%%' a '%' (the format's only two conversions), read from the left.
    pieces: list[str] = []
    start = 0
    for found in _CONVERSION.finditer(text_format):
        if found.group() == "%s":
            pieces.append(text_format[start : found.start()].replace("%%", "%"))
            start = found.end()
    pieces.append(text_format[start:].replace("%%", "%"))
    reduced = plan.pick.__reduce__()  # itemgetter(*order): (itemgetter, order)
    order = reduced[1] if isinstance(reduced, tuple) and len(reduced) == 2 else None
    if not isinstance(order, tuple) or len(order) != len(pieces) - 1:
        return None
    picks = tuple(
        (
            index,
            _CHECK_TEXT
            if index in plan.texts
            else (_CHECK_PATH if index in plan.paths else _CHECK_NONE),
        )
        for index in order
    )
    return ("format", tuple(pieces), picks)


def _stages(plan: Plan) -> int:
    return sum(_STAGES[stage] for stage in plan.alone)


def _action(plan: Any) -> tuple[Any, ...] | None:
    """What the rule does, as FastPath takes it, or None (the Python road applies it)."""
    if not isinstance(plan, Plan) or plan.conditional or not plan.alone:
        return None
    if type(plan) is ToTarget:  # (not a ProxyTo: its dot-segment check is Python's)
        template = _template(plan)
        if template is None:
            return None
        action = "redirect" if plan.redirect else "rewrite"
        return (action, _stages(plan), plan.keep_query, plan.status, plan.headers, None, template)
    if type(plan) is RespondWith:
        return ("respond", _stages(plan), False, plan.status, plan.headers, plan.body, None)
    if type(plan) is PassOn:
        return ("pass", _stages(plan), False, None, (), None, None)
    return None  # a proxy (its dot-segment check), or a plan of its own


class _Describer:
    """The nodes and rules of a pattern index, numbered as FastPath takes them."""

    def __init__(self, ruleset: tuple[Rule, ...]) -> None:
        #: The rule set's rules: a rule's hits are counted by its position there.
        self.ruleset = ruleset
        self.nodes: list[tuple[Any, ...] | None] = []
        self.rules: list[tuple[Any, ...]] = []
        self.rule_ids: dict[int, int] = {}

    def rule(self, rule: Rule, plan: Any) -> int:
        found = self.rule_ids.get(id(rule))
        if found is None:
            found = self.rule_ids[id(rule)] = len(self.rules)
            index = rule.index
            position = (
                index
                if 0 <= index < len(self.ruleset) and self.ruleset[index] is rule
                else len(self.ruleset)
            )
            self.rules.append((rule, _program(rule), _action(plan), position))
        return found

    def node(self, node: _Leaf | _Branch) -> int:
        at = len(self.nodes)
        self.nodes.append(None)  # its place: the root is node 0
        if type(node) is _Leaf:
            self.nodes[at] = ("leaf", self.rule(node.rule, node.payload))
            return at
        assert type(node) is _Branch
        statics = tuple(
            (text, self.node(child)) for text, child in node.static.items() if text.isascii()
        )
        end = None if node.end is None else self.rule(*node.end)
        alts: list[tuple[Any, ...]] = []
        for alternative, segment in zip(node.alternatives, node.segments, strict=True):
            if isinstance(alternative, _Tails):
                rules = tuple(self.rule(rule, plan) for _, rule, plan in alternative.tails)
                alts.append(("tails", rules))
                continue
            target = self.node(alternative.target)
            gate = alternative.gate
            described = None if segment is None else _segment(segment)
            if gate is None:
                alts.append(("edge", described, target, None))
            elif isinstance(gate, Mapping):
                alts.append(("edge", described, target, "static"))
            else:
                (only,) = gate
                if only.isascii():
                    alts.append(("edge", described, target, ("one", only)))
                else:  # never met by an ASCII path: "not handled" if ever reached
                    alts.append(("edge", None, target, None))
        self.nodes[at] = ("branch", node.ordered, statics, end, tuple(alts))
        return at


def gate(layer: GuardLayer) -> Any:
    """The ``Gate`` through which a guarded rule set's compiled road lets a request pass whose
    guards remember its credential, or None (see ``waypost/_gate.c``)."""
    if Gate is None:
        return None
    described = layer.memories()
    if described is None:
        return None
    tails, exact, guards = described
    if len(guards) > 256:
        return None
    return Gate(tails, exact, guards, layer.vary, USER_HEADER, GUARD_HEADER, LazyHeaders)


def fast_path(
    matcher: Matcher,
    packed: StoredRedirect,
    *,
    merge_slashes: bool,
    slash_redirects: bool,
    guards: GuardLayer | None = None,
) -> Any:
    """The ``FastPath`` of a rule set's matcher, or None (see the module's doc). With
    ``guards``, its ``resolve()`` answers only through their :func:`gate` (and never without
    one), and ``resolve_rules()`` gives the rules' decision once the guards let a request
    through."""
    if FastPath is None or os.environ.get(ENV_SWITCH) == "0":
        return None
    table = matcher.default_table
    if table is None:
        return None
    store = matcher.store
    metas: tuple[tuple[Any, ...], ...] = ()
    if store is not None:
        metas = tuple((meta.status, meta.options.query == "keep", meta) for meta in store.metas)
    index = matcher.first_index
    describer = _Describer(packed.rules)
    exact: list[tuple[str, int]] = []
    left: dict[str, Any] = {}
    if len(table) > EXACT_MAX:
        # So many (with packing off): not made into plans now (seconds at a million); the
        # compiled road leaves a path of them to the Python road.
        left, table = table, {}
    for path, found in table.items():
        if not path.isascii():
            continue  # never the path of an ASCII request
        rule = found[0] if isinstance(found, tuple) else found  # the first candidate
        plan = plan_for(rule, prepared=False)  # as the Python road makes it (Engine's plan())
        # A rule whose action the road does not cover is described too: "not handled" there.
        exact.append((path, describer.rule(rule, plan)))
    strict = False
    if not matcher.has_patterns:
        patterns = 0
    elif index is None:
        patterns = 2
    else:
        patterns = 1
        strict = index.strict_slashes
        describer.node(index.root)
    return FastPath(
        Decision,
        NO_MATCH,
        tuple(exact),
        left,
        store,
        matcher.exact_prefixes,
        metas,
        packed.rules,
        (merge_slashes, slash_redirects, strict),
        tuple(describer.nodes),
        tuple(describer.rules),
        patterns,
        len(packed.rules),
        guarded=guards is not None,
        gate=None if guards is None else gate(guards),
    )
