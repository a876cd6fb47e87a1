"""Checking a whole rule set before it is written, with the loader the rules files use.

The store keeps each rule as the mapping a person wrote (so an export reads like the file that was
imported) in JSON. :func:`to_json_value` turns what a YAML or JSON parser produced into plain JSON
values first, so what is checked is exactly what is stored and loaded back. :func:`check_rule_set`
builds the rules with :func:`~waypost.rules.load.rules_from_mappings` and then an
:class:`~waypost.engine.Engine` (which finds duplicates), and reports every problem with the path
of the field in the caller's request (``changes[2].rule.to``), in the loader's own words.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from waypost.engine import Engine
from waypost.exceptions import RulesError, ValidationError
from waypost.rules.load import rules_from_mappings
from waypost.rules.model import RuleSet

__all__ = ["check_rule_set", "dumps", "to_json_value"]

# rules_from_mappings() names a rule given in Python "rule #N" and its field ".key[0]".
_RULE_PREFIX = re.compile(r"rule #(\d+)(\S*?): (.*)\Z", re.DOTALL)
# Rules are checked for duplicates under this fake file name, one "line" per rule, so that the
# engine's messages can be traced back to the entry (and rewritten to name it).
_MARK = "\x00rule"
_MARK_REF = re.compile(re.escape(_MARK) + r"[:#](\d+)")


def dumps(value: object) -> str:
    """``value`` as compact JSON text (key order kept, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def to_json_value(value: object, path: str, problems: list[tuple[str, str]]) -> Any:
    """``value`` with dates as ISO 8601 text, tuples as lists and keys as text; anything JSON
    cannot hold is reported in ``problems`` (at ``path``) and replaced by None."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        problems.append((path, f"{value!r} is not a number JSON can hold"))
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool):
                problems.append((path, f"the key {key!r} is not text"))
                continue
            text = key if isinstance(key, str) else json.dumps(key)
            out[text] = to_json_value(item, f"{path}.{text}" if path else text, problems)
        return out
    if isinstance(value, list | tuple):
        return [to_json_value(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    problems.append((path, f"{type(value).__name__} value {value!r} cannot be stored as JSON"))
    return None


def _join(label: str, keys: str) -> str:
    return f"{label}{keys}" if label else keys.lstrip(".")


def check_rule_set(
    rules: Sequence[Any],
    labels: Sequence[str],
    *,
    defaults: Mapping[str, Any],
    allowed_hosts: Sequence[str],
    proxy_hosts: Sequence[str] = (),
    settings_label: str = "settings",
) -> RuleSet:
    """Build ``rules`` (in priority order) as the loader and the engine would; return the rule
    set, or raise :class:`~waypost.exceptions.ValidationError` with every problem.

    ``labels[i]`` is the path of ``rules[i]`` in the caller's request (``rules[4]``,
    ``changes[2].rule``); a problem in the defaults, allowed hosts or proxy hosts gets
    ``settings_label``. A rule that proxies to a host ``proxy_hosts`` lacks gets the loader's
    message, as in a rules file.
    """
    problems: list[tuple[str, str]] = []
    _, setting_errors = rules_from_mappings(
        [], defaults=defaults or None, allowed_hosts=allowed_hosts, proxy_hosts=proxy_hosts
    )
    seen = {error.message for error in setting_errors}
    problems.extend((settings_label, error.message) for error in setting_errors)
    ruleset, errors = rules_from_mappings(
        rules, defaults=defaults or None, allowed_hosts=allowed_hosts, proxy_hosts=proxy_hosts
    )
    for error in errors:
        found = _RULE_PREFIX.match(error.message)
        if found is not None and 0 < int(found[1]) <= len(labels):
            problems.append((_join(labels[int(found[1]) - 1], found[2]), found[3]))
        elif error.message not in seen:
            problems.append((settings_label, error.message))
    if problems:
        raise ValidationError(problems)
    marked = tuple(
        rule.replace(file=_MARK, line=number) for number, rule in enumerate(ruleset.rules, 1)
    )
    try:
        Engine(
            RuleSet(
                marked, ruleset.allowed_hosts, ruleset.defaults, proxy_hosts=ruleset.proxy_hosts
            )
        )
    except RulesError as exc:

        def name(match: re.Match[str]) -> str:
            index = int(match[1]) - 1
            return labels[index] if 0 <= index < len(labels) else match[0]

        for error in exc.errors:
            line = error.line if error.file == _MARK else None
            where = labels[line - 1] if line is not None and 0 < line <= len(labels) else ""
            problems.append((where, _MARK_REF.sub(name, error.message)))
        raise ValidationError(problems) from None
    return ruleset
