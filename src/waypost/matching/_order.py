"""Where the two orders disagree: the rules a first-match file decides differently when its rules
are tried by specificity (and the other way round).

An import of a Netlify, Cloudflare Pages or Apache file brings ``order: first_match``; merging it
into stored rules tried by specificity (or a specificity file into first-match rules) keeps the
meaning of both sides only when the order does not matter to the file's own rules. It does not
matter when, for every sample path of every rule (see :func:`~waypost.rules.model.sample_paths`),
both orders try the same rules up to the first one without conditions: that rule decides in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from waypost.matching import Matcher, compile_matcher
from waypost.rules.model import Rule, sample_paths

__all__ = ["OrderConflict", "order_conflicts"]


@dataclass(frozen=True, slots=True)
class OrderConflict:
    """``path`` is decided by ``first`` in file order and by ``best`` by specificity."""

    path: str
    first: Rule
    best: Rule

    def describe(self) -> str:
        """``'/splat/foo/x': rules[0] ('/splat/*') in file order, rules[1] ('/splat/foo/*') by
        specificity`` (``file:line`` for rules read from a file)."""
        return (
            f"{self.path!r}: {_where(self.first)} in file order, {_where(self.best)} by specificity"
        )


def _where(rule: Rule) -> str:
    place = rule.source if rule.line is not None else f"rules[{rule.index}]"
    return f"{place} ({rule.label!r})"


def _deciders(matcher: Matcher, path: str) -> tuple[Rule, ...]:
    """The rules tried for ``path`` up to the first that decides whatever the request holds."""
    tried: list[Rule] = []
    for rule, _ in matcher.candidates(path):
        tried.append(rule)
        if rule.conditions.empty:
            break
    return tuple(tried)


def order_conflicts(rules: Iterable[Rule], limit: int = 10) -> list[OrderConflict]:
    """Up to ``limit`` sample paths that ``rules`` decide differently in file order and by
    specificity; empty when the order does not matter to them."""
    ordered = tuple(rules)
    by_file = compile_matcher(ordered, first_match=True)
    by_rank = compile_matcher(ordered, first_match=False)
    found: list[OrderConflict] = []
    seen: set[tuple[int, int]] = set()
    for rule in ordered:
        for sample, _ in sample_paths(rule):
            path = unquote(sample, errors="surrogateescape")
            first, best = _deciders(by_file, path), _deciders(by_rank, path)
            if list(map(id, first)) == list(map(id, best)) or not first or not best:
                continue
            pair = (id(first[-1]), id(best[-1]))
            if pair in seen:
                continue
            seen.add(pair)
            found.append(OrderConflict(path, first[-1], best[-1]))
            if len(found) >= limit:
                return found
    return found
