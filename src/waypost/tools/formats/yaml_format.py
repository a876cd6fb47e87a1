"""Waypost's own YAML rules file, written losslessly with ``yaml.safe_dump``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ._common import Collector
from ._report import ExportResult, ImportResult, Unsupported
from ._text import clean_text

__all__ = ["export_yaml", "parse_yaml"]


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists, which safe_dump can write."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _rule_lines(text: str) -> list[int]:
    """The line of each entry of the ``rules`` sequence (or of a top-level sequence)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    sequence = root
    if isinstance(root, yaml.MappingNode):
        sequence = next((v for k, v in root.value if getattr(k, "value", None) == "rules"), None)
    if not isinstance(sequence, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in sequence.value]


def parse_yaml(text: str) -> ImportResult:
    """Read a Waypost YAML rules file: its ``rules``, ``defaults``, ``proxy_hosts`` and
    ``guards``.

    Only the shape is checked (each rule a mapping with a ``from``); the rule language itself is
    validated when the rules are loaded.
    """
    text = clean_text(text)
    collector = Collector()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        collector.skip(line, "", f"invalid YAML, nothing imported: {problem}")
        return collector.result("yaml")
    defaults: dict[str, Any] = {}
    proxy_hosts: list[str] = []
    guards: dict[str, Any] = {}
    if isinstance(data, dict):
        raw_guards = data.get("guards") or {}
        # Checked when the rules load, as the proxy hosts are.
        guards = dict(raw_guards) if isinstance(raw_guards, dict) else {}
        raw_defaults = data.get("defaults") or {}
        defaults = dict(raw_defaults) if isinstance(raw_defaults, dict) else {}
        raw_proxy = data.get("proxy_hosts") or []
        # Checked when the rules load; only a list of text is carried over here.
        if isinstance(raw_proxy, list):
            proxy_hosts = [host for host in raw_proxy if isinstance(host, str)]
        rules = data.get("rules") or []
    else:
        rules = data or []
    lines = text.split("\n")
    positions = _rule_lines(text)
    if not isinstance(rules, list):
        collector.skip(1, "", "'rules' must be a list")
        rules = []
    for index, rule in enumerate(rules):
        line = positions[index] if index < len(positions) else 1
        raw = lines[line - 1].strip() if line <= len(lines) else ""
        if not isinstance(rule, dict) or "from" not in rule:
            collector.skip(line, raw, "a rule must be a mapping with a 'from' pattern")
            continue
        collector.rules.append(rule)
    result = collector.result("yaml")
    return ImportResult(
        result.rules,
        result.skipped,
        "yaml",
        result.notes,
        defaults,
        proxy_hosts=proxy_hosts,
        guards=guards,
    )


def export_yaml(
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    allowed_hosts: Sequence[str] = (),
    proxy_hosts: Sequence[str] = (),
    guards: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Write rules (with ``defaults``, ``allowed_hosts``, ``proxy_hosts`` and ``guards``, the
    declarations each rule's ``require`` names) as a Waypost YAML rules file; nothing is
    lost."""
    plain: list[dict[str, Any]] = []
    unsupported: list[Unsupported] = []
    for index, rule in enumerate(rules):
        converted = _plain(rule)
        try:
            yaml.safe_dump(converted)
        except yaml.YAMLError as error:
            unsupported.append(
                Unsupported(index, dict(rule), f"cannot be written as YAML: {error}")
            )
            continue
        plain.append(converted)
    document: dict[str, Any] = {}
    if defaults:
        document["defaults"] = _plain(defaults)
    if allowed_hosts:
        document["allowed_hosts"] = list(allowed_hosts)
    if proxy_hosts:
        document["proxy_hosts"] = list(proxy_hosts)
    if guards:
        document["guards"] = _plain(guards)
    document["rules"] = plain
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return ExportResult(text, unsupported, len(plain))
