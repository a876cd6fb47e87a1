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
    #: Lowercased keys already in each map: nginx refuses a repeated key.
    map_keys: dict[str, set[str]] = field(default_factory=dict)
    #: Paths that already have a 'location =': nginx refuses a duplicate location.
    exact_paths: set[str] = field(default_factory=set)
    #: Case-sensitive exact redirects per status: lowercased path -> (path, target).
    guarded: dict[int, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def guarded_entry(self, status: int, path: str, target: str) -> None:
        entries = self.guarded.setdefault(status, {})
        first = entries.get(path.lower())
        if first is None and "$" not in path:
            entries[path.lower()] = (path, target)
        elif first is None or first[0] != path:
            # The map has room for one spelling of a path; '/A' after '/a' (or a '$', which a
            # map value would read as a variable) takes a 'location =' of its own.
            self.exact_location(path, f"return {status} {_quote(target)}")

    def map_entry(self, variable: str, key: str, value: str) -> None:
        seen = self.map_keys.setdefault(variable, set())
        if key.lower() not in seen:  # an earlier rule takes the path, as in Waypost
            seen.add(key.lower())
            self.maps.setdefault(variable, []).append(f"    {_quote(key)} {_quote(value)};")

    def exact_location(self, path: str, answer: str) -> None:
        if path not in self.exact_paths:  # an earlier rule takes the path, as in Waypost
            self.exact_paths.add(path)
            self.lines.append(f"location = {_quote(path)} {{ {answer}; }}")


def _exact_paths(pattern: str, ignore_slash: bool) -> list[str]:
    """The paths a static rule matches exactly: with and without the slash when it is ignored."""
    if not ignore_slash or pattern == "/":
        return [pattern]
    bare = pattern.rstrip("/") or "/"
    return [bare, bare + "/"] if bare != "/" else [bare]


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
    modifier = "~*" if insensitive else "~"
    if "to" in eff:
        status = eff["status"]
        if status not in REDIRECT_STATUSES:
            raise Refusal(f"status {status!r} is not a redirect status")
        target = _target(str(eff["to"]), keep, rewrite_style=False)
        if static and insensitive:
            # nginx compares a plain map key ignoring case: one hash lookup for any number.
            for path in _exact_paths(pattern, ignore_slash):
                out.map_entry(f"$waypost_redirect_{status}", path, target)
        elif static:
            # Also a map key, so a hash lookup; the 'if' that uses it compares the exact path.
            for path in _exact_paths(pattern, ignore_slash):
                out.guarded_entry(status, path, target)
        else:
            location = _regex(pattern, ignore_slash, insensitive).removeprefix("(?i)")
            out.lines.append(
                f"location {modifier} {_quote(location)} {{ return {status} {_quote(target)}; }}"
            )
        return
    if "rewrite" in eff:
        regex = _regex(pattern, ignore_slash, insensitive)
        target = _target(str(eff["rewrite"]), keep, rewrite_style=True)
        # Inside its own location, so that 'location =' (exact rules) wins as in Waypost; a
        # server-level rewrite would run before nginx chooses a location.
        location = regex.removeprefix("(?i)")
        out.lines.append(
            f"location {modifier} {_quote(location)} "
            f"{{ rewrite {_quote(regex)} {_quote(target)} last; }}"
        )
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
        if static and not insensitive:
            for path in _exact_paths(pattern, ignore_slash):
                out.exact_location(path, answer)
        else:
            regex = _regex(pattern, ignore_slash, insensitive).removeprefix("(?i)")
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
    """Write rules as nginx ``map`` blocks and the server snippet that uses them.

    The ``map`` blocks go in ``http {}``; everything after the second comment goes in the
    ``server {}`` block. Exact paths are hash lookups, so that 100,000 of them cost no more than
    ten. nginx compares plain map keys ignoring case, so a case-sensitive path (Waypost's
    default) is a key of two maps per status, one giving the target and one the path itself,
    which ``if ($waypost_exact_301_path = $uri)`` compares exactly; a second spelling of the same
    path (``/A`` after ``/a``) gets a ``location = /A`` block. (A ``location =`` for every path
    would do, but nginx sorts locations in quadratic time when it starts: minutes for 100,000.)
    Case-insensitive paths are plain keys of one map per status. A rule that ignores the
    trailing slash has both spellings. Patterns
    become ``location ~`` (``~*``) blocks that ``return`` the redirect or response, or
    ``rewrite ... last`` inside them; nginx tries them in file order after the exact
    locations, as Waypost tries patterns after exact paths. A ``<path:...>`` variable at the end
    of a rule that ignores the trailing slash is a lazy group followed by ``/?``, so that like
    Waypost it never captures that slash.
    """
    out = _Export()
    unsupported: list[Unsupported] = []
    for index, rule in enumerate(rules):
        try:
            _export_rule(rule, defaults, out)
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
    text = ["# Generated by waypost.", "# -- in the http {} block --"]
    for status, guarded in out.guarded.items():
        targets = [f"    {_quote(path)} {_quote(target)};" for path, target in guarded.values()]
        paths = [f"    {_quote(path)} {_quote(path)};" for path, _ in guarded.values()]
        text.extend([f"map $uri $waypost_exact_{status} {{", '    default "";', *targets, "}"])
        text.extend([f"map $uri $waypost_exact_{status}_path {{", '    default "";', *paths, "}"])
    for variable, entries in out.maps.items():
        text.extend([f"map $uri {variable} {{", '    default "";', *entries, "}"])
    text.append("# -- in the server {} block --")
    for status in out.guarded:
        text.extend(
            [
                f"if ($waypost_exact_{status}_path = $uri) {{",
                f"    return {status} $waypost_exact_{status};",
                "}",
            ]
        )
    for variable in out.maps:
        code = variable.rsplit("_", 1)[1]
        text.extend([f"if ({variable}) {{", f"    return {code} {variable};", "}"])
    text.extend(out.lines)
    exported = len(rules) - len(unsupported)
    return ExportResult("\n".join(text) + "\n", unsupported, exported)
