"""The segment trie: every pattern rule matching a path, with its values, in priority order.

What :meth:`waypost.matching.Matcher.candidates` walks (``explain()`` and rules with conditions need
every candidate), and what the compiled index (:mod:`waypost.matching._index`) is built from and
checked against. Priority: at each node the static child first, then the dynamic segments by
weight (see :mod:`waypost.rules.converters`), then the tails (``<path:...>``); the candidates of
several tries are sorted by ``(pattern.key, index)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from waypost.rules.model import Rule
from waypost.rules.pattern import Segment

__all__ = ["Candidate", "Trie", "TrieNode", "priority", "search_first"]

#: A rule matching a path, and its values by variable name.
Candidate = tuple[Rule, dict[str, Any]]
#: What the first candidate is handed over as: the rule, a payload (None here) and the values
#: in the order of the pattern's variables.
FirstHit = tuple[Rule, Any, tuple[Any, ...]]

# The one empty mapping every leaf shares (never written to: the trie is frozen first).
_NO_CHILDREN: dict[str, Any] = {}


class TrieNode:
    """One node: its static children by segment text, its dynamic segments (by weight) and the
    rules whose pattern ends here or continues with a tail (``<path:...>``)."""

    __slots__ = ("dynamic", "edges", "mixed", "rules", "size", "some", "static", "tails")

    def __init__(self) -> None:
        self.static: dict[str, TrieNode] = {}
        self.dynamic: list[tuple[Segment, TrieNode]] = []
        #: ``dynamic`` as (values-or-None function, child): what the walk runs per request.
        self.edges: list[tuple[Callable[[str], list[Any] | None], TrieNode]] = []
        self.rules: list[Rule] = []
        self.tails: list[tuple[Segment, Rule]] = []
        #: How many rules the subtree holds, and one of them (the first inserted).
        self.size = 0
        self.some: Rule | None = None
        #: True when a dynamic segment here is shared by patterns whose converters are of other
        #: types (rule sets loaded with different converters): the values it makes are the first
        #: pattern's, which only the general build writes right for the others.
        self.mixed = False


def _edge(segment: Segment) -> Callable[[str], list[Any] | None]:
    """A function from one path segment to the segment's values, or None when it doesn't match.

    A segment that is one variable alone asks its converter for a way to read it without the
    regex (:meth:`~waypost.rules.converters.BaseConverter.segment_parser`): a bare ``<name>``
    takes any non-empty segment, a bare ``<int:name>`` any run of decimal digits.
    """
    if len(segment.variables) == 1 and segment.static_chars == 0 and not segment.case_insensitive:
        whole = segment.variables[0].converter.segment_parser()
        if whole is not None:
            return whole
    fullmatch = segment.regex.fullmatch

    def match(text: str) -> list[Any] | None:
        found = fullmatch(text)
        return None if found is None else convert(segment, found.groups())

    return match


def convert(segment: Segment, groups: tuple[str | Any, ...]) -> list[Any] | None:
    """The segment's values, or None when a converter refuses its text."""
    try:
        return [parse(text) for parse, text in zip(segment.parsers, groups, strict=True)]
    except (ValueError, TypeError, OverflowError):
        return None


class Trie:
    """The pattern rules of one variant (trailing-slash mode x case mode)."""

    __slots__ = ("case_insensitive", "root", "strict_slashes")

    def __init__(self, strict_slashes: bool, case_insensitive: bool) -> None:
        self.root = TrieNode()
        self.strict_slashes = strict_slashes
        self.case_insensitive = case_insensitive

    def insert(self, rule: Rule) -> None:
        pattern = rule.pattern
        assert pattern is not None  # only pattern rules reach the trie
        node = self.root
        for part in pattern.parts:
            node.size += 1
            node.some = node.some or rule
            if isinstance(part, str):
                child = node.static.get(part)
                if child is None:
                    child = node.static[part] = TrieNode()
            else:
                for segment, existing in node.dynamic:
                    if segment.signature == part.signature:
                        child = existing
                        kinds = [type(v.converter) for v in segment.variables]
                        if kinds != [type(v.converter) for v in part.variables]:
                            node.mixed = True
                        break
                else:
                    child = TrieNode()
                    node.dynamic.append((part, child))
                    node.dynamic.sort(key=lambda item: item[0].weight)
                    node.edges = [(_edge(segment), branch) for segment, branch in node.dynamic]
            node = child
        node.size += 1
        node.some = node.some or rule
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
        node: TrieNode,
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
                converted = convert(segment, match.groups())
                if converted is not None:
                    out.append((rule, _named(rule, values + converted)))


def _named(rule: Rule, values: list[Any]) -> dict[str, Any]:
    # A branch is shared by every pattern of the same shape ('/<int:x>' and '/<int:y>'): name the
    # values by this rule's own variables (same order, same converters), or '/b/{y}' finds no 'y'.
    pattern = rule.pattern
    assert pattern is not None  # only pattern rules reach the trie
    return dict(zip(pattern.converters, values, strict=True))


def priority(candidate: Candidate) -> tuple[Any, int]:
    """The sort key of a candidate: its pattern's specificity, then file order."""
    rule = candidate[0]
    assert rule.pattern is not None
    return rule.pattern.key, rule.index


def search_first(tries: tuple[Trie, ...], path: str) -> FirstHit | None:
    """The first candidate of ``tries`` for ``path``, the slow way (every candidate, sorted)."""
    out: list[Candidate] = []
    for trie in tries:
        trie.collect(path, out)
    if not out:
        return None
    rule, values = min(out, key=priority)
    return rule, None, tuple(values.values())
