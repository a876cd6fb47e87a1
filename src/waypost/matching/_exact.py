"""The exact-path rules: one dict per variant (trailing-slash mode x case mode), and the store.

Literal redirects the loader packed (:class:`~waypost.rules.model.PackedRule`) are found in their
compiled store (``waypost._plainstore``) instead of the dict, when every rule of the store is in the
rule set at its own index; a path that also has other rules gets a dict entry holding all of them,
which a lookup finds first.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

from waypost.exceptions import RuleError
from waypost.rules.model import PackedRule, Rule

__all__ = [
    "PREFIXES_FROM",
    "ExactTable",
    "PlainStore",
    "duplicate_error",
    "exact_prefixes",
    "merge_store",
    "usable_store",
]

# A waypost._plainstore.PlainStore (compiled; see rules/_build.py and _plainstore.pyi).
PlainStore = Any


@dataclass(frozen=True, slots=True)
class ExactTable:
    """The exact rules of one variant: path (normalized) to its rule, or its rules in file order."""

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


def duplicate_error(rule: Rule, other: Rule) -> RuleError:
    """The load error of ``rule``, which can never apply because of the earlier ``other``."""
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
PREFIXES_FROM = 20_000


def exact_prefixes(table: dict[str, Any], store: PlainStore | None) -> tuple[str, ...] | None:
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


def usable_store(rules: tuple[Rule, ...]) -> PlainStore | None:
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


def merge_store(
    store: PlainStore,
    rules: tuple[Rule, ...],
    table: dict[str, Rule | tuple[Rule, ...]],
    duplicates: list[tuple[int, RuleError]],
) -> None:
    """Paths of ``table`` (the default variant) that the store has too, or that the store has
    more than once, get an entry holding all their rules in file order, which lookups find
    first; duplicates are reported as they would be were every rule in ``table`` (the later
    rule, against the first earlier one like it)."""
    repeated: dict[int, list[int]] = {}
    for first, duplicate in store.duplicates:
        duplicates.append((duplicate, duplicate_error(rules[duplicate], rules[first])))
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
                    duplicates.append((rule.index, duplicate_error(rule, other)))
                    break
    # A path the store holds more than once (only its first rule is found there): every one
    # of its rules is a candidate, for explain() and the checks, and in a first-match file.
    for first, again in repeated.items():
        key = rules[first].path  # a packed rule's path is its lookup key
        if key not in table:
            table[key] = tuple(rules[i] for i in sorted((first, *again)))
