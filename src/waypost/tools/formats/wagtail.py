"""Wagtail redirects: the CSV that Wagtail's redirect importer (admin and ``import_redirects``)
reads.

Wagtail reads two columns, "from" and "to" (chosen in its import form; here the first two columns,
or the columns whose header says from/old_path and to/redirect_link); whether the redirects are
permanent is a form option, so an optional ``permanent`` (true/false) or ``status`` column is read
when present and 301 is assumed otherwise. A header row is recognised and left out.

Wagtail normalises the old path: the host of a full URL is dropped (a note says so: the site is
chosen on import), a trailing slash is ignored (Waypost's default too), and a query string must
match, so a query in the source becomes ``when.query``. Every rule gets ``query: drop`` because
Wagtail does not forward the query string, and ``only_if_missing: true`` because Wagtail's
middleware only redirects requests the site answers with 404. An empty "to" is skipped:
Wagtail needs a link or a page.
"""

from __future__ import annotations

from typing import Any

from ._common import Collector, Refusal, query_condition, split_source_url, table_path
from ._report import ImportResult
from ._text import parse_bool, read_csv_rows

__all__ = ["parse_wagtail"]

_FROM = {"from", "old_path", "old path", "redirect from", "source", "old url", "old"}
_TO = {
    "to",
    "redirect_link",
    "redirect link",
    "new_path",
    "new path",
    "redirect to",
    "target",
    "new url",
    "new",
}
_PERMANENT = {"permanent", "is_permanent", "is permanent"}
_STATUS = {"status", "code", "status_code", "status code"}


def _header(fields: list[str]) -> dict[str, int] | None:
    lowered = [field.lower() for field in fields]
    columns: dict[str, int] = {}
    for index, name in enumerate(lowered):
        for key, names in (
            ("from", _FROM),
            ("to", _TO),
            ("permanent", _PERMANENT),
            ("status", _STATUS),
        ):
            if name in names and key not in columns:
                columns[key] = index
    if "from" in columns and "to" in columns:
        return columns
    if fields and not fields[0].startswith("/") and "://" not in fields[0] and "." not in fields[0]:
        return {"from": 0, "to": 1}
    return None


def _read(fields: list[str], columns: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
    def cell(key: str) -> str:
        index = columns.get(key)
        return fields[index] if index is not None and index < len(fields) else ""

    source, target = cell("from"), cell("to")
    if not source:
        raise Refusal("the row has no 'from' path")
    if not target:
        raise Refusal("the row has no 'to' link; Wagtail needs a link or a page")
    status = 301
    if cell("status"):
        if not cell("status").isdigit() or int(cell("status")) not in (301, 302, 303, 307, 308):
            raise Refusal(f"status {cell('status')!r} is not a redirect status")
        status = int(cell("status"))
    elif cell("permanent"):
        permanent = parse_bool(cell("permanent"))
        if permanent is None:
            raise Refusal(f"permanent {cell('permanent')!r} is not true or false")
        status = 301 if permanent else 302
    notes = []
    _scheme, host, path, query = split_source_url(source)
    if host:
        notes.append(
            f"the host {host!r} was dropped: Wagtail redirects belong to the site chosen on import"
        )
    path = table_path(path)
    rule: dict[str, Any] = {
        "from": path,
        "to": target.replace("{", "{{").replace("}", "}}"),
        "status": status,
        "query": "drop",
        "only_if_missing": True,
    }
    if query:
        rule["when"] = {"query": query_condition(query)}
    return rule, notes


def parse_wagtail(text: str) -> ImportResult:
    """Read a Wagtail redirects CSV; see the module docstring."""
    collector = Collector()
    columns: dict[str, int] = {"from": 0, "to": 1}
    for position, (line, raw, fields) in enumerate(read_csv_rows(text)):
        if position == 0:
            header = _header(fields)
            if header is not None:
                columns = header
                continue
        try:
            rule, notes = _read(fields, columns)
        except Refusal as refusal:
            collector.skip(line, raw, str(refusal))
            continue
        collector.add(line, raw, rule, notes)
    return collector.result("wagtail")
