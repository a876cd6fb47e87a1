"""The order Waypost offers a rule set's rules in, for exporters to write it down.

A rule set is ordered by specificity (exact paths in file order, then patterns by specificity,
ties in file order; see :mod:`waypost.matching`) unless its ``defaults`` say ``order:
first_match`` (every rule in file order). Netlify ``_redirects``, Apache ``RewriteRule`` lists,
Vercel arrays and Cloudflare lists apply the first line that matches, so a rule set written in
the order Waypost offers its rules decides the same there: one sort of every rule by the key
``(pattern?, specificity, file position)`` puts the candidates of any one path in the order
``Engine.candidates`` gives them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from waypost.exceptions import WaypostError
from waypost.matching import rule_identity
from waypost.rules.load import rules_from_mappings
from waypost.rules.pattern import parse_pattern

from ._canon import effective_rule, parse_pattern_pieces
from ._regex import RegexNotSupported, pattern_regex

__all__ = ["first_match", "out_of_order", "overlap", "priority_key", "priority_order"]

_Key = tuple[int, tuple[tuple[int, int], ...], int]


def first_match(defaults: Mapping[str, Any] | None) -> bool:
    """True when the rule set's ``defaults`` say ``order: first_match``."""
    return bool(defaults) and (defaults or {}).get("order") == "first_match"


def priority_key(index: int, rule: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> _Key:
    """Where ``rule`` (``rules[index]``) stands in a specificity-ordered rule set: exact paths
    first, then patterns by their specificity key; file order breaks ties. A rule whose pattern
    does not parse goes last (the exporter refuses it anyway)."""
    eff = effective_rule(rule, defaults)
    try:
        pattern = parse_pattern(
            str(eff["from"]),
            case_insensitive=eff.get("case") == "insensitive",
            strict_slashes=eff.get("trailing_slash") == "strict",
        )
    except (KeyError, WaypostError):
        return (2, (), index)
    if not pattern.variables:
        return (0, (), index)
    return (1, pattern.key, index)


def priority_order(
    rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None
) -> list[int]:
    """The indices of ``rules`` in the order Waypost offers them (file order for a first-match
    rule set)."""
    if first_match(defaults):
        return list(range(len(rules)))
    keys = [priority_key(index, rule, defaults) for index, rule in enumerate(rules)]
    return sorted(range(len(rules)), key=keys.__getitem__)


#: Sample values per converter, to find paths two patterns both match (several, with and
#: without a trailing slash and with other first characters, so that a rule with literal text
#: where another has a variable is not taken for covering it).
_SAMPLES: dict[str, tuple[str, ...]] = {
    "string": ("x", "a-1.b", "Zq", "1", "12345678-1234-1234-1234-123456789abc"),
    "path": ("x", "x/y", "x/y/", "Zq.z", "x/y/z", "1", "1.5"),
    "int": ("1", "42"),
    "float": ("1.5",),
    "uuid": ("12345678-1234-1234-1234-123456789abc",),
}


@lru_cache(maxsize=4096)
def pattern_samples(pattern: str) -> tuple[str, ...]:
    """A few request paths (decoded) that ``pattern`` may match, each also with and without its
    trailing slash."""
    choices: list[tuple[str, ...]] = []
    for piece in parse_pattern_pieces(pattern):
        if isinstance(piece, str):
            choices.append((piece,))
        elif piece.converter == "any":
            choices.append(tuple(w.strip().strip("'\"") for w in piece.args.split(",")))
        else:
            choices.append(_SAMPLES.get(piece.converter, ("x",)))
    width = max((len(choice) for choice in choices), default=1)
    out: list[str] = []
    for i in range(width):
        path = "".join(choice[i % len(choice)] for choice in choices)
        for variant in (path, path.rstrip("/") or "/", path + "/"):
            if variant not in out:
                out.append(variant)
    return tuple(out)


def _matcher(eff: Mapping[str, Any]) -> Callable[[str], bool]:
    try:
        regex, _names = pattern_regex(
            str(eff["from"]), named=False, optional_slash=eff.get("trailing_slash") != "strict"
        )
    except (RegexNotSupported, KeyError):
        return lambda path: False
    compiled = re.compile(regex, re.I if eff.get("case") == "insensitive" else 0)
    return lambda path: compiled.match(path) is not None


class _Paths:
    """Each rule's matcher and sample paths, made once per rule."""

    def __init__(self, rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None):
        self._rules = rules
        self._defaults = defaults
        self._made: dict[int, tuple[Callable[[str], bool], tuple[str, ...]]] = {}

    def get(self, index: int) -> tuple[Callable[[str], bool], tuple[str, ...]]:
        made = self._made.get(index)
        if made is None:
            eff = effective_rule(self._rules[index], self._defaults)
            made = self._made[index] = (_matcher(eff), pattern_samples(str(eff.get("from", ""))))
        return made

    def overlap(self, one: int, two: int) -> bool:
        (match_one, paths_one), (match_two, paths_two) = self.get(one), self.get(two)
        return any(match_one(path) and match_two(path) for path in (*paths_one, *paths_two))


def overlap(
    one: Mapping[str, Any], two: Mapping[str, Any], defaults: Mapping[str, Any] | None
) -> bool:
    """True when a path is found that both rules' patterns match (conditions aside). Sampled:
    each pattern's variables are tried with a few values, so an overlap only an unusual value
    reaches can be missed."""
    return _Paths([one, two], defaults).overlap(0, 1)


def out_of_order(
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None,
    written: Sequence[int],
) -> dict[int, int]:
    """For a first-match rule set written in the order ``written`` (indices) by a format that
    cannot keep file order: each rule that would be tried before an earlier rule of the file on
    a path both match (sampled, see :func:`overlap`), with that earlier rule's index. Those are
    the rules whose outcome changes, for the exporter to refuse.

    Exact paths keep their file order in every format, so every such pair holds a pattern: the
    search is patterns times rules, not rules squared."""
    if not first_match(defaults):
        return {}
    place = {index: position for position, index in enumerate(written)}
    paths = _Paths(rules, defaults)
    patterns = [i for i in place if priority_key(i, rules[i], defaults)[0] != 0]
    found: dict[int, int] = {}
    for pattern in patterns:
        for other in place:
            earlier, later = min(pattern, other), max(pattern, other)
            if earlier == later or place[later] > place[earlier]:
                continue
            if earlier < found.get(later, later) and paths.overlap(earlier, later):
                found[later] = earlier
    return found


def repeated_rules(
    rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None
) -> dict[int, str]:
    """In a first-match set, the index of each rule that is the same rule as an earlier one (the
    same ``from`` and conditions: legal there, and it never applies), with the reason a format
    that holds one rule per path gives when it refuses it. Empty for a specificity set, where
    such rules are a load error already."""
    if not first_match(defaults):
        return {}
    rest = {key: value for key, value in (defaults or {}).items() if key != "order"}
    ruleset, _ = rules_from_mappings(list(rules), defaults=rest or None, pack_rules=False)
    first: dict[Hashable, int] = {}
    out: dict[int, str] = {}
    for rule in ruleset.rules:
        earlier = first.setdefault(rule_identity(rule), rule.index)
        if earlier != rule.index:
            out[rule.index] = (
                f"rule {earlier + 1} has the same 'from' and conditions and comes first, so this "
                "one never applies in 'order: first_match'"
            )
    return out
