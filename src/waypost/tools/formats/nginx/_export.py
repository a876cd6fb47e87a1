"""nginx export: Waypost rules as ``map`` blocks and a ``server {}`` snippet."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._canon import Placeholder, parse_pattern_pieces, parse_target_pieces
from .._common import REDIRECT_STATUSES, Refusal, check_baseline, unsupported_keys
from .._regex import RegexNotSupported, pattern_regex
from .._report import ExportResult, Unsupported

__all__ = ["export_nginx"]


_RESERVED = frozenset(
    {
        "uri",
        "request_uri",
        "document_uri",
        "args",
        "is_args",
        "query_string",
        "host",
        "scheme",
        "request",
        "server_name",
        "remote_addr",
        "status",
        "request_method",
        "http_host",
    }
)


def _quote(value: str) -> str:
    # nginx reads '\\' as one backslash even in a bare word; inside quotes it is written doubled.
    if re.search(r"[\s;{}'\"#]", value) or "\\\\" in value or not value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _target(target: str, keep_query: bool, *, rewrite_style: bool) -> str:
    pieces = parse_target_pieces(target)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if isinstance(piece, Placeholder):
            after = pieces[index + 1] if index + 1 < len(pieces) else ""
            glued = isinstance(after, str) and re.match(r"\w", after)
            out.append(f"${{{piece.name}}}" if glued else f"${piece.name}")
        else:
            if "$" in piece:
                raise Refusal("nginx cannot write a literal '$' in a target")
            out.append(piece)
    text = "".join(out)
    if rewrite_style:
        return text if keep_query else text + "?"
    return text + "$is_args$args" if keep_query else text


@dataclass(slots=True)
class _Export:
    maps: dict[str, list[str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def _export_rule(rule: Mapping[str, Any], defaults: Mapping[str, Any] | None, out: _Export) -> None:
    eff = check_baseline(rule, defaults)
    reason = unsupported_keys(
        eff, {"to", "rewrite", "respond", "status", "query", "trailing_slash", "case"}, set()
    )
    if reason:
        if eff.get("when"):
            reason += " (nginx conditions need server blocks or 'if'; write them by hand)"
        raise Refusal(reason)
    pattern = str(eff["from"])
    pieces = parse_pattern_pieces(pattern)
    names = [piece.name for piece in pieces if not isinstance(piece, str)]
    clash = sorted(set(names) & _RESERVED)
    if clash:
        raise Refusal(f"the variable name {clash[0]!r} is an nginx variable; rename it")
    static = not names
    ignore_slash = eff["trailing_slash"] == "ignore"
    insensitive = eff["case"] == "insensitive"
    keep = eff.get("query") == "keep"
    if "to" in eff:
        status = eff["status"]
        if status not in REDIRECT_STATUSES:
            raise Refusal(f"status {status!r} is not a redirect status")
        if static:
            value = _target(str(eff["to"]), keep, rewrite_style=False)
            # A plain string key of an nginx map matches ignoring case; a '~' regex key is
            # case-sensitive and '~*' is not, so every key is an anchored regex that says which.
            regex = _regex(pattern, ignore_slash, insensitive=False)
            key = ("~*" if insensitive else "~") + regex
            out.maps.setdefault(f"$waypost_redirect_{status}", []).append(
                f"    {_quote(key)} {_quote(value)};"
            )
            return
        regex = _regex(pattern, ignore_slash, insensitive)
        if status in (301, 302):
            flag = "permanent" if status == 301 else "redirect"
            target = _target(str(eff["to"]), keep, rewrite_style=True)
            out.lines.append(f"rewrite {_quote(regex)} {_quote(target)} {flag};")
        else:
            target = _target(str(eff["to"]), keep, rewrite_style=False)
            modifier = "~*" if insensitive else "~"
            location = regex.removeprefix("(?i)")
            out.lines.append(
                f"location {modifier} {_quote(location)} {{ return {status} {_quote(target)}; }}"
            )
        return
    if "rewrite" in eff:
        regex = _regex(pattern, ignore_slash, insensitive)
        target = _target(str(eff["rewrite"]), keep, rewrite_style=True)
        out.lines.append(f"rewrite {_quote(regex)} {_quote(target)} last;")
        return
    if "respond" in eff:
        respond = eff["respond"]
        if isinstance(respond, Mapping):
            if set(respond) - {"status", "body"}:
                raise Refusal("nginx 'return' cannot set response headers; use add_header by hand")
            status, raw_body = respond.get("status", 200), respond.get("body")
        else:
            status, raw_body = respond, None
        answer = f"return {int(status)}"
        if raw_body is not None:
            answer += f" {_quote(str(raw_body))}"
        if static and not ignore_slash and not insensitive:
            out.lines.append(f"location = {_quote(pattern)} {{ {answer}; }}")
        else:
            regex = _regex(pattern, ignore_slash, insensitive).removeprefix("(?i)")
            modifier = "~*" if insensitive else "~"
            out.lines.append(f"location {modifier} {_quote(regex)} {{ {answer}; }}")
        return
    raise Refusal("'pass' has no nginx equivalent")


def _regex(pattern: str, ignore_slash: bool, insensitive: bool) -> str:
    try:
        regex, _names = pattern_regex(pattern, optional_slash=ignore_slash)
    except RegexNotSupported as error:
        raise Refusal(str(error)) from None
    return ("(?i)" if insensitive else "") + regex


def export_nginx(
    rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None
) -> ExportResult:
    """Write rules as an nginx ``map`` (exact paths) and the server snippet that uses it.

    The ``map`` blocks go in ``http {}``; everything after the second comment goes in the
    ``server {}`` block. Exact paths are looked up in one map per status, as anchored regex keys
    (``~`` case-sensitive, ``~*`` not: nginx compares plain string keys ignoring case); patterns
    become ``rewrite`` (301, 302, internal rewrites) or ``location ~`` blocks (303, 307, 308).
    A ``<path:...>`` variable at the end of a rule that ignores the trailing slash is a lazy group
    followed by ``/?``, so that like Waypost it never captures that slash.
    """
    out = _Export()
    unsupported: list[Unsupported] = []
    for index, rule in enumerate(rules):
        try:
            _export_rule(rule, defaults, out)
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
    text = ["# Generated by waypost.", "# -- in the http {} block --"]
    for variable, entries in out.maps.items():
        text.extend([f"map $uri {variable} {{", '    default "";', *entries, "}"])
    text.append("# -- in the server {} block --")
    for variable in out.maps:
        status = variable.rsplit("_", 1)[1]
        text.extend([f"if ({variable}) {{", f"    return {status} {variable};", "}"])
    text.extend(out.lines)
    exported = len(rules) - len(unsupported)
    return ExportResult("\n".join(text) + "\n", unsupported, exported)
