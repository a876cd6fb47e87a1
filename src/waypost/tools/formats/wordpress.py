"""WordPress Redirection plugin (redirection.me): its CSV and JSON exports.

The CSV export has the header ``source,target,regex,code,type,hits,title,status`` (older
versions: ``source,target,regex,type,code,match,hits,title``); columns are found by header name,
and a file without a header is read as the plugin's importer reads it: source, target, regex,
code. The JSON export is ``{"redirects": [{"url", "action_data": {"url"}, "action_code",
"action_type", "regex", "match_type", "match_data": {"source": {flags}}, "enabled"}]}``.

Mapping:

* ``action_type`` ``url`` with a 3xx code is a redirect; ``error`` (or a 4xx code) responds with
  the code; ``pass`` (pass-through) is a ``rewrite``; ``random`` and ``nothing`` are skipped.
* Only ``match_type: url`` imports; login, role, referrer, agent, cookie, header, IP, server,
  language and custom matches are skipped with the type named.
* Regex sources convert when the regex has a faithful Waypost pattern (see ``_regex``); the
  plugin runs them unanchored, so a regex without ``^`` is skipped.
* Source flags: ``flag_case`` true is ``case: insensitive``; ``flag_trailing`` false (the
  default) is ``trailing_slash: strict`` (a regex source is strict unless it ends in ``/?$``);
  ``flag_query`` ``pass`` keeps the query string, ``exact`` (the default) and ``ignore`` drop it. In
  ``exact`` mode a query in the source (``/page?id=3``)
  becomes ``when.query``. The plugin's exact mode also refuses requests carrying *other*
  parameters; Waypost's query conditions cannot say "no other parameters", so the imported rule
  matches those too.
* Disabled redirects (``status: disabled``, ``enabled: false``) are skipped.
* Order: the plugin tries the redirects that match a URL by their ``position`` (then their id) and
  applies the first, so the rules are written in that order (the JSON export's ``position`` and
  ``id``; the CSV export, which has neither, in its row order) with ``order: first_match``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ._common import REDIRECT_STATUSES, Collector, Refusal, is_absolute_url, query_condition
from ._json import element_lines, import_json
from ._regex import RegexNotSupported, convert_regex, parse_dollar_refs, render_ref_target
from ._report import ImportResult
from ._text import parse_bool, read_csv_rows

__all__ = ["parse_wordpress_csv", "parse_wordpress_json"]

_POSITIONAL = ("source", "target", "regex", "code")


def _build(
    source: str,
    target: str,
    *,
    regex: bool,
    code: int,
    action_type: str,
    flags: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    if not source:
        raise Refusal("the redirect has no source URL")
    if action_type in ("random", "nothing"):
        raise Refusal(f"the action {action_type!r} has no Waypost equivalent")
    if action_type == "error" or 400 <= code <= 599:
        action: dict[str, Any] = {"respond": code}
    elif action_type == "pass":
        if is_absolute_url(target):
            raise Refusal("a pass-through to another site is a proxy; Waypost cannot")
        action = {"rewrite": target}
    elif code in REDIRECT_STATUSES:
        action = {"to": target, "status": code}
    else:
        raise Refusal(f"code {code} is not a redirect, pass-through or error status")
    if ("to" in action or "rewrite" in action) and not target:
        raise Refusal("the redirect has no target URL")
    query_mode = flags.get("flag_query", "exact")
    extra: dict[str, Any] = {}
    if flags.get("flag_case") is True:
        extra["case"] = "insensitive"
    notes: tuple[str, ...] = ()
    rules: list[dict[str, Any]] = []
    if regex:
        converted = convert_regex(source, case_insensitive=flags.get("flag_case") is True)
        notes = converted.notes
        for pattern, empty in converted.variants():
            rule: dict[str, Any] = {"from": pattern}
            for key, value in action.items():
                if key in ("to", "rewrite"):
                    pieces = parse_dollar_refs(str(value), named=False)
                    value = render_ref_target(pieces, converted.refs, empty)
                rule[key] = value
            # A greedy (.*) keeps a trailing slash in what it captures, as PHP's preg_match
            # does: only an optional slash in the regex ('/?$') ignores it.
            if not converted.optional_slash:
                rule["trailing_slash"] = "strict"
            if converted.case_insensitive:
                rule["case"] = "insensitive"
            rules.append(rule)
    else:
        if is_absolute_url(source) or not source.startswith("/"):
            raise Refusal(f"the source {source!r} is not a path")
        path, _, query = source.partition("?")
        if "<" in path or ">" in path:
            raise Refusal(f"the source {path!r} contains '<' or '>', which patterns cannot")
        rule = {"from": path}
        for key, value in action.items():
            rule[key] = (
                value.replace("{", "{{").replace("}", "}}")
                if key != "respond" and key != "status"
                else value
            )
        if flags.get("flag_trailing") is not True:
            rule["trailing_slash"] = "strict"
        if query and query_mode == "exact":
            rule["when"] = {"query": query_condition(query)}
        rules.append(rule)
    for rule in rules:
        rule.update(extra)
        if "respond" not in rule and query_mode != "pass":
            rule["query"] = "drop"
    return rules, notes


_Built = tuple[list[dict[str, Any]], tuple[str, ...]]


def _collect(collector: Collector, line: int, raw: str, build: Callable[[], _Built]) -> None:
    """Add the rules ``build()`` makes of one redirect, with its notes, or skip the redirect
    with the reason it was refused."""
    try:
        rules, notes = build()
    except (Refusal, RegexNotSupported) as error:
        collector.skip(line, raw, str(error))
        return
    for note in notes:
        collector.note(line, raw, note)
    for rule in rules:
        collector.add(line, raw, rule)


def _from_csv(fields: list[str], columns: dict[str, int]) -> _Built:
    def field(name: str, default: str = "") -> str:
        index = columns.get(name)
        return fields[index] if index is not None and index < len(fields) else default

    status = field("status")
    if status.lower() == "disabled":
        raise Refusal("the redirect is disabled in WordPress")
    code_text = field("code", "301") or "301"
    if not code_text.isdigit():
        raise Refusal(f"code {code_text!r} is not a number")
    regex = parse_bool(field("regex", "0"))
    if regex is None:
        raise Refusal(f"regex {field('regex')!r} is not 0 or 1")
    match_type = field("match", "url") or "url"
    if match_type != "url":
        raise Refusal(f"the match type {match_type!r} has no Waypost equivalent")
    return _build(
        field("source"),
        field("target"),
        regex=regex,
        code=int(code_text),
        action_type=field("type", "url") or "url",
        flags={},
    )


def _from_json(item: Any) -> _Built:
    if not isinstance(item, dict):
        raise Refusal("a redirect must be an object")
    if item.get("enabled", True) is False or item.get("status") == "disabled":
        raise Refusal("the redirect is disabled in WordPress")
    match_type = item.get("match_type", "url")
    if match_type != "url":
        raise Refusal(f"the match type {match_type!r} has no Waypost equivalent")
    action_data = item.get("action_data")
    target = action_data.get("url", "") if isinstance(action_data, dict) else action_data or ""
    flags = ((item.get("match_data") or {}).get("source")) or {}
    code = item.get("action_code", 301)
    code = int(code) if str(code).isdigit() else 0
    regex = item.get("regex", flags.get("flag_regex", False))
    return _build(
        str(item.get("url", "")),
        str(target),
        regex=regex in (True, 1, "1", "true"),
        code=code,
        action_type=str(item.get("action_type", "url")),
        flags=flags if isinstance(flags, dict) else {},
    )


def _position(item: Any, index: int) -> tuple[int, int, int]:
    """Where the plugin tries ``item``: by ``position``, then by ``id`` (its order when positions
    tie), then where the export lists it."""

    def number(key: str) -> int:
        value = str(item.get(key) if isinstance(item, dict) else None)
        return int(value) if value.isdigit() else 0

    return number("position"), number("id"), index


def parse_wordpress_csv(text: str) -> ImportResult:
    """Read a Redirection CSV export; see the module docstring."""
    collector = Collector(first_match=True)
    columns: dict[str, int] = {name: index for index, name in enumerate(_POSITIONAL)}
    for position, (line, raw, fields) in enumerate(read_csv_rows(text)):
        if position == 0 and fields[0].lower() == "source":
            columns = {name.lower(): index for index, name in enumerate(fields)}
            continue
        _collect(collector, line, raw, partial(_from_csv, fields, columns))
    return collector.result("wordpress-csv")


def parse_wordpress_json(text: str) -> ImportResult:
    """Read a Redirection JSON export; see the module docstring."""
    return import_json(text, "wordpress-json", _read_json)


def _read_json(text: str, data: Any, collector: Collector) -> None:
    redirects = data.get("redirects") if isinstance(data, dict) else None
    if not isinstance(redirects, list):
        collector.skip(1, "", "the file has no 'redirects' list; is it a Redirection export?")
        return
    collector.first_match = True
    lines = element_lines(text, "redirects")
    for index in sorted(range(len(redirects)), key=lambda i: _position(redirects[i], i)):
        item = redirects[index]
        line = lines[index] if index < len(lines) else 1
        raw = json.dumps(item.get("url") if isinstance(item, dict) else item, ensure_ascii=False)
        _collect(collector, line, raw, partial(_from_json, item))
