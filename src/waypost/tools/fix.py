"""``waypost check --fix``: rewrite the ``to:`` (and ``status:``) of chained rules in place.

The edit touches nothing but the values it changes, so comments, key order, quoting and blank
lines stay as they were:

- YAML and JSON: the positions of each rule's ``to`` and ``status`` values come from the YAML
  parser (JSON is YAML's flow syntax); only those characters are replaced, and a ``status`` the
  rule did not have is added on the line after ``to`` (or after it in a ``{...}`` mapping);
- TOML: ``to = ...`` and ``status = ...`` lines under the rule's ``[[rules]]`` header;
- CSV: the rule's row is written again (and every row, when a ``status`` column must be added).

The new text is parsed again and refused unless every rule loads and the fixed rules now say
what the fix said: :func:`apply_fixes` never returns a file that would load differently from
what was asked. Pure: text in, text out; the CLI reads and writes the file (atomically).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from waypost.exceptions import FixError
from waypost.rules.load import csv_rows, parse_rules, rules_from_mappings
from waypost.rules.model import Redirect, Rule
from waypost.tools.check import Fix

__all__ = ["FixError", "apply_fixes"]

_PLAIN = re.compile(r"[A-Za-z0-9/_.~%+=&?@!$*();:',\[\]{}-]+\Z")
_FLOW_INDICATORS = frozenset(",[]{}")
_TOML_HEADER = re.compile(r"^\s*\[")
_TOML_RULES = re.compile(r"^\s*\[\[\s*rules\s*\]\]")
_TOML_STRING = r"(?:\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')"
_TOML_TO = re.compile(rf"^(?P<head>\s*(?:to|\"to\"|'to')\s*=\s*)(?P<value>{_TOML_STRING})")
_TOML_STATUS = re.compile(r"^(?P<head>\s*(?:status|\"status\"|'status')\s*=\s*)(?P<value>\d+)")


# --------------------------------------------------------------------------------------------
# YAML and JSON


def _yaml_scalar(value: str, *, style: str | None, flow: bool) -> str:
    """``value`` written as a YAML scalar, plain when that reads back the same."""
    plain = (
        style is None
        and _PLAIN.match(value) is not None
        and value[0] not in "'-?:!&*%@,[]{}"
        and not (flow and _FLOW_INDICATORS & set(value))
        and ": " not in value
    )
    if plain:
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
    if plain:
        return value
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, ensure_ascii=False)


def _rules_sequence(root: Node | None) -> SequenceNode | None:
    if isinstance(root, SequenceNode):
        return root
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if (
                isinstance(key, ScalarNode)
                and key.value == "rules"
                and isinstance(value, SequenceNode)
            ):
                return value
    return None


def _entry(item: Node, name: str) -> tuple[ScalarNode, Node] | None:
    if not isinstance(item, MappingNode):
        return None
    for key, value in item.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    return None


def _fix_yaml(text: str, fixes: Sequence[Fix], *, json_syntax: bool, file: str) -> str:
    # Tabs are not YAML indentation but are fine in JSON; the same length keeps the offsets.
    source = text.replace("\t", " ") if json_syntax else text
    try:
        rules = _rules_sequence(yaml.compose(source, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise FixError(f"{file}: cannot read the file again to fix it: {exc}") from None
    if rules is None:
        raise FixError(f"{file}: no 'rules:' list found to fix")
    edits: list[tuple[int, int, str]] = []
    for fix in fixes:
        rule = fix.rule
        item = rules.value[rule.index] if rule.index < len(rules.value) else None
        if item is None or (rule.line is not None and item.start_mark.line + 1 != rule.line):
            raise FixError(f"{rule.source}: the file changed since it was checked; run check again")
        found = _entry(item, "to")
        to_key, to_value = found if found is not None else (None, None)
        if to_key is None or not isinstance(to_value, ScalarNode):
            raise FixError(f"{rule.source}: no plain 'to:' value to rewrite; fix this rule by hand")
        flow = bool(item.flow_style) or json_syntax
        new = (
            json.dumps(fix.target, ensure_ascii=False)
            if json_syntax
            else _yaml_scalar(fix.target, style=to_value.style, flow=flow)
        )
        edits.append((to_value.start_mark.index, to_value.end_mark.index, new))
        if fix.status is None:
            continue
        status = _entry(item, "status")
        if status is not None:
            edits.append((status[1].start_mark.index, status[1].end_mark.index, str(fix.status)))
            continue
        end = to_value.end_mark.index
        if flow:
            key = '"status"' if json_syntax else "status"
            edits.append((end, end, f", {key}: {fix.status}"))
        else:
            newline = text.find("\n", end)
            at = len(text) if newline < 0 else newline + 1
            line = " " * to_key.start_mark.column + f"status: {fix.status}\n"
            edits.append((at, at, line if newline >= 0 else "\n" + line))
    return _apply_edits(text, edits)


def _apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    # From the end backwards, so earlier offsets stay valid; inserts at one offset keep order.
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


# --------------------------------------------------------------------------------------------
# TOML


def _replace_value(regex: re.Pattern[str], line: str, new: str) -> str:
    match = regex.match(line)
    if match is None:  # pragma: no cover - the caller matched this line already
        return line
    return line[: match.start("value")] + new + line[match.end("value") :]


def _fix_toml(text: str, fixes: Sequence[Fix], *, file: str) -> str:
    lines = text.splitlines(keepends=True)
    inserts: dict[int, str] = {}
    for fix in fixes:
        rule = fix.rule
        start = (rule.line or 0) - 1
        if not (0 <= start < len(lines)) or not _TOML_RULES.match(lines[start]):
            raise FixError(
                f"{rule.source}: no [[rules]] header on this line; --fix edits TOML rules written "
                "as [[rules]] tables (fix this rule by hand)"
            )
        end = start + 1
        while end < len(lines) and not (
            _TOML_HEADER.match(lines[end]) and not lines[end].lstrip().startswith("[rules.")
        ):
            end += 1
        to_line = status_line = None
        for number in range(start + 1, end):
            if _TOML_TO.match(lines[number]):
                to_line = number
            elif _TOML_STATUS.match(lines[number]):
                status_line = number
        if to_line is None:
            raise FixError(
                f"{rule.source}: no 'to = \"...\"' line under this [[rules]]; fix it by hand"
            )
        lines[to_line] = _replace_value(
            _TOML_TO, lines[to_line], json.dumps(fix.target, ensure_ascii=False)
        )
        if fix.status is None:
            continue
        if status_line is not None:
            lines[status_line] = _replace_value(_TOML_STATUS, lines[status_line], str(fix.status))
        else:
            indent = lines[to_line][: len(lines[to_line]) - len(lines[to_line].lstrip())]
            ending = "\r\n" if lines[to_line].endswith("\r\n") else "\n"
            if not lines[to_line].endswith("\n"):
                lines[to_line] += ending
            inserts[to_line] = f"{indent}status = {fix.status}{ending}"
    for number in sorted(inserts, reverse=True):
        lines.insert(number + 1, inserts[number])
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# CSV


def _fix_csv(text: str, fixes: Sequence[Fix], *, file: str) -> str:
    by_line = {fix.rule.line: fix for fix in fixes}
    lines = text.splitlines(keepends=True)
    ending = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    header: list[str] | None = None
    header_span: tuple[int, int] | None = None
    rows: list[tuple[int, int, list[str]]] = []
    try:
        for start, end, row in csv_rows(io.StringIO(text, newline="")):
            if header is None:
                header, header_span = row, (start, end)
                continue
            rows.append((start, end, row))
    except csv.Error as exc:
        raise FixError(f"{file}: cannot read the CSV again to fix it: {exc}") from None
    if header is None or header_span is None:
        raise FixError(f"{file}: the CSV file has no header")
    names = [h.strip().lower() for h in header]
    add_status = "status" not in names and any(f.status is not None for f in fixes)
    if add_status:
        header = [*header, "status"]
        names.append("status")
    to_col, status_col = names.index("to"), names.index("status") if "status" in names else None

    def write(row: list[str]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator=ending).writerow(row)
        return out.getvalue()

    replacements: dict[int, tuple[int, str]] = {}
    if add_status:
        replacements[header_span[0]] = (header_span[1], write(header))
    for start, stop, row in rows:
        fix = by_line.pop(start, None)
        if fix is None and not add_status:
            continue
        new = list(row)
        if add_status:
            new.append("")
        if fix is not None:
            new[to_col] = fix.target
            if fix.status is not None and status_col is not None:
                new[status_col] = str(fix.status)
        replacements[start] = (stop, write(new))
    if by_line:
        missing = next(iter(by_line.values())).rule
        raise FixError(f"{missing.source}: the file changed since it was checked; run check again")
    out: list[str] = []
    number = 1
    while number <= len(lines):
        if number in replacements:
            stop, new_text = replacements[number]
            if not lines[stop - 1].endswith(("\n", "\r")):
                new_text = new_text.rstrip("\r\n")
            out.append(new_text)
            number = stop + 1
        else:
            out.append(lines[number - 1])
            number += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------


def _verify(text: str, format: str, fixes: Sequence[Fix], file: str) -> None:
    ruleset, errors = parse_rules(text, format=format, file=file)
    if errors:
        raise FixError(f"{file}: the fixed file would not load ({errors[0]}); nothing was written")
    by_index = {rule.index: rule for rule in ruleset.rules}
    for fix in fixes:
        rule: Rule | None = by_index.get(fix.rule.index)
        action = rule.action if rule is not None else None
        want_status = fix.status if fix.status is not None else _status(fix.rule)
        # Compare with the target as the loader reads it ('{{' unescaped, '{' percent-encoded).
        wanted, _ = rules_from_mappings([{"from": fix.rule.path, "to": fix.target}])
        texts = {
            fix.target,
            *(r.action.text for r in wanted.rules if isinstance(r.action, Redirect)),
        }
        if (
            not isinstance(action, Redirect)
            or action.text not in texts
            or (action.status != want_status)
        ):
            raise FixError(
                f"{fix.rule.source}: the fix would not read back as 'to: {fix.target}'; "
                "nothing was written (fix this rule by hand)"
            )


def _status(rule: Rule) -> Any:
    return rule.action.status if isinstance(rule.action, Redirect) else None


def apply_fixes(text: str, format: str, fixes: Sequence[Fix], *, file: str = "<rules>") -> str:
    """``text`` (a rules file in ``format``) with every fix applied; raises :class:`FixError`.

    ``format`` is ``yaml``, ``json``, ``toml`` or ``csv``. The result is parsed again and
    checked before it is returned.
    """
    if not fixes:
        return text
    if format == "yaml":
        fixed = _fix_yaml(text, fixes, json_syntax=False, file=file)
    elif format == "json":
        fixed = _fix_yaml(text, fixes, json_syntax=True, file=file)
    elif format == "toml":
        fixed = _fix_toml(text, fixes, file=file)
    elif format == "csv":
        fixed = _fix_csv(text, fixes, file=file)
    else:
        raise FixError(f"{file}: --fix cannot edit {format!r} files; use yaml, json, toml or csv")
    _verify(fixed, format, fixes, file)
    return fixed
