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
* ``statusCode``, or ``permanent`` (308, the default) / ``permanent: false`` (307).
  Vercel matches case-insensitively unless ``caseSensitive`` is true, so imported rules get
  ``case: insensitive`` unless the source says otherwise.
* Vercel matches the trailing slash exactly: rules get ``trailing_slash: strict``, and the
  ``/x`` + ``/x/`` entry pair the exporter writes for an ignored slash reads back as one rule.
* ``rewrites`` to a path become ``rewrite`` with ``only_if_missing: true`` (Vercel applies them
  after ``{handle: filesystem}``, when no file answers); a parameter the destination's path does
  not use is added to its query, as Vercel does (``/projects/:id/edit`` to
  ``/projects.html?id={id}``); a rewrite's fragment is dropped. To an http(s) URL they proxy
  there: a ``rewrite`` to the URL, also ``only_if_missing``, its host listed in the result's
  ``proxy_hosts``; one whose host or port comes from a parameter (``https://:sub.example.com/``)
  or that carries user info is skipped, as is a rewrite's ``statusCode``. ``routes`` (the legacy
  syntax), ``basePath`` and ``locale`` are skipped.
* ``{...}`` groups are opened (``/feature-{:slug}``); an optional parameter that matched nothing
  is filled in as ``''``. Refused as Vercel refuses them: a destination segment neither the
  source nor ``has`` defines, a ``:`` without a name, a ``?``/``+`` after no parameter, both
  ``permanent`` and ``statusCode``.
* ``cleanUrls: true`` and ``trailingSlash: false`` become the redirects Vercel puts before all
  others, at the line of their key (``trailingSlash: true`` is reported). Vercel applies its
  routes in array order, so the import sets ``defaults: {order: first_match}``.

Export writes ``statusCode`` explicitly and ``caseSensitive: true`` for case-sensitive rules, and
a path variable as ``:name(.+)`` when the rule is strict, else as ``:name+``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

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
    with_proxy_hosts,
)
from ._json import element_lines, import_json, key_line
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


def _ungroup(text: str, where: str) -> str:
    """``text`` with path-to-regexp's ``{...}`` groups opened: ``/feature-{:slug}`` is
    ``/feature-:slug``. A group with a modifier (``{...}?``) is refused; braces inside a
    parameter's regex (``([a-z]{2})``) are the regex's own."""
    out: list[str] = []
    depth = 0
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            out.append(text[pos : pos + 2])
            pos += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "{" and depth == 0:
            end = text.find("}", pos)
            inner = text[pos + 1 : end]
            if end < 0 or "{" in inner:
                raise Refusal(f"the {where} {text!r} has a '{{' without its '}}'")
            if text[end + 1 : end + 2] in ("?", "*", "+") and end + 1 < len(text):
                raise Refusal(
                    f"the optional or repeated group {text[pos : end + 2]!r} in the {where} "
                    "has no Waypost equivalent"
                )
            out.append(inner)
            pos = end + 1
            continue
        elif char == "}" and depth == 0:
            raise Refusal(f"the {where} {text!r} has a '}}' without its '{{'")
        out.append(char)
        pos += 1
    return "".join(out)


def _check_literal(literal: str, source: str) -> None:
    """Refuse source text path-to-regexp does not read as literal text."""
    if "(" in literal or ")" in literal or "*" in literal:
        raise Refusal(
            f"the source {source!r} has an unnamed regex group or wildcard, which Waypost "
            "patterns cannot express; name the parameter (':name')"
        )
    if ":" in literal:
        raise Refusal(
            f"the source {source!r} has a ':' without a parameter name; Vercel refuses the pattern"
        )
    if "?" in literal or "+" in literal:
        raise Refusal(
            f"the source {source!r} has a '?' or '+' that follows no parameter; Vercel refuses "
            "the pattern"
        )


def _convert_source(source: str) -> tuple[list[str], list[str], str | None, bool]:
    """Waypost patterns for a source (one, or two when the last segment is optional).

    Returns the patterns (the bare one first), the parameter names in order, the name of the
    optional last parameter, if any, and whether a last ``:name(.+)`` keeps the trailing slash.
    A last segment may be followed by one '/' (``/catchall/:rest*/``).
    """
    if not source.startswith("/"):
        raise Refusal(
            f"the source {source!r} does not start with '/' (a regex such as '^/...' is not a "
            "Vercel pattern; Vercel refuses it)"
        )
    if "<" in source or ">" in source:
        raise Refusal(f"the source {source!r} contains '<' or '>', which Waypost patterns cannot")
    source = _ungroup(source, "source")
    out: list[str] = []
    names: list[str] = []
    optional: str | None = None
    strict_path = False
    pos = 0
    for match in _PARAM.finditer(source):
        literal = source[pos : match.start()]
        _check_literal(literal, source)
        out.append(literal)
        name, regex, modifier = match.groups()
        names.append(name)
        rest = source[match.end() :]
        last = rest in ("", "/")
        whole = source[: match.start()].endswith("/")
        if modifier in ("*", "+", "?") and not (last and whole):
            raise Refusal(
                f"':{name}{modifier}' is only supported as the whole last segment of the source"
            )
        if modifier in ("*", "+"):
            if regex is not None and regex != _LEAD_SEGMENT:
                raise Refusal(f"':{name}({regex}){modifier}' repeats a regex; Waypost cannot")
            out.append(f"<path:{name}>")
        elif regex in (".+", _LEAD_PATH) and not modifier and rest == "" and whole:
            out.append(f"<path:{name}>")
            strict_path = True
        else:
            out.append(_param_converter(name, regex))
        if modifier in ("*", "?"):
            optional = name
        if rest and re.match(r"\w", rest):
            raise Refusal(f"':{name}' is followed by a letter; path-to-regexp reads one name")
        pos = match.end()
    tail = source[pos:]
    _check_literal(tail, source)
    if optional is None:
        return ["".join(out) + tail], names, None, strict_path
    bare = "".join(out[:-2]) + out[-2].rstrip("/") + tail
    return [bare or "/", "".join(out) + tail], names, optional, strict_path


def _scanned(destination: str) -> str:
    """The destination without ``scheme://user:password@``, where ':' names no parameter."""
    return re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@?#]*@)?", "", destination)


def _check_segments(destination: str, names: Sequence[str], has_names: set[str]) -> None:
    for match in _PARAM.finditer(_scanned(destination)):
        name = match.group(1)
        if name in names:
            continue
        if name in has_names:
            raise Refusal(
                f"the destination fills in ':{name}' from a 'has' item; Waypost fills a "
                "target from the path only"
            )
        raise Refusal(
            f"the destination has the segment ':{name}', which neither the source nor 'has' "
            "defines (Vercel refuses the entry; it would be sent as literal text)"
        )


def _convert_destination(
    destination: str,
    names: Sequence[str],
    has_names: set[str],
    empty: str | None,
    *,
    rewrite: bool,
) -> str:
    """The Waypost target of a destination, as Vercel's ``replaceSegments`` fills it in.

    Vercel splits the destination as a URL before it fills in parameters, so the first '?'
    starts the query even right after a parameter (in '/p/:id?name=:slug' it is not
    path-to-regexp's "optional" modifier) and an empty query is dropped. A rewrite whose path,
    host and fragment use none of the parameters gets each one its query does not name added
    to it (``/projects/:id/edit`` to ``/projects.html?id=one``); a rewrite's fragment never
    reaches the app. ``empty`` is the optional parameter the bare rule matches without: its
    value is ``''``, as Vercel fills in an unmatched group.
    """
    if re.search(r"\$\d", destination):
        raise Refusal("the destination uses numbered groups ($1); name the parameters instead")
    destination = _ungroup(destination, "destination")
    _check_segments(destination, names, has_names)
    before, hash_mark, fragment = destination.partition("#")
    path, _, query = before.partition("?")
    used = {m.group(1) for m in _PARAM.finditer(_scanned(path) + hash_mark + fragment)}
    if rewrite and not used & ({*names} | has_names):
        if has_names:
            raise Refusal(
                "Vercel adds the values of the 'has' items to the rewritten query when the "
                "destination's path uses no parameter; Waypost cannot fill them in"
            )
        keys = {item.partition("=")[0] for item in query.split("&")}
        added = [f"{name}=:{name}" for name in names if name not in keys]
        query = "&".join([item for item in [query, *added] if item])
    if rewrite:
        hash_mark = fragment = ""
    result = _convert_destination_part(path, names, empty)
    if query:
        result += "?" + _convert_destination_part(query, names, empty)
    if hash_mark:
        result += "#" + _convert_destination_part(fragment, names, empty)
    return result or "/"


def _convert_destination_part(destination: str, names: Sequence[str], empty: str | None) -> str:
    out: list[str] = []
    pos = 0
    for match in _PARAM.finditer(destination):
        name, regex, _modifier = match.groups()
        literal = destination[pos : match.start()].replace("{", "{{").replace("}", "}}")
        if name not in names or regex is not None:
            out.append(literal + match.group(0).replace("{", "{{").replace("}", "}}"))
        elif name == empty:
            out.append(literal)
        else:
            out.append(literal + f"{{{name}}}")
        pos = match.end()
    out.append(destination[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def _conditions(items: Any, where: str) -> tuple[dict[str, Any], set[str]]:
    """``when`` conditions of ``has`` or ``missing`` items, and the names the items define for
    the destination (Vercel's ``collectHasSegments``: the key of an item without a value, and
    ``host`` for a host item)."""
    if not isinstance(items, list):
        raise Refusal(f"'{where}' must be a list")
    when: dict[str, Any] = {}
    defined: set[str] = set()
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
            defined.add("host")
        elif kind in _CONDITION_KEYS:
            key = item.get("key")
            if not isinstance(key, str):
                raise Refusal(f"a {kind} item in '{where}' needs a key")
            if kind == "header":
                key = key.lower()
            when.setdefault(_CONDITION_KEYS[kind], {})[key] = "*" if value is None else value
            if value is None:
                defined.add(key)
        else:
            raise Refusal(f"the '{where}' type {kind!r} has no Waypost equivalent")
    return when, defined


def _check_proxy_destination(destination: str) -> None:
    """Refuse a rewrite to another origin (a proxy) that Waypost cannot proxy as Vercel does:
    a scheme other than http(s), user info (``user:pass@``), or a host or port filled in from
    a parameter (the origin a request is proxied to never comes from the request)."""
    scheme, _, rest = destination.partition("://")
    if scheme.lower() not in ("http", "https"):
        raise Refusal(
            f"the rewrite's destination {destination!r} is not an http(s) URL; Waypost proxies "
            "only to http and https origins"
        )
    authority = re.split(r"[/?#]", _ungroup(rest, "destination"), maxsplit=1)[0]
    if "@" in authority:
        raise Refusal(
            f"the rewrite's destination {destination!r} carries user info ('...@'); Waypost "
            "proxies to a host alone (send credentials with a header the origin checks)"
        )
    if param := _PARAM.search(authority):
        raise Refusal(
            f"the rewrite's destination {destination!r} takes its host or port from "
            f"':{param.group(1)}'; Waypost proxies only to an origin written out, never to one "
            "taken from the request (that would be an open proxy)"
        )
    try:
        parts = urlsplit(f"//{authority}")
        if not parts.hostname:
            raise ValueError
        _port = parts.port
    except ValueError:
        raise Refusal(
            f"the rewrite's destination {destination!r} has no valid host and port"
        ) from None


def _status(entry: Mapping[str, Any], kind: str) -> int | None:
    status = entry.get("statusCode")
    if kind == "rewrites":
        if status is not None:
            raise Refusal(
                f"a rewrite's statusCode ({status!r}) has no Waypost equivalent: a Waypost "
                "rewrite answers with the app's status"
            )
        return None
    permanent = entry.get("permanent")
    if permanent is not None and status is not None:
        raise Refusal("the entry defines both 'permanent' and 'statusCode'; Vercel refuses it")
    if isinstance(permanent, bool):
        status = 308 if permanent else 307
    elif status is None:
        status = 308
    if status not in REDIRECT_STATUSES:
        raise Refusal(f"statusCode {status!r} is not a redirect status")
    return int(status)


def _read_entry(entry: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(entry, dict):
        raise Refusal(f"a {kind} entry must be an object")
    for key in ("basePath", "locale"):
        if key in entry:
            raise Refusal(f"'{key}' (a Next.js option) has no Waypost equivalent")
    source, destination = entry.get("source"), entry.get("destination")
    if not isinstance(source, str) or not isinstance(destination, str):
        raise Refusal("the entry needs 'source' and 'destination' strings")
    env = entry.get("env") or []
    if any(isinstance(name, str) and f"${name}" in destination for name in env):
        raise Refusal("the destination uses environment variables ('env'); Waypost has none")
    patterns, names, optional, strict_path = _convert_source(source)
    when, has_names = _conditions(entry.get("has", []), "has")
    missing, _ = _conditions(entry.get("missing", []), "missing")
    if missing:
        when["not"] = missing
    base: dict[str, Any] = {}
    status = _status(entry, kind)
    if status is not None:
        base["status"] = status
    else:
        if is_absolute_url(destination):
            _check_proxy_destination(destination)
        # Vercel's rewrites come after {handle: filesystem}: a file at the path answers first
        # (a rewrite to another origin, a proxy, too).
        base["only_if_missing"] = True
    if entry.get("caseSensitive") is not True:
        base["case"] = "insensitive"
    base["trailing_slash"] = "strict"
    if when:
        base["when"] = when
    action = "to" if kind == "redirects" else "rewrite"
    rules = []
    for pattern in patterns:
        empty = optional if pattern == patterns[0] and len(patterns) == 2 else None
        target = _convert_destination(
            destination, names, has_names, empty, rewrite=kind == "rewrites"
        )
        rule = {"from": pattern, action: target, **base}
        if ends_with_path_variable(pattern) and not strict_path:
            # ':name+' and ':name*' leave a trailing slash out of the value, as Waypost does
            # when it ignores the slash.
            del rule["trailing_slash"]
        rules.append(rule)
    return rules


def _clean_urls(trailing_slash: Any) -> list[dict[str, Any]]:
    """The redirects Vercel puts first for ``cleanUrls: true`` (routing-utils'
    ``convertCleanUrls``): ``/index`` and ``/x/index.html`` to their directory, ``/x.html`` to
    ``/x``, with or without a slash after them; with ``trailingSlash: true`` the target ends
    with '/'. (Vercel's ``/index`` gives ``//`` then; Waypost redirects it to ``/``.)"""
    slash = "/" if trailing_slash is True else ""
    base = {"status": 308, "case": "insensitive"}
    return [
        {"from": "/index", "to": "/", **base},
        {"from": "/index.html", "to": "/", **base},
        {"from": "/<path:path>/index", "to": f"/{{path}}{slash}", **base},
        {"from": "/<path:path>/index.html", "to": f"/{{path}}{slash}", **base},
        {"from": "/<path:path>.html", "to": f"/{{path}}{slash}", **base},
    ]


def parse_vercel(text: str) -> ImportResult:
    """Read the ``redirects`` and ``rewrites`` of a ``vercel.json``; see the module docstring.

    Vercel applies its routes in order, the first that matches wins: the rules keep that
    order (``defaults: {order: first_match}``).
    """
    result = with_proxy_hosts(import_json(text, "vercel", _read_vercel))
    return replace(result, defaults={**result.defaults, "order": "first_match"})


def _read_top_level(text: str, data: dict[str, Any], collector: Collector) -> None:
    """``cleanUrls`` and ``trailingSlash``: the routes Vercel inserts before the redirects."""
    trailing = data.get("trailingSlash")
    for key in ("cleanUrls", "trailingSlash"):
        if key not in data:
            continue
        value = data[key]
        number = key_line(text, key) or 1
        raw = f'"{key}": {json.dumps(value)}'
        if not isinstance(value, bool):
            collector.skip(number, raw, f"'{key}' must be true or false")
        elif key == "cleanUrls" and value:
            for rule in _clean_urls(trailing):
                collector.add(number, raw, rule)
            collector.note(
                number,
                raw,
                "cleanUrls also serves /x from x.html; the app or its static files must do that",
            )
        elif key == "trailingSlash" and value is False:
            rule = {"from": "/<path:path>/", "to": "/{path}", "status": 308}
            collector.add(number, raw, {**rule, "trailing_slash": "strict"})
        elif key == "trailingSlash":
            collector.skip(
                number,
                raw,
                "'trailingSlash: true' redirects paths whose last segment has no dot to add a "
                "slash; Waypost patterns cannot say 'no dot'",
            )


def _read_vercel(text: str, data: Any, collector: Collector) -> None:
    if not isinstance(data, dict):
        collector.skip(1, "", "vercel.json must hold an object")
        return
    lines = text.split("\n")
    _read_top_level(text, data, collector)
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
                    raise Refusal(
                        "legacy 'routes' (regex 'src'/'dest') are not imported; write them as "
                        "'redirects' and 'rewrites'"
                    )
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


def _check_rewrite(eff: Mapping[str, Any]) -> None:
    """Refuse a rewrite Vercel would apply differently: Vercel's rewrites come after its files
    (only when no file answers), and a destination whose path uses none of the source's
    parameters gets every one its query does not name added to it (``?page=...``)."""
    if not eff["only_if_missing"]:
        raise Refusal(
            "Vercel applies rewrites only when no file answers; set 'only_if_missing: true' "
            "for the rewrite to mean that"
        )
    names = [p.name for p in parse_pattern_pieces(str(eff["from"])) if isinstance(p, Variable)]
    target = str(eff["rewrite"])
    before, _, fragment = target.partition("#")
    path, _, query = before.partition("?")
    used = {
        piece.name
        for piece in parse_target_pieces(path + fragment)
        if isinstance(piece, Placeholder)
    }
    keys = {item.partition("=")[0] for item in query.split("&")}
    added = [name for name in names if name not in keys]
    if names and not used and added:
        raise Refusal(
            f"Vercel would add {', '.join(repr(n) for n in added)} to the rewritten query "
            "(the target's path uses no parameter); name them in the target's query"
        )


def _export_rule(
    rule: Mapping[str, Any], defaults: Mapping[str, Any] | None, allowed_hosts: Sequence[str]
) -> tuple[str, list[dict[str, Any]]]:
    eff = check_baseline(rule, defaults, only_if_missing=True)
    reason = unsupported_keys(
        eff,
        {"to", "rewrite", "status", "query", "trailing_slash", "case", "when", "only_if_missing"},
        {"host", "headers", "cookies", "query", "not"},
    )
    if reason:
        raise Refusal(reason)
    if "to" in eff and eff["only_if_missing"]:
        raise Refusal("Vercel applies redirects before its files; it cannot wait for the 404")
    if "rewrite" in eff:
        _check_rewrite(eff)
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
