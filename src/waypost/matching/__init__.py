"""Rules -> an immutable matcher: an exact-path dict, then a segment trie ordered by weight.

Priority, in the order candidates are offered to the engine:

1. **Exact paths** (patterns without variables), found by one dict lookup; several rules on the
   same path (with different conditions) are offered in file order. Literal redirects the loader
   packed (:class:`~waypost.rules.model.PackedRule`) are found in their store instead, when every
   rule of the store is in the rule set; a path that also has other rules gets a dict entry
   holding them all, and the dict is asked first.
2. **Patterns**, by specificity: compared segment by segment from the left, static text beats a
   typed converter (``any`` 30, ``uuid`` 40, ``int``/``float`` 50), which beats ``string`` (100),
   which beats ``path`` (200); a segment with literal text around its variable
   (``item-<int:id>.html``) ranks just before the bare converter. Ties go to file order.

The engine takes the first candidate whose conditions hold; :meth:`Matcher.first_pattern` finds
the first pattern candidate alone, through the compiled index of :mod:`waypost._compiled`, which
gives what the trie gives (tests compare the two). The matcher is built once and never
changed: a reload builds a new one (see :class:`waypost.engine.Engine`). Two rules with the same
pattern (same shape and converters) and the same conditions are reported in ``duplicates``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

from waypost._compiled import FirstIndex, Hit, Payload, compile_first
from waypost.exceptions import RuleError
from waypost.rules.converters import IntConverter, StringConverter
from waypost.rules.model import PackedRule, Rule
from waypost.rules.pattern import Segment, normalize_path

# A waypost._plainstore.PlainStore (compiled; see rules/_build.py).
PlainStore = Any

__all__ = ["Matcher", "compile_matcher"]

Candidate = tuple[Rule, dict[str, Any]]


# The one empty mapping every leaf shares (never written to: the trie is frozen first).
_NO_CHILDREN: dict[str, Any] = {}


class _Node:
    __slots__ = ("dynamic", "edges", "rules", "static", "tails")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.dynamic: list[tuple[Segment, _Node]] = []
        #: ``dynamic`` as (values-or-None function, child): what the walk runs per request.
        self.edges: list[tuple[Callable[[str], list[Any] | None], _Node]] = []
        self.rules: list[Rule] = []
        self.tails: list[tuple[Segment, Rule]] = []


def _edge(segment: Segment) -> Callable[[str], list[Any] | None]:
    """A function from one path segment to the segment's values, or None when it doesn't match.

    The two commonest segments skip the regex: a bare ``<name>`` takes any non-empty segment,
    a bare ``<int:name>`` any run of decimal digits (what ``\\d+`` matches).
    """
    if len(segment.variables) == 1 and segment.static_chars == 0 and not segment.regex.flags & re.I:
        converter = segment.variables[0].converter
        if (
            type(converter) is StringConverter
            and converter.minlength == 1
            and converter.maxlength is None
        ):
            return lambda text: [text] if text else None
        if type(converter) is IntConverter and converter.min is None and converter.max is None:
            return _int_values
    fullmatch = segment.regex.fullmatch

    def match(text: str) -> list[Any] | None:
        found = fullmatch(text)
        return None if found is None else _convert(segment, found.groups())

    return match


def _int_values(text: str) -> list[Any] | None:
    if not text.isdecimal():
        return None
    try:
        return [int(text)]
    except ValueError:  # more digits than int() takes (sys.get_int_max_str_digits()): no match
        return None


def _convert(segment: Segment, groups: tuple[str | Any, ...]) -> list[Any] | None:
    """The segment's values, or None when a converter refuses its text."""
    try:
        return [parse(text) for parse, text in zip(segment.parsers, groups, strict=True)]
    except (ValueError, TypeError, OverflowError):
        return None


class _Trie:
    """The pattern rules of one variant (trailing-slash mode x case mode)."""

    __slots__ = ("case_insensitive", "root", "strict_slashes")

    def __init__(self, strict_slashes: bool, case_insensitive: bool) -> None:
        self.root = _Node()
        self.strict_slashes = strict_slashes
        self.case_insensitive = case_insensitive

    def insert(self, rule: Rule) -> None:
        pattern = rule.pattern
        assert pattern is not None  # only pattern rules reach the trie
        node = self.root
        for part in pattern.parts:
            if isinstance(part, str):
                child = node.static.get(part)
                if child is None:
                    child = node.static[part] = _Node()
            else:
                for segment, existing in node.dynamic:
                    if segment.signature == part.signature:
                        child = existing
                        break
                else:
                    child = _Node()
                    node.dynamic.append((part, child))
                    node.dynamic.sort(key=lambda item: item[0].weight)
                    node.edges = [(_edge(segment), branch) for segment, branch in node.dynamic]
            node = child
        if pattern.tail is not None:
            node.tails.append((pattern.tail, rule))
        else:
            node.rules.append(rule)

    def freeze(self) -> None:
        """Make every node's containers tuples, and every empty one a shared singleton.

        A request visits a handful of nodes among tens of thousands; testing an empty container
        of its own means a memory read (a likely cache miss with many rules), testing the shared
        empty one does not.
        """
        stack = [self.root]
        while stack:
            node = stack.pop()
            stack.extend(node.static.values())
            stack.extend(child for _, child in node.dynamic)
            node.static = node.static or _NO_CHILDREN
            node.dynamic = tuple(node.dynamic)  # type: ignore[assignment]
            node.edges = tuple(node.edges)  # type: ignore[assignment]
            node.rules = tuple(node.rules)  # type: ignore[assignment]
            node.tails = tuple(node.tails)  # type: ignore[assignment]

    def collect(self, path: str, out: list[Candidate]) -> None:
        if not self.strict_slashes and len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        segments = path[1:].split("/")
        keys = [s.lower() for s in segments] if self.case_insensitive else segments
        self._walk(self.root, segments, keys, 0, [], out)

    def _walk(
        self,
        node: _Node,
        segments: list[str],
        keys: list[str],
        depth: int,
        values: list[Any],
        out: list[Candidate],
    ) -> None:
        last = len(segments)
        # Static text descends without recursion while there is nothing else to try.
        while not (node.edges or node.tails) and depth < last:
            next_node = node.static.get(keys[depth])
            if next_node is None:
                return
            node = next_node
            depth += 1
        if depth == last:
            for rule in node.rules:
                out.append((rule, _named(rule, values)))
            return
        child = node.static.get(keys[depth])
        if child is not None:
            self._walk(child, segments, keys, depth + 1, values, out)
        if node.edges:
            segment_text = segments[depth]
            following = depth + 1
            for edge, child in node.edges:
                # A branch that cannot take the next segment yields nothing: skip it before
                # paying for the regex and the conversion (patterns starting with a variable
                # put such a branch on the path of every request).
                if following == last:
                    if not child.rules:
                        continue
                elif not (child.edges or child.tails or keys[following] in child.static):
                    continue
                converted = edge(segment_text)
                if converted is None:
                    continue
                if following == last:  # what the call below would do, one call fewer
                    for rule in child.rules:
                        out.append((rule, _named(rule, values + converted)))
                else:
                    self._walk(child, segments, keys, following, values + converted, out)
        if node.tails:
            rest = "/".join(segments[depth:])
            for segment, rule in node.tails:
                match = segment.regex.fullmatch(rest)
                if match is None:
                    continue
                converted = _convert(segment, match.groups())
                if converted is not None:
                    out.append((rule, _named(rule, values + converted)))


def _named(rule: Rule, values: list[Any]) -> dict[str, Any]:
    # A branch is shared by every pattern of the same shape ('/<int:x>' and '/<int:y>'): name the
    # values by this rule's own variables (same order, same converters), or '/b/{y}' finds no 'y'.
    pattern = rule.pattern
    assert pattern is not None  # only pattern rules reach the trie
    return dict(zip(pattern.converters, values, strict=True))


@dataclass(frozen=True, slots=True)
class _ExactTable:
    strict_slashes: bool
    case_insensitive: bool
    table: dict[str, Rule | tuple[Rule, ...]]
    #: The packed rules of the default variant (no strict slashes, case-sensitive), asked when
    #: ``table`` has nothing for a path.
    store: PlainStore | None = None

    def get(self, key: str, rules: tuple[Rule, ...]) -> Rule | tuple[Rule, ...] | None:
        hit = self.table.get(key)
        if hit is None and self.store is not None:
            index = self.store.index_of(key)
            return None if index is None else rules[index]
        return hit


def _priority(candidate: Candidate) -> tuple[Any, int]:
    rule = candidate[0]
    assert rule.pattern is not None
    return rule.pattern.key, rule.index


class Matcher:
    """An immutable index of rules. Build it with :func:`compile_matcher`."""

    __slots__ = (
        "_default_exact",
        "_exact",
        "_first",
        "_store",
        "_tries",
        "by_name",
        "duplicates",
        "exact_prefixes",
        "exact_table",
        "find_packed",
        "first_pattern",
        "lookup_is_complete",
        "prefetch_packed",
        "rule_count",
        "rules",
    )

    def __init__(
        self,
        rules: tuple[Rule, ...],
        exact: list[_ExactTable],
        tries: list[_Trie],
        by_name: dict[str, Rule],
        duplicates: tuple[RuleError, ...],
        payload: Payload | None = None,
    ) -> None:
        self.rules = rules
        self.rule_count = len(rules)
        self._exact = exact
        self._tries = tries
        self.by_name = by_name
        self.duplicates = duplicates
        # The common case (every static rule 'ignore' + 'sensitive') needs one lookup, no loop.
        self._default_exact = (
            exact[0].table
            if len(exact) == 1 and not exact[0].strict_slashes and not exact[0].case_insensitive
            else (None if exact else {})
        )
        self._store = exact[0].store if self._default_exact is not None and exact else None
        #: For the engine's fast path: the dict of the default table (None when there are other
        #: variants), and ``find(key) -> (meta, index, target)`` of its packed rules (None
        #: without; the rule is ``rules[index]``). Ask the dict first: a path in both has all its
        #: rules in the dict.
        self.exact_table = self._default_exact
        self.find_packed: Callable[[str], tuple[Any, int, str] | None] | None = (
            self._store.find if self._store is not None else None
        )
        #: ``prefetch(path, prefixes) -> bool``: whether ``path`` starts with one of
        #: ``prefixes`` (:attr:`exact_prefixes`; None: always) and if so, start loading what
        #: ``find_packed(path)`` will read (None without a store). A caller with work to do
        #: before the lookup calls it first.
        self.prefetch_packed: Callable[[str, tuple[str, ...] | None], bool] | None = (
            self._store.prefetch if self._store is not None else None
        )
        #: True when :meth:`lookup` finds every exact rule (they are all in the default table), so
        #: that a miss there leaves only :meth:`pattern_candidates` to try.
        self.lookup_is_complete = self._default_exact is not None
        #: When :meth:`lookup` finds every exact rule, they are many and their paths have few
        #: first segments: '/' + each of them. A path that starts with none of these has no exact
        #: rule, so the engine need not look. Else None.
        exact_count = (
            len(self._default_exact) + (len(self._store) if self._store is not None else 0)
            if self._default_exact is not None
            else 0
        )
        self.exact_prefixes = (
            _prefixes(self._default_exact, self._store)
            if self._default_exact is not None and exact_count >= _PREFIXES_FROM
            else None
        )
        # Not a bound method of self: the index keeping the matcher alive would be a cycle, and
        # a replaced rule set would wait for the cyclic garbage collector to be freed.
        search = partial(_search_first, tuple(tries))
        self._first: FirstIndex | None = None
        if len(tries) <= 1:
            trie = tries[0] if tries else None
            self._first = compile_first(
                trie.root if trie else None,
                strict_slashes=trie.strict_slashes if trie else False,
                case_insensitive=trie.case_insensitive if trie else False,
                payload=payload or _no_payload,
                search=search,
            )
        #: ``first_pattern(path)``: the first of :meth:`pattern_candidates` for the decoded
        #: ``path``, or None. A hit is ``(rule, payload, values)``: ``values`` in the order of
        #: the pattern's variables (``rule.pattern.converters``), ``payload`` what
        #: ``compile_matcher(payload=...)`` made for the rule (None when the answer came from the
        #: full search). It stops at the first candidate, and most often it is one dict lookup
        #: and one regex match (see :mod:`waypost._compiled`). An attribute, not a method: the
        #: engine calls it once per request, and this saves a call.
        self.first_pattern: Callable[[str], Hit | None] = (
            self._first.first if self._first is not None else search
        )

    def lookup(self, path: str) -> Rule | tuple[Rule, ...] | None:
        """The exact-path rule(s) for a decoded ``path`` in the default table, or None.

        The fastest route, used by the engine first; :meth:`candidates` covers everything.
        """
        if self._default_exact is None or not self._exact:
            return None
        if len(path) > 1 and path[-1] == "/":
            path = path.rstrip("/") or "/"
        return self._exact[0].get(path, self.rules)

    def exact_candidates(self, path: str) -> list[Rule]:
        """Every exact-path rule matching ``path``, in file order."""
        found: list[Rule] = []
        for exact in self._exact:
            key = normalize_path(
                path, strict_slashes=exact.strict_slashes, case_insensitive=exact.case_insensitive
            )
            hit = exact.get(key, self.rules)
            if hit is None:
                continue
            if isinstance(hit, tuple):
                found.extend(hit)
            else:
                found.append(hit)
        if len(self._exact) > 1:
            found.sort(key=lambda r: r.index)
        return found

    def pattern_candidates(self, path: str) -> list[Candidate]:
        """Every pattern rule matching ``path``, with its values, in priority order."""
        out: list[Candidate] = []
        for trie in self._tries:
            trie.collect(path, out)
        if len(out) > 1:
            out.sort(key=_priority)
        return out

    def candidates(self, path: str) -> Iterator[Candidate]:
        """Every rule matching the decoded ``path``, in priority order, with its values."""
        for rule in self.exact_candidates(path):
            yield rule, {}
        yield from self.pattern_candidates(path)

    def __len__(self) -> int:
        return self.rule_count

    def __repr__(self) -> str:
        return f"<Matcher {self.rule_count} rules>"


def _search_first(tries: tuple[_Trie, ...], path: str) -> Hit | None:
    """What :attr:`Matcher.first_pattern` gives, from the full search."""
    out: list[Candidate] = []
    for trie in tries:
        trie.collect(path, out)
    if not out:
        return None
    rule, values = min(out, key=_priority)
    return rule, None, tuple(values.values())


def _duplicate(rule: Rule, other: Rule) -> RuleError:
    return RuleError(
        f"duplicate rule: {rule.path!r} has the same pattern and conditions as the rule at "
        f"{other.source}, so it can never apply; remove one or give them different conditions",
        file=rule.file,
        line=rule.line,
    )


# More distinct first segments than this, and exact_prefixes is not kept: str.startswith() tries
# them one by one, and past a few dozen that costs more than the lookup it saves.
_MAX_PREFIXES = 16
# Below this many exact paths their dict stays in the CPU caches and a lookup costs about what
# the check would (~60 ns); past it, a lookup is a cache miss or three (~700 ns with a million).
_PREFIXES_FROM = 20_000


def _prefixes(table: dict[str, Any], store: PlainStore | None) -> tuple[str, ...] | None:
    """'/' + the first segment of each of ``table``'s and ``store``'s paths ('/a/b' -> '/a'), or
    None.

    None when there are more than _MAX_PREFIXES, or when one is '/' (a path '/' or '//x'):
    every path starts with it.
    """
    heads: set[str] = set()
    if store is not None:
        packed = store.heads(_MAX_PREFIXES)
        if packed is None:
            return None
        heads.update(packed)
    keys = iter(table)
    while True:
        # In slices, so that a table of a million distinct first segments stops early.
        chunk = [
            key[:cut] if (cut := key.find("/", 1)) > 0 else key for key in islice(keys, 10_000)
        ]
        if not chunk:
            break
        heads.update(chunk)
        if len(heads) > _MAX_PREFIXES:
            return None
    return None if "/" in heads else tuple(sorted(heads))


def _no_payload(rule: Rule) -> None:
    return None


def _usable_store(rules: tuple[Rule, ...]) -> PlainStore | None:
    """The store of the packed rules in ``rules``, when the matcher can find them there.

    That takes every rule the store holds to be in ``rules``, each at the position of its index
    (the store answers with an index). Rules of a store that fails this, or of another store
    than the largest, are indexed like any rule.
    """
    counts: dict[int, list[Any]] = {}
    current: Any = None
    entry: list[Any] = []
    for position, rule in enumerate(rules):
        if type(rule) is not PackedRule:
            continue
        store = rule.store
        if store is not current:
            current = store
            entry = counts.setdefault(id(store), [store, 0, True])
        entry[1] += 1
        if rule.index != position:
            entry[2] = False
    usable = [
        (count, store)
        for store, count, in_place in counts.values()
        if in_place and store.frozen and count == len(store)
    ]
    if not usable:
        return None
    return max(usable, key=lambda pair: pair[0])[1]


def _merge_store(
    store: PlainStore,
    rules: tuple[Rule, ...],
    table: dict[str, Rule | tuple[Rule, ...]],
    duplicates: list[tuple[int, RuleError]],
) -> None:
    """Paths of ``table`` (the default variant) that the store has too get an entry holding all
    their rules in file order, which lookups find first; duplicates are reported as they would
    be were every rule in ``table`` (the later rule, against the first earlier one like it)."""
    repeated: dict[int, list[int]] = {}
    for first, duplicate in store.duplicates:
        duplicates.append((duplicate, _duplicate(rules[duplicate], rules[first])))
        repeated.setdefault(first, []).append(duplicate)
    for key, hit in list(table.items()):
        index = store.index_of(key)
        if index is None:
            continue
        others = hit if isinstance(hit, tuple) else (hit,)
        packed = [rules[i] for i in (index, *repeated.get(index, ()))]
        merged = tuple(sorted((*packed, *others), key=lambda r: r.index))
        table[key] = merged
        redo = {r.index for r in merged}
        duplicates[:] = [pair for pair in duplicates if pair[0] not in redo]
        for position, rule in enumerate(merged):
            for other in merged[:position]:
                if other.conditions == rule.conditions:
                    duplicates.append((rule.index, _duplicate(rule, other)))
                    break


def compile_matcher(rules: Iterable[Rule], *, payload: Payload | None = None) -> Matcher:
    """Index ``rules`` (in priority order of file position) into a :class:`Matcher`.

    ``payload(rule)``, when given, is called once per pattern rule; :meth:`Matcher.first_pattern`
    hands its result back with each hit on the rule (the engine keeps there what applying the
    rule needs, so that a hit touches few objects).
    """
    ordered = tuple(rules)
    store = _usable_store(ordered)
    exact: dict[tuple[bool, bool], dict[str, Rule | tuple[Rule, ...]]] = {}
    tries: dict[tuple[bool, bool], _Trie] = {}
    seen_patterns: dict[str, list[Rule]] = {}
    by_name: dict[str, Rule] = {}
    duplicates: list[tuple[int, RuleError]] = []  # by the index of the later rule
    for rule in ordered:
        if store is not None and type(rule) is PackedRule and rule.store is store:
            continue  # found in the store (no name, no pattern: a literal redirect)
        options = rule.options
        variant = (options.strict_slashes, options.case_insensitive)
        if rule.name:
            by_name[rule.name] = rule
        if rule.pattern is None:
            table = exact.get(variant)
            if table is None:
                table = exact[variant] = {}
            key = normalize_path(rule.path, strict_slashes=variant[0], case_insensitive=variant[1])
            hit = table.get(key)
            if hit is None:
                table[key] = rule
                continue
            others = hit if isinstance(hit, tuple) else (hit,)
            for other in others:
                if other.conditions == rule.conditions:
                    duplicates.append((rule.index, _duplicate(rule, other)))
                    break
            table[key] = (*others, rule)
            continue
        same = seen_patterns.setdefault(rule.pattern.signature, [])
        for other in same:
            if other.conditions == rule.conditions:
                duplicates.append((rule.index, _duplicate(rule, other)))
                break
        same.append(rule)
        trie = tries.get(variant)
        if trie is None:
            trie = tries[variant] = _Trie(*variant)
        trie.insert(rule)
    if store is not None:
        _merge_store(store, ordered, exact.setdefault((False, False), {}), duplicates)
    tables = [
        _ExactTable(
            strict, insensitive, table, store if (strict, insensitive) == (False, False) else None
        )
        for (strict, insensitive), table in exact.items()
    ]
    for trie in tries.values():
        trie.freeze()
    duplicates.sort(key=lambda pair: pair[0])  # file order, as rules are added without a store
    return Matcher(
        ordered, tables, list(tries.values()), by_name, tuple(e for _, e in duplicates), payload
    )
