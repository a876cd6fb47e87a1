"""Vercel: the ``redirects`` and ``rewrites`` of ``vercel.json``.

Import reads path-to-regexp sources:

* ``:slug`` becomes ``<slug>``; ``:id(\\d+)`` becomes ``<int:id>``, ``:id([^/]+)`` ``<id>`` and
  ``:kind(a|b)`` ``<any(a,b):kind>``; any other regex is skipped with the regex quoted.
* ``:path+`` at the end becomes ``<path:path>``. ``:path*`` and ``:slug?`` at the end also match
  nothing, so they give two rules: one without the segment (the target loses ``/:path*`` too) and
  one with it. ``:path(.+)`` at the end becomes ``<path:path>`` with ``trailing_slash: strict``:
  its greedy group keeps the slash a request ends with (``/a/:p(.+)`` gives ``b/`` for
  ``/a/b/``), as a strict path variable does.
* ``has`` items of type host, header, cookie and query become ``when.host``, ``when.headers``,
  ``when.cookies`` and ``when.query`` (a missing ``value`` means "present"); ``missing`` items go to
  ``when.not``. Values must be literal text: Vercel reads them as anchored regexes, and one with
  regex syntax is skipped.
* ``statusCode`` wins over ``permanent`` (308, the default) / ``permanent: false`` (307).
  Vercel matches case-insensitively unless ``caseSensitive`` is true, so imported rules get
  ``case: insensitive`` unless the source says otherwise.
* Vercel matches the trailing slash exactly: rules get ``trailing_slash: strict``, and the
  ``/x`` + ``/x/`` entry pair the exporter writes for an ignored slash reads back as one rule.
* ``rewrites`` to a path become ``rewrite``; to a URL they are proxies and are skipped.
  ``routes`` (the legacy syntax), ``basePath`` and ``locale`` are skipped.

Export writes ``statusCode`` explicitly and ``caseSensitive: true`` for case-sensitive rules, and
a path variable as ``:name(.+)`` when the rule is strict, else as ``:name+``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._canon import (
    Placeholder,
    Variable,
    ends_with_path_variable,
    parse_pattern_pieces,
    parse_target_pieces,
)
from ._common import (
    REDIRECT_STATUSES,
    Collector,
    Refusal,
    check_baseline,
    is_absolute_url,
    merge_slash_twins,
    single_value,
    slash_twins,
    unsupported_keys,
)
from ._json import element_lines, import_json
from ._priority import overlap, priority_order
from ._regex import Guard, target_guards
from ._report import ExportResult, ImportResult, Unsupported, export_each
from ._safety import CONTROLS, LEAD_GUARD

__all__ = ["export_vercel", "parse_vercel"]


def _grouped(depth: int) -> str:
    """A regex for text whose parentheses nest at most ``depth`` deep (escapes aside)."""
    inner = r"(?:[^()\\]|\\.)*"
    for _level in range(depth):
        inner = rf"(?:[^()\\]|\\.|\({inner}\))*"
    return inner


# A parameter's regex may hold groups, three deep (the host regexes the export writes do).
_PARAM = re.compile(rf":([A-Za-z_]\w*)(?:\(({_grouped(3)})\))?([*+?])?")
_REGEX_SYNTAX = re.compile(r"[\^$*+?()\[\]{}|\\]")
_WORDS = re.compile(r"[\w.~-]+(?:\|[\w.~-]+)+")
_CONDITION_KEYS = {"header": "headers", "cookie": "cookies", "query": "query"}

# A value that starts the destination's path ('/:to') must not start with '/' or '\\', and no
# value that could lead off-site may hold a control character. Vercel does not document whether
# it matches the decoded path or the path as sent, so both spellings are kept out: '%2F', '%5C'
# and '%00'-'%1F', '%7F' as well as the characters themselves. One character of a segment:
_SEGMENT_CHAR = f"(?:[^/#?%{CONTROLS}]|%(?![01]|7[fF]))"
_LEAD = f"(?!%2[fF]|%5[cC]|{LEAD_GUARD.removeprefix('(?!')}"
#: The parameter regexes of a value that starts the path: one segment, and a path.
_LEAD_SEGMENT = f"{_LEAD}{_SEGMENT_CHAR}+"
_LEAD_PATH = f"{_LEAD}(?:{_SEGMENT_CHAR}|/)+"


def _param_converter(name: str, regex: str | None) -> str:
    if regex is None or regex in ("[^/]+", _LEAD_SEGMENT):
        return f"<{name}>"
    if regex in (r"\d+", "[0-9]+"):
        return f"<int:{name}>"
    if _WORDS.fullmatch(regex):
        return f"<any({regex.replace('|', ',')}):{name}>"
    raise Refusal(f"the parameter ':{name}({regex})' uses a regex Waypost has no converter for")


def _convert_source(source: str) -> tuple[list[str], set[str], str | None, bool]:
    """Waypost patterns for a source (one, or two when the last segment is optional).

    Returns the patterns (the bare one first), the parameter names, the name of the optional
    last parameter, if any, and whether a last ``:name(.+)`` keeps the trailing slash.
    """
    if not source.startswith("/"):
        raise Refusal(f"the source {source!r} does not start with '/'")
    if "<" in source or ">" in source:
        raise Refusal(f"the source {source!r} contains '<' or '>', which Waypost patterns cannot")
    out: list[str] = []
    names: set[str] = set()
    optional: str | None = None
    strict_path = False
    pos = 0
    for match in _PARAM.finditer(source):
        literal = source[pos : match.start()]
        if "(" in literal or ")" in literal or "*" in literal:
            raise Refusal(f"the source {source!r} has an unnamed group or wildcard; name it")
        out.append(literal)
        name, regex, modifier = match.groups()
        names.add(name)
        at_end = match.end() == len(source)
        whole = source[: match.start()].endswith("/")
        if modifier in ("*", "+", "?") and not (at_end and whole):
            raise Refusal(
                f"':{name}{modifier}' is only supported as the whole last segment of the source"
            )
        if modifier in ("*", "+"):
            if regex is not None and regex != _LEAD_SEGMENT:
                raise Refusal(f"':{name}({regex}){modifier}' repeats a regex; Waypost cannot")
            out.append(f"<path:{name}>")
        elif regex in (".+", _LEAD_PATH) and not modifier and at_end and whole:
            out.append(f"<path:{name}>")
            strict_path = True
        else:
            out.append(_param_converter(name, regex))
        if modifier in ("*", "?"):
            optional = name
        if not at_end and re.match(r"\w", source[match.end()]):
            raise Refusal(f"':{name}' is followed by a letter; path-to-regexp reads one name")
        pos = match.end()
    tail = source[pos:]
    if "(" in tail or ")" in tail or "*" in tail:
        raise Refusal(f"the source {source!r} has an unnamed group or wildcard; name it")
    if optional is None:
        return ["".join(out) + tail], names, None, strict_path
    bare = "".join(out[:-2]) + out[-2].rstrip("/")
    return [bare or "/", "".join(out)], names, optional, strict_path


def _convert_destination(destination: str, names: set[str], empty: str | None) -> str:
    if re.search(r"\$\d", destination):
        raise Refusal("the destination uses numbered groups ($1); name the parameters instead")
    # Vercel splits the destination as a URL before it fills in parameters (routing-utils'
    # replaceSegments), so the first '?' starts the query even right after a parameter: in
    # '/p/:id?name=:slug' it is not path-to-regexp's "optional" modifier.
    path, mark, query = destination.partition("?")
    result = _convert_destination_part(path, names, empty)
    if mark:
        result += mark + _convert_destination_part(query, names, empty)
    return result or "/"


def _convert_destination_part(destination: str, names: set[str], empty: str | None) -> str:
    out: list[str] = []
    pos = 0
    for match in _PARAM.finditer(destination):
        name, regex, _modifier = match.groups()
        literal = destination[pos : match.start()]
        if name not in names or regex is not None:
            out.append((literal + match.group(0)).replace("{", "{{").replace("}", "}}"))
        elif name == empty:
            if literal.endswith("/"):
                literal = literal[:-1]
            out.append(literal.replace("{", "{{").replace("}", "}}"))
        else:
            out.append(literal.replace("{", "{{").replace("}", "}}") + f"{{{name}}}")
        pos = match.end()
    out.append(destination[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def _conditions(items: Any, where: str) -> dict[str, Any]:
    if not isinstance(items, list):
        raise Refusal(f"'{where}' must be a list")
    when: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise Refusal(f"cannot read the '{where}' item {item!r}")
        kind, value = item["type"], item.get("value")
        if value is not None and (not isinstance(value, str) or _REGEX_SYNTAX.search(value)):
            raise Refusal(
                f"the {kind} value {value!r} in '{where}' is a regex; only literal values import"
            )
        if kind == "host":
            if value is None:
                raise Refusal(f"a host item in '{where}' needs a value")
            if "host" in when:
                raise Refusal(f"'{where}' has two host items")
            when["host"] = value.lower()
        elif kind in _CONDITION_KEYS:
            key = item.get("key")
            if not isinstance(key, str):
                raise Refusal(f"a {kind} item in '{where}' needs a key")
            when.setdefault(_CONDITION_KEYS[kind], {})[key] = "*" if value is None else value
        else:
            raise Refusal(f"the '{where}' type {kind!r} has no Waypost equivalent")
    return when


def _read_entry(entry: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(entry, dict):
        raise Refusal(f"a {kind} entry must be an object")
    for key in ("basePath", "locale"):
        if key in entry:
            raise Refusal(f"'{key}' (a Next.js option) has no Waypost equivalent")
    source, destination = entry.get("source"), entry.get("destination")
    if not isinstance(source, str) or not isinstance(destination, str):
        raise Refusal("the entry needs 'source' and 'destination' strings")
    patterns, names, optional, strict_path = _convert_source(source)
    when = _conditions(entry.get("has", []), "has")
    missing = _conditions(entry.get("missing", []), "missing")
    if missing:
        when["not"] = missing
    base: dict[str, Any] = {}
    if kind == "redirects":
        status = entry.get("statusCode")
        if status is None:
            status = 307 if entry.get("permanent", True) is False else 308
        if status not in REDIRECT_STATUSES:
            raise Refusal(f"statusCode {status!r} is not a redirect status")
        base["status"] = status
    elif is_absolute_url(destination):
        raise Refusal("a rewrite to another site is a proxy; Waypost rewrites only within the app")
    if entry.get("caseSensitive") is not True:
        base["case"] = "insensitive"
    base["trailing_slash"] = "strict"
    if when:
        base["when"] = when
    action = "to" if kind == "redirects" else "rewrite"
    rules = []
    for pattern in patterns:
        empty = optional if pattern == patterns[0] and len(patterns) == 2 else None
        target = _convert_destination(destination, names, empty)
        rule = {"from": pattern, action: target, **base}
        if ends_with_path_variable(pattern) and not strict_path:
            # ':name+' and ':name*' leave a trailing slash out of the value, as Waypost does
            # when it ignores the slash.
            del rule["trailing_slash"]
        rules.append(rule)
    return rules


def parse_vercel(text: str) -> ImportResult:
    """Read the ``redirects`` and ``rewrites`` of a ``vercel.json``; see the module docstring."""
    return import_json(text, "vercel", _read_vercel)


def _read_vercel(text: str, data: Any, collector: Collector) -> None:
    if not isinstance(data, dict):
        collector.skip(1, "", "vercel.json must hold an object")
        return
    lines = text.split("\n")
    for kind in ("redirects", "rewrites", "routes"):
        entries = data.get(kind) or []
        if not isinstance(entries, list):
            collector.skip(1, "", f"'{kind}' must be a list")
            continue
        positions = element_lines(text, kind)
        for index, entry in enumerate(entries):
            number = positions[index] if index < len(positions) else 1
            raw = json.dumps(entry, ensure_ascii=False) if positions else lines[number - 1]
            try:
                if kind == "routes":
                    raise Refusal("legacy 'routes' are not imported; rewrite them as redirects")
                for rule in _read_entry(entry, kind):
                    collector.add(number, raw, rule)
            except Refusal as refusal:
                collector.skip(number, raw, str(refusal))
    collector.rules[:] = merge_slash_twins(collector.rules)


# -- export -------------------------------------------------------------------------------------


def _export_source(pattern: str, *, strict: bool, guards: Mapping[str, Guard]) -> str:
    pieces = parse_pattern_pieces(pattern)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            if re.search(r"[:()*+?]", piece):
                raise Refusal(f"the path text {piece!r} has path-to-regexp syntax in it")
            out.append(piece)
            continue
        after = pieces[index + 1] if index + 1 < len(pieces) else ""
        if isinstance(after, Variable) or re.match(r"\w", after):
            raise Refusal(
                f"{piece.render()} is followed by a letter; path-to-regexp reads one name"
            )
        at_end = index == len(pieces) - 1
        guard = guards.get(piece.name)
        if guard is not None and guard.body is not None:
            if re.match(r"\w", after):  # the regex ends the parameter; a letter would not
                raise Refusal(f"{piece.render()} is followed by a letter")
            out.append(f":{piece.name}({guard.body})")
        elif guard is not None and guard.lead:
            out.append(_export_lead(piece, at_end=at_end, out=out, strict=strict))
        else:
            out.append(_export_variable(piece, at_end=at_end, out=out, strict=strict))
    return "".join(out)


def _export_lead(piece: Variable, *, at_end: bool, out: list[str], strict: bool) -> str:
    """A ``string`` or ``path`` parameter that starts the destination's path."""
    if piece.converter == "string" and not piece.args:
        return f":{piece.name}({_LEAD_SEGMENT})"
    if piece.converter == "path" and at_end and "".join(out).endswith("/"):
        # As in _export_variable: '(...)+' repeats segments, each guarded; strict, one regex
        # over the whole rest of the path keeps a trailing slash.
        return f":{piece.name}({_LEAD_PATH})" if strict else f":{piece.name}({_LEAD_SEGMENT})+"
    raise Refusal(f"{piece.render()} has no path-to-regexp equivalent here")


def _export_variable(piece: Variable, *, at_end: bool, out: list[str], strict: bool) -> str:
    if piece.converter == "string" and not piece.args:
        return f":{piece.name}"
    if piece.converter == "int" and not piece.args:
        return f":{piece.name}(\\d+)"
    if piece.converter == "any" and _WORDS.fullmatch(piece.args.replace(",", "|")):
        return f":{piece.name}({piece.args.replace(',', '|')})"
    if piece.converter == "path" and at_end and "".join(out).endswith("/"):
        # ':name+' repeats segments without a slash at the end (Vercel matches the slash
        # exactly); the greedy '(.+)' takes it into the value, as a strict path variable does.
        return f":{piece.name}(.+)" if strict else f":{piece.name}+"
    raise Refusal(f"{piece.render()} has no path-to-regexp equivalent here")


def _export_destination(target: str) -> str:
    """The Vercel destination for a target: ``{name}`` becomes ``:name``.

    Vercel splits the destination at its first ``?`` before it fills in parameters, so that
    ``?`` starts the query even right after a parameter (``/p/:id?name=:slug``). Any other
    character path-to-regexp would read as part of a parameter is refused: a letter (a longer
    name), ``(`` (a regex), ``*``, ``+`` and, in the query, ``?`` (modifiers Vercel drops).
    """
    pieces = parse_target_pieces(target)
    out: list[str] = []
    in_query = False
    for index, piece in enumerate(pieces):
        if isinstance(piece, Placeholder):
            after = pieces[index + 1] if index + 1 < len(pieces) else ""
            after = after if isinstance(after, str) else ""  # ':a:b' reads as two names
            if re.match(r"\w", after):
                raise Refusal(f"{{{piece.name}}} is followed by a letter; Vercel reads one name")
            if re.match(r"[(*+]", after) or (in_query and after.startswith("?")):
                raise Refusal(
                    f"{{{piece.name}}} is followed by {after[0]!r}, which path-to-regexp would "
                    "read as part of it"
                )
            if in_query and "=" not in re.split(r"[?&]", "".join(out))[-1]:
                raise Refusal(
                    f"{{{piece.name}}} is in a query parameter's name; Vercel fills in values only"
                )
            out.append(f":{piece.name}")
        else:
            if _PARAM.search(piece):
                raise Refusal(f"the target text {piece!r} would read as a parameter")
            in_query = in_query or "?" in piece
            out.append(piece)
    return "".join(out)


def _export_conditions(when: Mapping[str, Any], negated: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    hosts = when.get("host")
    if hosts is not None:
        host_list = [hosts] if isinstance(hosts, str) else list(hosts)
        if len(host_list) != 1 or "*" in host_list[0]:
            raise Refusal("Vercel matches one exact host; split the rule per host")
        items.append({"type": "host", "value": host_list[0]})
    for key, kind in (("headers", "header"), ("cookies", "cookie"), ("query", "query")):
        for name, raw_value in (when.get(key) or {}).items():
            value = single_value(raw_value, f"the {kind} {name!r}")
            if value is None:
                if negated:
                    raise Refusal(f"'not' with an absent {kind} cannot be expressed")
                raise Refusal(f"the absent {kind} {name!r} belongs under 'when.not' for Vercel")
            item: dict[str, Any] = {"type": kind, "key": name}
            if value != "*":
                if _REGEX_SYNTAX.search(str(value)):
                    raise Refusal(f"the {kind} value {value!r} would be read as a regex")
                item["value"] = str(value)
            items.append(item)
    return items


def _export_rule(
    rule: Mapping[str, Any], defaults: Mapping[str, Any] | None, allowed_hosts: Sequence[str]
) -> tuple[str, list[dict[str, Any]]]:
    eff = check_baseline(rule, defaults)
    reason = unsupported_keys(
        eff,
        {"to", "rewrite", "status", "query", "trailing_slash", "case", "when"},
        {"host", "headers", "cookies", "query", "not"},
    )
    if reason:
        raise Refusal(reason)
    if eff["query"] != "keep":
        raise Refusal("Vercel always passes the query string on")
    when = eff.get("when") or {}
    negated = when.get("not") or {}
    extra = set(negated) - {"host", "headers", "cookies", "query"}
    if extra:
        raise Refusal(f"cannot express 'when.not.{sorted(extra)[0]}'")
    entry: dict[str, Any] = {"source": ""}
    target = str(eff.get("to", eff.get("rewrite")))
    guards = target_guards(str(eff["from"]), target, allowed_hosts, "Vercel", controls=False)
    if "to" in eff:
        kind = "redirects"
        entry["destination"] = _export_destination(str(eff["to"]))
        if eff["status"] not in REDIRECT_STATUSES:
            raise Refusal(f"status {eff['status']!r} is not a redirect status")
        entry["statusCode"] = eff["status"]
    else:
        kind = "rewrites"
        entry["destination"] = _export_destination(str(eff["rewrite"]))
    if eff["case"] == "sensitive":
        entry["caseSensitive"] = True
    has = _export_conditions({k: v for k, v in when.items() if k != "not"}, negated=False)
    missing = _export_conditions(negated, negated=True)
    if has:
        entry["has"] = has
    if missing:
        entry["missing"] = missing
    # Vercel matches the trailing slash exactly: an ignored slash needs a second entry.
    sources = slash_twins(str(eff["from"]), eff["trailing_slash"])
    strict = eff["trailing_slash"] == "strict"
    return kind, [
        {**entry, "source": _export_source(source, strict=strict, guards=guards)}
        for source in sources
    ]


def export_vercel(
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    allowed_hosts: Sequence[str] = (),
) -> ExportResult:
    """Write rules as a ``vercel.json`` with ``redirects`` and ``rewrites``.

    Vercel checks no destination as Waypost does, so the source's parameter regexes do: a
    parameter that fills in the destination's host matches only the hosts ``allowed_hosts``
    allows (with no allowed host to make, the rule is unsupported), and one right after the
    destination's leading '/' never starts with '/' or '\\' (decoded or percent-encoded) nor
    holds a control character. Where Waypost would answer 400, Vercel finds no rule.

    Vercel applies the first entry of each array that matches, so the entries are in the order
    Waypost offers the rules (file order for ``order: first_match``, else by specificity; see
    ``_priority``). It applies every redirect before any rewrite, so a redirect that Waypost
    offers after a rewrite on a path both match is unsupported: Vercel would redirect where
    Waypost rewrites.
    """
    made, unsupported = export_each(
        rules,
        lambda rule: _export_rule(rule, defaults, allowed_hosts),
        priority_order(rules, defaults),
    )
    out: dict[str, list[dict[str, Any]]] = {"redirects": [], "rewrites": []}
    rewrites: list[tuple[int, Mapping[str, Any]]] = []
    exported = 0
    for index, rule, (kind, entries) in made:
        if kind == "rewrites":
            rewrites.append((index, rule))
        else:
            first = next((i for i, r in rewrites if overlap(r, rule, defaults)), None)
            if first is not None:
                unsupported.append(
                    Unsupported(
                        index,
                        dict(rule),
                        f"Vercel applies every redirect before any rewrite, and Waypost offers "
                        f"the rewrite of rule {first + 1} first on paths both match",
                    )
                )
                continue
        out[kind].extend(entries)
        exported += 1
    unsupported.sort(key=lambda item: item.index)
    document = {key: value for key, value in out.items() if value}
    return ExportResult(json.dumps(document, indent=2) + "\n", unsupported, exported)
