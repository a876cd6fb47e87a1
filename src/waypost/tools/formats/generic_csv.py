"""A generic CSV of Waypost rules: ``from,to,status`` and an optional ``name`` column.

``from`` and ``to`` are written in Waypost's own syntax (``/blog/<int:year>``, ``{year}``). The
delimiter is sniffed (comma, semicolon, tab or pipe). A row with an error status (4xx, 5xx) and
an empty ``to`` responds with that status. A file without a header row is read as
``from,to,status,name`` and a note says so.

The file is read by Waypost, which checks every target it fills in (docs/rules.md, "Safety"), so a
target that starts with a value (``/{to}``) is safe to write. One whose host comes from the
request is not written: the file has no place for ``allowed_hosts``, so Waypost reading it would
refuse every host (400) where the rules allowed some.

The file has no place for ``defaults`` either, so Waypost reads it in specificity order: a rule
of an ``order: first_match`` rule set that specificity would try before an earlier rule of the
file, on a path both match, is not written (see ``_priority``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from ._common import (
    REDIRECT_STATUSES,
    Collector,
    Refusal,
    check_baseline,
    needs_strict,
    unsupported_keys,
)
from ._priority import out_of_order, priority_order, repeated_rules
from ._report import ExportResult, ImportResult, export_each
from ._safety import exposure
from ._text import read_csv_rows

__all__ = ["export_csv", "parse_csv"]

_COLUMNS = ("from", "to", "status", "name")


def _read(fields: list[str], columns: Mapping[str, int]) -> dict[str, Any]:
    def cell(key: str) -> str:
        index = columns.get(key)
        return fields[index] if index is not None and index < len(fields) else ""

    source, target, status_text, name = cell("from"), cell("to"), cell("status"), cell("name")
    if not source.startswith("/"):
        raise Refusal(f"'from' {source!r} must be a path starting with '/'")
    if status_text and not status_text.isdigit():
        raise Refusal(f"status {status_text!r} is not a number")
    status = int(status_text) if status_text else None
    rule: dict[str, Any] = {"from": source}
    if target:
        if status is not None and status not in REDIRECT_STATUSES:
            raise Refusal(f"status {status} is not a redirect status (301, 302, 303, 307, 308)")
        rule["to"] = target
        if status is not None:
            rule["status"] = status
    elif status is not None and 400 <= status <= 599:
        rule["respond"] = status
    else:
        raise Refusal("the row needs a 'to' target, or an error status with an empty 'to'")
    if name:
        rule["name"] = name
    return rule


def parse_csv(text: str) -> ImportResult:
    """Read a generic ``from,to,status[,name]`` CSV; see the module docstring."""
    collector = Collector()
    columns = {name: index for index, name in enumerate(_COLUMNS)}
    for position, (line, raw, fields) in enumerate(read_csv_rows(text)):
        if position == 0:
            lowered = [field.lower() for field in fields]
            if "from" in lowered:
                columns = {name: index for index, name in enumerate(lowered) if name in _COLUMNS}
                continue
            collector.note(line, raw, "no header row; columns read as from,to,status,name")
        try:
            rule = _read(fields, columns)
        except Refusal as refusal:
            collector.skip(line, raw, str(refusal))
            continue
        collector.add(line, raw, rule)
    return collector.result("csv")


def _export_row(rule: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> list[Any]:
    eff = check_baseline(rule, defaults)
    reason = unsupported_keys(
        eff, {"to", "respond", "status", "query", "trailing_slash", "case"}, set()
    )
    if reason:
        raise Refusal(reason)
    if eff.get("query", "keep") != "keep":
        raise Refusal("the CSV has no column for 'query: drop'")
    if needs_strict(eff) or eff["case"] != "sensitive":
        raise Refusal("the CSV has no column for 'trailing_slash' or 'case'")
    if "to" in eff:
        host = exposure(str(eff["to"])).host
        if host is not None:
            raise Refusal(
                f"{{{host.name}}} fills in the target's host ({host.template}), and the "
                "CSV has no place for allowed_hosts: Waypost would refuse every host"
            )
        return [eff["from"], eff["to"], eff["status"], eff.get("name", "")]
    respond = eff["respond"]
    if isinstance(respond, Mapping):
        if set(respond) != {"status"}:
            raise Refusal("the CSV has no column for a response body or headers")
        respond = respond["status"]
    return [eff["from"], "", respond, eff.get("name", "")]


def export_csv(
    rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None
) -> ExportResult:
    """Write rules as ``from,to,status,name`` CSV rows (statuses written out)."""
    by_specificity = {key: value for key, value in (defaults or {}).items() if key != "order"}
    jumps = out_of_order(rules, defaults, priority_order(rules, by_specificity))
    repeats = repeated_rules(rules, defaults)

    position = {id(rule): index for index, rule in enumerate(rules)}

    def export_row(rule: Mapping[str, Any]) -> list[Any]:
        index = position[id(rule)]
        if index in repeats:
            raise Refusal(
                repeats[index] + "; a CSV table has no order, and the two would be duplicates there"
            )
        if index in jumps:
            raise Refusal(
                f"the CSV is read in specificity order, which tries this rule before rule "
                f"{jumps[index] + 1} on paths both match, where 'order: first_match' tries "
                "that one first"
            )
        return _export_row(rule, defaults)

    made, unsupported = export_each(rules, export_row)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    writer.writerows(row for _, _, row in made)
    return ExportResult(buffer.getvalue(), unsupported, len(made))
