"""The order Apache applies its redirect directives in, carried over to Waypost's priority.

Apache does not try its directives in file order across modules. mod_rewrite hooks URL
translation (server context) and the fixups (``.htaccess``, ``<Directory>``) before mod_alias
does, so a ``RewriteRule`` takes a request before any ``Redirect`` or ``RedirectMatch``, wherever
the lines stand. One exception, in ``.htaccess`` only: an internal rewrite (no ``R``, ``F`` or
``G``) merely marks the request for an internal redirect, which happens after mod_alias's fixup
has run, so a ``Redirect`` matching the original path wins over it. (A real Apache 2.4 answers
so; ``tests/tools/formats/apache/test_order.py`` checks it.)

Waypost's priority is not file order either: exact paths first, then specificity, then file
order. So the rules are written in Apache's order (ties then go the right way) and every pair of
rules from different modules is checked on sample paths of both: where Waypost would offer the
later one first on a path both match, the later one is dropped if the earlier one takes every
path it would under the same conditions, and otherwise kept with a note saying where Waypost
answers differently. The check samples each variable with a few values, so it can miss an
overlap that only an unusual value reaches; it never drops a rule it has not seen covered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from waypost.engine import Engine
from waypost.exceptions import WaypostError

from .._priority import pattern_samples
from .._regex import RegexNotSupported, pattern_regex

__all__ = ["Entry", "Module", "apache_order"]

Module = Literal["rewrite", "alias"]

_SAFE = "/:@!$&'()*+,;=-._~"


@dataclass(slots=True)
class Entry:
    """The rules read from one line, with what decides their place in Apache's order."""

    line: int
    text: str
    module: Module
    #: Apache's order: lower goes first, then the line.
    rank: int
    rules: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    #: The RewriteCond lines of a RewriteRule, as (line, text).
    conditions: list[tuple[int, str]] = field(default_factory=list)
    #: Set by :func:`apache_order` when no rule of the line is left: why.
    skipped: str | None = None


def _bare(rule: dict[str, Any], name: str) -> dict[str, Any]:
    """``rule`` without its conditions, named, for asking which of two Waypost offers first."""
    out = {key: value for key, value in rule.items() if key != "when"}
    out["name"] = name
    return out


class _Matches:
    """Which paths a rule matches, by its Waypost pattern (conditions left out): the pattern's
    regex, compiled once per rule (an Engine for a pattern no regex says)."""

    def __init__(self) -> None:
        self._tests: dict[int, Callable[[str], bool]] = {}

    def __call__(self, rule: dict[str, Any], path: str) -> bool:
        test = self._tests.get(id(rule))
        if test is None:
            test = self._tests[id(rule)] = _path_test(rule)
        return test(path)


def _path_test(rule: dict[str, Any]) -> Callable[[str], bool]:
    try:
        regex, _names = pattern_regex(
            rule["from"], named=False, optional_slash=rule.get("trailing_slash") != "strict"
        )
        compiled = re.compile(regex, re.I if rule.get("case") == "insensitive" else 0)
        return lambda path: compiled.match(path) is not None
    except (RegexNotSupported, re.error):
        pass
    try:
        engine = Engine([_bare(rule, "one")])
    except WaypostError:
        return lambda path: False
    return lambda path: engine.resolve("GET", quote(path, safe=_SAFE)).action != "pass"


def _first(earlier: dict[str, Any], later: dict[str, Any], path: str) -> str | None:
    """Which of the two Waypost answers ``path`` with, offered in this order: the rule's role
    (``"earlier"``/``"later"``), or None when neither (or the pair does not load)."""
    try:
        engine = Engine([_bare(earlier, "earlier"), _bare(later, "later")])
    except WaypostError:
        # The same pattern twice: Waypost refuses the pair, so the later one must go.
        return "later" if earlier.get("when") == later.get("when") else None
    decision = engine.resolve("GET", quote(path, safe=_SAFE))
    return decision.rule.name if decision.rule is not None else None


def _describe(entry: Entry) -> str:
    return f"the {'RewriteRule' if entry.module == 'rewrite' else 'Redirect'} on line {entry.line}"


def _why(earlier: Entry) -> str:
    if earlier.module == "rewrite":
        return "mod_rewrite runs before mod_alias"
    return "in .htaccess a Redirect runs before the internal rewrite takes effect"


def apache_order(entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` in Apache's order, each rule Waypost would offer out of that order dropped
    (the earlier rule takes every path it would), narrowed (``not: {host}``, when the earlier
    one differs only by its host) or noted; see the module docstring."""
    ordered = sorted(entries, key=lambda entry: (entry.rank, entry.line))
    if len({entry.module for entry in entries}) < 2:
        return ordered  # one module: Apache's order is file order, checked where it is read
    matches = _Matches()
    kept: dict[Module, list[tuple[Entry, dict[str, Any]]]] = {"rewrite": [], "alias": []}
    for entry in ordered:
        dropped: dict[int, list[str]] = {}
        takers: dict[int, Entry] = {}
        narrowed: dict[int, tuple[str | list[str], list[str]]] = {}
        survivors: list[dict[str, Any]] = []
        for rule in entry.rules:
            for other, earlier in _takers(kept, entry, rule, matches):
                if earlier.get("when") in (None, rule.get("when")):
                    dropped.setdefault(other.line, []).append(rule["from"])
                    takers[other.line] = other
                    break
                negated = _give_way(rule, earlier)
                if negated is None:
                    survivors.append(rule)  # _conflicts notes it
                    break
                rule["when"] = negated
                narrowed.setdefault(other.line, (earlier["when"]["host"], []))[1].append(
                    rule["from"]
                )
                takers[other.line] = other
            else:
                survivors.append(rule)
        for line, (hosts, froms) in narrowed.items():
            taker = takers[line]
            entry.notes.append(
                f"{_describe(taker)} comes first in Apache ({_why(taker)}) on {_hosts(hosts)} "
                f"and takes every path of {', '.join(repr(f) for f in froms)} there, so "
                f"{'it was' if len(froms) == 1 else 'they were'} imported for the other hosts only"
            )
        entry.notes.extend(_conflicts(kept, entry, survivors, matches))
        if dropped:
            where = " and ".join(_describe(takers[n]) for n in dropped)
            why = _why(takers[next(iter(dropped))])
            if not survivors:
                entry.skipped = (
                    f"it never applies: {where} comes first in Apache ({why}) and takes every "
                    "path this one would"
                )
            else:
                patterns = ", ".join(repr(p) for froms in dropped.values() for p in froms)
                entry.notes.append(
                    f"{where} comes first in Apache ({why}) and takes {patterns}, so only "
                    f"{', '.join(repr(rule['from']) for rule in survivors)} was imported"
                )
        entry.rules = survivors
        kept[entry.module].extend((entry, rule) for rule in survivors)
    return ordered


def _others(
    kept: Mapping[Module, Sequence[tuple[Entry, dict[str, Any]]]], entry: Entry
) -> Sequence[tuple[Entry, dict[str, Any]]]:
    return kept["alias" if entry.module == "rewrite" else "rewrite"]


def _takers(
    kept: Mapping[Module, Sequence[tuple[Entry, dict[str, Any]]]],
    entry: Entry,
    rule: dict[str, Any],
    matches: _Matches,
) -> Iterator[tuple[Entry, dict[str, Any]]]:
    """The earlier rules (of the other module) that match every path ``rule`` matches, where
    Waypost would offer ``rule`` first, whatever their conditions."""
    own = [path for path in pattern_samples(rule["from"]) if matches(rule, path)]
    if not own:
        return
    for other, earlier in _others(kept, entry):
        if _exclusive(earlier.get("when"), rule.get("when")):
            continue
        if not all(matches(earlier, path) for path in own):
            continue
        if any(_first(earlier, rule, path) == "later" for path in own):
            yield other, earlier


def _give_way(rule: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any] | None:
    """``rule``'s conditions narrowed to leave ``earlier``'s hosts to it, or None when that
    cannot be said: only a condition on the host alone is negated, once."""
    theirs = earlier.get("when") or {}
    mine = dict(rule.get("when") or {})
    if set(theirs) != {"host"} or "not" in mine:
        return None
    mine["not"] = {"host": theirs["host"]}
    return mine


def _hosts(hosts: str | Sequence[str]) -> str:
    return repr(hosts) if isinstance(hosts, str) else " and ".join(repr(h) for h in hosts)


def _exclusive(one: dict[str, Any] | None, two: dict[str, Any] | None) -> bool:
    """True when no request meets both conditions because they name different hosts (two
    <VirtualHost> blocks, say), or one excludes the other's."""
    if not one or not two:
        return False
    # One left the other's hosts to it (see _give_way).
    if ("host" in one and two.get("not") == {"host": one["host"]}) or (
        "host" in two and one.get("not") == {"host": two["host"]}
    ):
        return True
    if "host" not in one or "host" not in two:
        return False
    hosts = [
        {when["host"]} if isinstance(when["host"], str) else set(when["host"])
        for when in (one, two)
    ]
    if any(host.startswith("*") for group in hosts for host in group):
        return False
    return not hosts[0] & hosts[1]


def _conflicts(
    kept: Mapping[Module, Sequence[tuple[Entry, dict[str, Any]]]],
    entry: Entry,
    rules: Sequence[dict[str, Any]],
    matches: _Matches,
) -> list[str]:
    """Notes for the paths where Waypost offers one of ``rules`` before an earlier entry's rule
    (of the other module) that Apache applies first: one per earlier line."""
    found: dict[int, tuple[Entry, dict[str, str]]] = {}
    for other, earlier in _others(kept, entry):
        for rule in rules:
            if _exclusive(earlier.get("when"), rule.get("when")):
                continue
            if rule["from"] in found.get(other.line, (other, {}))[1]:
                continue
            paths = dict.fromkeys(
                [*pattern_samples(rule["from"]), *pattern_samples(earlier["from"])]
            )
            both = [p for p in paths if matches(rule, p) and matches(earlier, p)]
            witness = next((p for p in both if _first(earlier, rule, p) == "later"), None)
            if witness is not None:
                found.setdefault(other.line, (other, {}))[1][rule["from"]] = witness
    notes = []
    for other, witnesses in found.values():
        notes.append(
            f"{_describe(other)} comes first in Apache ({_why(other)}), but Waypost's priority "
            f"offers {', '.join(repr(f) for f in witnesses)} first on the paths both match "
            f"(such as {', '.join(repr(p) for p in witnesses.values())}), which get this "
            "line's answer there when its conditions hold"
        )
    return notes
