"""waypost.stats: the public surface of the analytics core, and the two recorders used together
the way the server will: record on the request path, drain and merge off it."""

from __future__ import annotations

import ast
from pathlib import Path

import waypost.stats
from waypost.stats import NotFoundLog, RuleHits, merge_not_found, merge_rule_deltas

INIT = Path(waypost.stats.__file__)


def test_all_matches_the_public_imports() -> None:
    tree = ast.parse(INIT.read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
    }
    assert set(waypost.stats.__all__) == imported
    for name in waypost.stats.__all__:
        obj = getattr(waypost.stats, name)
        if callable(obj):
            assert obj.__doc__, f"waypost.stats.{name} has no docstring"


def test_two_workers_record_and_their_drains_add_up() -> None:
    workers = [(RuleHits(), NotFoundLog()) for _ in range(2)]
    for n in range(10):
        hits, not_found = workers[n % 2]
        hits.record("rules.yaml:3", 3600.0 * n)
        not_found.record("/gone", "", None, None, float(n))
    rules = merge_rule_deltas(*(hits.drain() for hits, _ in workers))
    drain = merge_not_found(*(log.drain() for _, log in workers))
    assert [(d.key, d.hits, d.first, d.last, len(d.hours)) for d in rules] == [
        ("rules.yaml:3", 10, 0.0, 32400.0, 10)
    ]
    assert [(d.path, d.count, d.first, d.last) for d in drain.paths] == [("/gone", 10, 0.0, 9.0)]
