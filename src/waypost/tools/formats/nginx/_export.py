"""nginx export: Waypost rules as ``map`` blocks and a ``server {}`` snippet."""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from waypost.exceptions import RuleSyntaxError
from waypost.rules.target import _SAFE_BY_PART, parse_target

from .._canon import Placeholder, Variable, parse_pattern_pieces, parse_target_pieces
from .._common import (
    REDIRECT_STATUSES,
    Refusal,
    check_baseline,
    refuse_proxy,
    unsupported_keys,
)
from .._priority import _Paths, first_match, priority_key, repeated_rules
from .._regex import Guard, RegexNotSupported, pattern_regex, target_guards
from .._report import ExportNote, ExportResult, export_each
from ._respond import ResponseTable, read_respond
from ._syntax import DOLLAR, DOLLAR_BLOCK, quote_text, quote_word

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

#: What an exact path answers: a redirect status, or "respond" (a rewrite to an internal URI).
_Kind = int | str
_RESPOND = "respond"


#: ``&`` and the request's query string, or nothing without one: what a target with its own
#: query string appends to keep the request's (Waypost merges the two, the target's first).
_AND_ARGS = "$waypost_and_args"
_AND_ARGS_MAP = ["map $args $waypost_and_args {", '    default "&$args";', '    "" "";', "}"]


def _target(target: str, keep_query: bool, *, rewrite_style: bool) -> str:
    """The target as nginx writes it. A redirect keeps the request's query string the way
    Waypost does: after the target's path (``$is_args$args``) or its own query (``&`` and the
    request's, by the map ``$waypost_and_args``), before any fragment. A rewrite lets nginx add
    the query: ``rewrite`` appends the request's (after a ``&`` when the target has its own),
    unless the target ends in ``?``."""
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
    if not keep_query:
        return text
    hash_at = text.find("#")
    fragment = text[hash_at:] if hash_at >= 0 else ""
    text = text[:hash_at] if hash_at >= 0 else text
    base, mark, own = text.partition("?")
    if not mark:
        return f"{text}$is_args$args{fragment}"
    if not own:
        return f"{base}?$args{fragment}"
    return f"{text}{_AND_ARGS}{fragment}"


@dataclass(slots=True)
class _Taken:
    """What earlier exact rules took of one lowercased path (nginx's map key)."""

    #: Case-sensitive spellings, each the key of one guarded map.
    spellings: set[str] = field(default_factory=set)
    #: How many guarded maps of each kind hold a spelling of this key.
    tiers: dict[_Kind, int] = field(default_factory=dict)
    #: A case-insensitive rule took every spelling.
    insensitive: bool = False


@dataclass(slots=True)
class _Export:
    #: Case-sensitive exact paths per (kind, tier): lowercased path -> (path, value).
    guarded: dict[tuple[_Kind, int], dict[str, tuple[str, str]]] = field(default_factory=dict)
    #: Case-insensitive exact paths per kind: map entries.
    insensitive: dict[_Kind, list[str]] = field(default_factory=dict)
    taken: dict[str, _Taken] = field(default_factory=dict)
    responses: ResponseTable = field(default_factory=ResponseTable)
    #: Pattern rules: locations, with the key of the order they are written in (see export_nginx).
    lines: list[tuple[Any, str]] = field(default_factory=list)

    def exact(self, kind: _Kind, path: str, insensitive: bool, value: str) -> None:
        """Answer ``path`` with ``value`` (a target, or an internal URI) unless an earlier exact
        rule takes it; Waypost tries exact rules in file order, the first match wins.

        nginx compares a plain map key ignoring case, so the exact paths are keys of maps and a
        case-sensitive path is checked again by ``if ($..._path = $uri)``. Each key has one
        spelling per map: '/A' after '/a' (same kind) goes into a second tier of maps,
        ``$waypost_exact_301_2``. The guarded ``if`` blocks all come before the case-insensitive
        ones, and at most one guard holds for a request (spellings differ), so a request meets
        the same first rule as in Waypost: a case-sensitive rule after a case-insensitive one
        for its key never applies, and one before it is found first. No ``location =`` is
        needed, whatever the number of spellings, '$'s or kinds.
        """
        key = path.lower()
        taken = self.taken.setdefault(key, _Taken())
        if taken.insensitive:
            return  # an earlier rule takes every spelling, as in Waypost
        if insensitive:
            # Still the first rule for every spelling no earlier guarded map holds.
            taken.insensitive = True
            entry = f"    {quote_word(path)} {quote_word(value)};"
            self.insensitive.setdefault(kind, []).append(entry)
            return
        if path in taken.spellings:
            return  # an earlier rule takes this spelling
        taken.spellings.add(path)
        tier = taken.tiers[kind] = taken.tiers.get(kind, 0) + 1
        self.guarded.setdefault((kind, tier), {})[key] = (path, value)

    def text(self) -> str:
        http: list[str] = []
        server: list[str] = []
        for (kind, tier), guarded in self.guarded.items():
            variable = f"$waypost_exact_{kind}" + (f"_{tier}" if tier > 1 else "")
            targets = [
                f"    {quote_word(path)} {quote_word(value)};" for path, value in guarded.values()
            ]
            # The guard's value is compared with $uri: a '$' in it would read as a variable.
            paths = [f"    {quote_word(path)} {_guard(path)};" for path, _ in guarded.values()]
            http.extend([f"map $uri {variable} {{", '    default "";', *targets, "}"])
            http.extend([f"map $uri {variable}_path {{", '    default "";', *paths, "}"])
            server.extend(
                [f"if ({variable}_path = $uri) {{", f"    {_answer(kind, variable)};", "}"]
            )
        for kind, entries in self.insensitive.items():
            variable = "$waypost_respond" if kind == _RESPOND else f"$waypost_redirect_{kind}"
            http.extend([f"map $uri {variable} {{", '    default "";', *entries, "}"])
            server.extend([f"if ({variable}) {{", f"    {_answer(kind, variable)};", "}"])
        http.extend(self.responses.http_lines())
        locations = [line for _key, line in sorted(self.lines, key=lambda pair: pair[0])]
        if any(_AND_ARGS in line for line in (*http, *server, *locations)):
            http.extend(_AND_ARGS_MAP)
        server.extend(locations)
        server.extend(self.responses.server_lines())
        if any(DOLLAR in line for line in (*http, *server)):
            http.append(DOLLAR_BLOCK)
        text = ["# Generated by waypost.", "# -- in the http {} block --", *http]
        text.extend(["# -- in the server {} block --", *server])
        return "\n".join(text) + "\n"


def _guard(path: str) -> str:
    return quote_text(path) if "$" in path else quote_word(path)


def _answer(kind: _Kind, variable: str) -> str:
    if kind == _RESPOND:
        # To the internal location that answers (see _respond): 'return' takes a literal status.
        return f"rewrite ^ {variable} last"
    return f"return {kind} {variable}"


def _exact_paths(pattern: str, ignore_slash: bool) -> list[str]:
    """The paths a static rule matches exactly: with and without the slash when it is ignored."""
    if not ignore_slash or pattern == "/":
        return [pattern]
    bare = pattern.rstrip("/") or "/"
    return [bare, bare + "/"] if bare != "/" else [bare]


def _export_rule(
    rule: Mapping[str, Any],
    defaults: Mapping[str, Any] | None,
    allowed_hosts: Sequence[str],
    out: _Export,
    key: Any,
    as_location: bool,
) -> list[str]:
    """Add ``rule`` to ``out``; its notes. ``key`` orders its location among the others;
    ``as_location`` writes a static rule as a location too (a first-match rule set where an
    earlier pattern may take its path: the exact maps are checked before every location)."""
    eff = check_baseline(rule, defaults)
    reason = unsupported_keys(
        eff, {"to", "rewrite", "respond", "status", "query", "trailing_slash", "case"}, set()
    )
    if reason:
        if "scheme" in (eff.get("when") or {}):
            reason += (
                " (nginx tests the scheme in a server block per scheme, or with "
                "'if ($scheme = http)'; write it by hand: a failed 'if' does not go on to the "
                "next rule as Waypost does)"
            )
        elif eff.get("when"):
            reason += " (nginx conditions need server blocks or 'if'; write them by hand)"
        raise Refusal(reason)
    refuse_proxy(eff, "nginx", "write a location with proxy_pass by hand")
    pattern = str(eff["from"])
    pieces = parse_pattern_pieces(pattern)
    names = [piece.name for piece in pieces if not isinstance(piece, str)]
    clash = sorted(set(names) & _RESERVED)
    if clash:
        raise Refusal(f"the variable name {clash[0]!r} is an nginx variable; rename it")
    ours = sorted(name for name in names if name.startswith("waypost_"))
    if ours:
        raise Refusal(f"the variable name {ours[0]!r} could clash with the export's; rename it")
    static = not names and not as_location
    ignore_slash = eff["trailing_slash"] == "ignore"
    insensitive = eff["case"] == "insensitive"
    keep = eff.get("query") == "keep"
    modifier = "~*" if insensitive else "~"
    if "to" in eff:
        status = eff["status"]
        if status not in REDIRECT_STATUSES:
            raise Refusal(f"status {status!r} is not a redirect status")
        target = _target(str(eff["to"]), keep, rewrite_style=False)
        notes = []
        if keep and "?" in str(eff["to"]).partition("#")[0].rstrip("?"):
            notes.append(
                "a request parameter the target sets too is sent twice by nginx (the target's "
                "value first), where Waypost sends the target's only"
            )
        if static:
            # A map key, so a hash lookup, one for any number of paths.
            for path in _exact_paths(pattern, ignore_slash):
                out.exact(status, path, insensitive, target)
        else:
            guards, encoded = _encoding_guards(
                pattern, str(eff["to"]), _guards(pattern, str(eff["to"]), allowed_hosts)
            )
            if encoded:
                notes.append(_encoding_note(encoded))
            location = _regex(pattern, ignore_slash, insensitive, guards).removeprefix("(?i)")
            out.lines.append(
                (
                    key,
                    f"location {modifier} {quote_word(location)} "
                    f"{{ return {status} {quote_word(target)}; }}",
                )
            )
        return notes
    if "rewrite" in eff:
        guards = _guards(pattern, str(eff["rewrite"]), allowed_hosts)
        regex = _regex(pattern, ignore_slash, insensitive, guards)
        target = _target(str(eff["rewrite"]), keep, rewrite_style=True)
        # Inside its own location, so that exact rules (checked first) win as in Waypost; a
        # server-level rewrite would run before nginx chooses a location.
        location = regex.removeprefix("(?i)")
        out.lines.append(
            (
                key,
                f"location {modifier} {quote_word(location)} "
                f"{{ rewrite {quote_word(regex)} {quote_word(target)} last; }}",
            )
        )
        return []
    if "respond" in eff:
        uri = out.responses.uri(read_respond(eff["respond"]))
        if static:
            for path in _exact_paths(pattern, ignore_slash):
                out.exact(_RESPOND, path, insensitive, uri)
        else:
            regex = _regex(pattern, ignore_slash, insensitive).removeprefix("(?i)")
            out.lines.append(
                (key, f"location {modifier} {quote_word(regex)} {{ rewrite ^ {uri} last; }}")
            )
        return []
    raise Refusal("'pass' has no nginx equivalent")


def _guards(pattern: str, target: str, allowed_hosts: Sequence[str]) -> dict[str, Guard]:
    """What the captures a target uses may match. nginx matches locations against ``$uri``,
    which it has percent-decoded (and whose slashes it has merged, unless ``merge_slashes
    off``), and writes captures into the Location as they are: '%0d%0a' would start a new
    header, '%09' or '%5C' after the leading '/' would make '/\t/evil.com' or '/\\evil.com'
    (another host to a browser), and a host capture any host. So no capture a target uses may
    hold a control character, one that starts the path may not start with '/' or '\\', and one
    in the host must make a host in ``allowed_hosts`` (see ``_safety``)."""
    return target_guards(pattern, target, allowed_hosts, "nginx", controls=True)


#: What a value may hold for nginx to write it as Waypost does: the characters Waypost leaves as
#: they are in each part of a URL (waypost.rules.target), since nginx writes a value decoded.
_ALWAYS_KEPT = string.ascii_letters + string.digits + "-._~"


def _kept(part: str, spans_slashes: bool) -> str:
    return _ALWAYS_KEPT + _SAFE_BY_PART[part] + ("/" if spans_slashes or part != "path" else "")


def _encoding_guards(
    pattern: str, target: str, guards: dict[str, Guard]
) -> tuple[dict[str, Guard], list[str]]:
    """``guards`` narrowed so that a ``string`` or ``path`` value the target fills into its
    path, query or fragment holds only characters Waypost writes as they are, and the names of
    the values so narrowed. nginx matches the decoded path and writes a capture as it is (a
    space as a space, 'é' as two raw bytes, '?' as the start of a query), where Waypost
    percent-encodes; nginx has no way to encode it, so such a request finds no rule."""
    try:
        parsed = parse_target(target)
    except RuleSyntaxError as error:
        raise Refusal(error.message) from None
    variables = {
        piece.name: piece for piece in parse_pattern_pieces(pattern) if isinstance(piece, Variable)
    }
    kept: dict[str, set[str]] = {}
    for piece in parsed.pieces:
        if isinstance(piece, str) or piece.part == "authority":
            continue
        variable = variables.get(piece.name)
        if variable is None or variable.converter not in ("string", "path"):
            continue
        chars = set(_kept(piece.part, variable.converter == "path"))
        if variable.converter == "string":
            chars.discard("/")
        kept[piece.name] = kept.get(piece.name, chars) & chars
    out = dict(guards)
    for name, chars in kept.items():
        guard = out.get(name, Guard())
        if guard.body is not None:
            continue  # a host's regex: letters, digits, '-' and '.'
        body = "".join(char if char.isalnum() else f"\\x{ord(char):02x}" for char in sorted(chars))
        out[name] = dataclasses.replace(guard, chars=body)
    return out, [name for name in kept if out[name].chars is not None]


def _encoding_note(names: Sequence[str]) -> str:
    named = ", ".join(f"{{{name}}}" for name in names)
    return (
        f"nginx writes {named} as it is, not percent-encoded, so it matches only values Waypost "
        "sends as they are (letters, digits and -._~!$&'()*+,;=:@/ as the URL part allows): a "
        "request whose value holds anything else (a space, '%', '?', non-ASCII...) finds no "
        "rule in nginx, where Waypost redirects"
    )


def _regex(
    pattern: str, ignore_slash: bool, insensitive: bool, guards: Mapping[str, Guard] | None = None
) -> str:
    try:
        regex, _names = pattern_regex(pattern, optional_slash=ignore_slash, guards=guards)
    except RegexNotSupported as error:
        raise Refusal(str(error)) from None
    return ("(?i)" if insensitive else "") + regex


def export_nginx(
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    allowed_hosts: Sequence[str] = (),
) -> ExportResult:
    """Write rules as nginx ``map`` blocks and the server snippet that uses them.

    The ``map`` blocks go in ``http {}``; everything after the second comment goes in the
    ``server {}`` block. Exact paths are hash lookups, so that 100,000 of them cost no more than
    ten. nginx compares plain map keys ignoring case, so a case-sensitive path (Waypost's
    default) is a key of two maps per status, one giving the target and one the path itself,
    which ``if ($waypost_exact_301_path = $uri)`` compares exactly; a second spelling of the same
    path (``/A`` after ``/a``) is a key of a second pair of maps, ``$waypost_exact_301_2``.
    Case-insensitive paths are plain keys of one map per status. Exact ``respond`` rules are keys
    of the maps ``$waypost_exact_respond`` (and ``$waypost_respond``) too: their value is an
    internal URI that ``rewrite ^ $waypost_exact_respond last`` goes to, where an internal
    location per status (and Content-Type and header names) answers with the body, Content-Type
    and headers, as Waypost does (see ``_respond``).
    No exact path gets a ``location =`` block: nginx sorts locations in quadratic time when it
    starts (minutes for 100,000). A rule that ignores the trailing slash has both spellings.
    Patterns become ``location ~`` (``~*``) blocks that ``return`` the redirect, rewrite to the
    response's internal URI, or ``rewrite ... last`` inside them; nginx tries them in file order
    after the exact paths, as Waypost tries patterns after exact paths. A ``<path:...>`` variable
    at the end of a rule that ignores the trailing slash is a lazy group followed by ``/?``, so
    that like Waypost it never captures that slash.

    nginx does not check a Location as Waypost does, so the regexes do: a capture a target uses
    never matches a control character, one right after the target's leading '/' never starts
    with '/' or '\\', and one that fills in the target's host matches only hosts that
    ``allowed_hosts`` allows (a rule whose host no allowed host can complete is unsupported).
    Where Waypost would answer 400, nginx finds no rule and the request goes on.
    """
    out = _Export()
    in_file_order = first_match(defaults)
    position = {id(rule): index for index, rule in enumerate(rules)}
    paths = _Paths(rules, defaults)
    patterns: list[int] = []
    repeats = repeated_rules(rules, defaults)

    def export(rule: Mapping[str, Any]) -> list[str]:
        index = position[id(rule)]
        if index in repeats:
            raise Refusal(repeats[index] + "; nginx holds one map entry or location per path")
        key: Any = priority_key(index, rule, defaults)
        located = key[0] != 0
        if in_file_order:
            # Every location comes after every exact path: an exact rule an earlier location
            # may take the path of is a location too, written in its place.
            located = located or any(paths.overlap(earlier, index) for earlier in patterns)
            key = index
        notes = _export_rule(rule, defaults, allowed_hosts, out, key, located)
        if located:
            patterns.append(index)
        return notes

    made, unsupported = export_each(rules, export)
    notes = [ExportNote(index, dict(rule), note) for index, rule, said in made for note in said]
    return ExportResult(out.text(), unsupported, len(made), notes)
