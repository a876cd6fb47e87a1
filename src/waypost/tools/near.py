"""Why nothing answered a path that ended in 404, as ``explain`` would say: the rule that nearly
matched it, for the not-found log (``waypost stats not-found``, ``/api/stats/not-found``).

:func:`nearly_matched` asks the engine, in this order:

1. what a rule did with the path: a rule that rewrote it (the app or the upstream then answered
   404 for the new path), or passed it on, or answers it now (added since the 404s);
2. the first rule whose pattern matched but that did not apply (``explain``'s ``skipped`` or
   ``refused`` step: a condition, a method, a host, a value it refused);
3. the first rule that answers a near form of the path: with or without its trailing slash, in
   lower case, without a file extension (``/about.html`` for a rule of ``/about``) or an
   ``index`` page, with one slash for each run of slashes.

Pure: no I/O. A rule set that answers none of these gives None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from waypost.engine import Engine
from waypost.rules.model import Rule

__all__ = ["NearMatch", "nearly_matched"]

_EXTENSION = re.compile(r"\.(?:html?|php[345]?|aspx?|jsp|cfm|shtml)\Z", re.IGNORECASE)
_INDEX = re.compile(r"/(?:index|default)\.(?:html?|php|aspx?)\Z", re.IGNORECASE)
_SLASHES = re.compile(r"//+")


@dataclass(frozen=True, slots=True)
class NearMatch:
    """The rule that nearly answered a path, and why it did not (or what it did)."""

    rule: Rule
    reason: str


def nearly_matched(engine: Engine, target: str, method: str = "GET") -> NearMatch | None:
    """The rule that nearly answered ``target`` (a path with its query, as sent), or None."""
    trace = engine.explain(method, target)
    decision = trace.decision
    rule = decision.rule
    if rule is not None:
        if decision.action == "rewrite":
            new = f"{decision.path}{'?' if decision.query else ''}{decision.query or ''}"
            return NearMatch(rule, f"it rewrites the path to {new!r}, which answered 404")
        if decision.action == "pass":
            return NearMatch(rule, "it passes the path on, and the app answered 404")
        # The rule set changed since: the 404s were counted before this rule answered.
        return NearMatch(rule, f"it answers the path now ({decision.action}), since the 404s")
    for step in trace.steps:
        if step.outcome in ("skipped", "refused"):
            return NearMatch(step.rule, f"its pattern matches, but {step.reason}")
    path, _, query = target.partition("?")
    for variant, how in _variants(path):
        found = engine.resolve(method, f"{variant}?{query}" if query else variant)
        if found.rule is not None and found.action != "pass":
            return NearMatch(found.rule, f"it answers {variant!r} ({how})")
    return None


def _variants(path: str) -> Iterator[tuple[str, str]]:
    """Near forms of ``path``, each once, with how it differs."""
    seen = {path}
    candidates: list[tuple[str, str]] = []
    if len(path) > 1 and path.endswith("/"):
        candidates.append((path.rstrip("/") or "/", "without the trailing slash"))
    elif not path.endswith("/"):
        candidates.append((path + "/", "with a trailing slash"))
    candidates.append((path.lower(), "in lower case"))
    candidates.append((_SLASHES.sub("/", path), "with single slashes"))
    index = _INDEX.search(path)
    if index is not None:
        candidates.append((path[: index.start()] + "/", "without the index page"))
    extension = _EXTENSION.search(path)
    if extension is not None and index is None:
        candidates.append((path[: extension.start()], f"without {extension[0]!r}"))
    for variant, how in candidates:
        if variant and variant not in seen:
            seen.add(variant)
            yield variant, how
