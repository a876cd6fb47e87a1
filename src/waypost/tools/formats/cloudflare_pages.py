"""Cloudflare Pages (and Workers static assets): the ``_redirects`` file.

Not Netlify's dialect, though it looks like it. What Cloudflare's parser and asset worker do
(``workers-sdk``, ``packages/workers-shared``: ``parseRedirects.ts``, ``rules-engine.ts``,
``handler.ts``), and what the import makes of it:

* A line is ``from to [status]``; ``#`` starts a comment, at the start of a line or as the third
  or fourth token (``/a /b 301 # why``; ``/a /b#frag`` keeps its fragment). Any other count of
  tokens is refused, as Cloudflare refuses it.
* The status defaults to **302**; 200, 301, 302, 303, 307 and 308 are allowed, nothing else
  (no ``!``, no conditions, no query parameters). 200 to a path is a ``rewrite`` (Cloudflare
  serves the asset at the target's path, without its query or fragment); 200 to another origin
  is refused, as Cloudflare refuses it.
* Rules always run before the assets (never ``only_if_missing``) and the first matching line
  wins: the import sets ``defaults: {order: first_match}`` and keeps the line order.
* ``from`` is a path: an ``https://`` source is refused (Cloudflare allows only relative ones), a
  path without the leading slash gets one (``yeah.com`` is ``/yeah.com``), and a query string or
  fragment in it is ignored, as Cloudflare ignores it (with a note). A ``from`` seen before is
  refused on its later line. Matching is exact: case and trailing slash count
  (``trailing_slash: strict``).
* ``*`` (anywhere, inside a segment too: ``/partialSplat*``) matches any text, the empty text
  included, and ``:name`` (``[A-Za-z]\\w*``, inside a segment too) one segment's worth; the
  target's ``:splat`` and ``:name`` are filled in. A splat becomes ``<path:splat>``, which never
  matches the empty text, so the line also gives the rule for the empty splat (``/splat/*`` is
  ``/splat/`` and ``/splat/<path:splat>``).
* Cloudflare squeezes every run of slashes in a relative target into one after filling it in
  (``/:splat/new`` with an empty splat is ``/new``, and ``/foo//evil.com`` under ``/foo/*`` to
  ``/:splat`` is ``/evil.com``, never the protocol-relative ``//evil.com``). The import squeezes
  the target's own text; a value Waypost fills in is never empty and never starts with a slash
  (``<path:...>`` does not match ``/evil.com``, so that request passes), but a splat value that
  ends in a slash next to a ``/`` of the target keeps the ``//`` (a note says so on such lines).
* Targets are written as Cloudflare stores them: percent-encoded as a URL parser would
  (``{`` as ``%7B``), an ``https://host`` without a path given ``/``. ``http://`` targets are
  refused, as Cloudflare refuses them.
* Cloudflare's limits are kept: a line longer than 2000 characters, a static rule past the
  2000th, and every line from the 101st dynamic rule on are refused; so are ``/* /index.html``
  and ``/ /index`` (Cloudflare's HTML handling would make them loop).
* Cloudflare merges the request's query string into the target's, the target's value winning
  for a repeated key; Waypost appends it (both values are kept).

"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from waypost.exceptions import RuleSyntaxError
from waypost.rules.pattern import parse_pattern

from ._canon import Placeholder, Variable
from ._common import Collector, Refusal, unreachable_source
from ._report import ImportResult, Note
from ._text import numbered_lines

__all__ = ["parse_cloudflare_pages"]

STATUSES = frozenset({200, 301, 302, 303, 307, 308})
MAX_LINE_LENGTH = 2000
MAX_STATIC_RULES = 2000
MAX_DYNAMIC_RULES = 100

# Cloudflare's URL_REGEX (validateURL.ts): only https:// counts as an absolute URL.
_ABSOLUTE = re.compile(r"^https://+(?P<host>[^/]+)/?(?P<path>.*)", re.S)
_PIECE = re.compile(r"\*|:([A-Za-z]\w*)")
_TARGET_PLACEHOLDER = re.compile(r":([A-Za-z]\w*)")
# WHATWG URL percent-encode sets (path, query, fragment) beyond controls and non-ASCII.
_PATH_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "#<>?`{}')
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "#<>')
_FRAGMENT_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "<>`')


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", "%2e", "%2E"):
            if last:
                out.append("")
        elif segment.lower() in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def _url_path(text: str, *, search: bool, fragment: bool) -> str:
    """What Cloudflare's ``extractPathname`` keeps of a path: the path percent-encoded and
    without dot segments, and the query and fragment if asked for."""
    if not text.startswith("/"):
        text = "/" + text
    rest, hash_mark, frag = text.partition("#")
    path, question, query = rest.partition("?")
    out = _remove_dot_segments(quote(path, safe=_PATH_SAFE + "%"))
    if search and question and query:
        out += "?" + quote(query, safe=_QUERY_SAFE + "%")
    if fragment and hash_mark and frag:
        out += "#" + quote(frag, safe=_FRAGMENT_SAFE + "%")
    return out


def _read_target(token: str) -> str:
    """The target as Cloudflare stores it, or raise :class:`Refusal` as it refuses it."""
    found = _ABSOLUTE.match(token)
    if found and found.group("host"):
        return f"https://{found.group('host')}" + _url_path(
            found.group("path"), search=True, fragment=True
        )
    if not token.startswith("/"):
        raise Refusal(
            "the target must be a path starting with '/' or an https:// URL (Cloudflare Pages "
            f"refuses {token!r})"
        )
    return _url_path(token, search=True, fragment=True)


def _squeeze(text: str) -> str:
    return re.sub(r"/{2,}", "/", text)


class _Source:
    """A ``from`` path split into literal text, ``:name`` placeholders and the ``*`` splat."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pieces: list[str | Variable] = []
        pos = 0
        names: list[str] = []
        for found in _PIECE.finditer(path):
            if found.start() > pos:
                self.pieces.append(path[pos : found.start()])
            name = "splat" if found.group(0) == "*" else found.group(1)
            if name in names:
                raise Refusal(
                    f"{path!r} names {'the splat' if name == 'splat' else ':' + name} twice; "
                    "Cloudflare's matcher cannot compile it and never applies the line"
                )
            names.append(name)
            converter = "path" if found.group(0) == "*" else "string"
            self.pieces.append(Variable(name, converter))
            pos = found.end()
        if pos < len(path):
            self.pieces.append(path[pos:])
        self.names = set(names)
        for index, piece in enumerate(self.pieces):
            after = self.pieces[index + 2 :] if index + 2 <= len(self.pieces) else []
            nxt = self.pieces[index + 1] if index + 1 < len(self.pieces) else None
            if (
                isinstance(piece, Variable)
                and piece.converter == "string"
                and isinstance(nxt, str)
                and "/" not in nxt
                and after
                and isinstance(after[0], Variable)
            ):
                raise Refusal(
                    f"in {path!r}, ':{piece.name}' is followed by another placeholder in its "
                    "segment; Cloudflare gives the first the longest value, Waypost the shortest"
                )

    @property
    def dynamic(self) -> bool:
        return bool(self.names)

    def pattern(self, *, empty_splat: bool = False) -> str:
        """The Waypost pattern (for the empty splat: the path without the ``*``)."""
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, Variable):
                if piece.converter == "path":
                    if not empty_splat:
                        out.append("<path:splat>")
                else:
                    out.append(f"<{piece.name}>")
                continue
            if re.search(r"%2f", piece, re.I):
                raise Refusal(
                    f"{self.path!r} holds an encoded slash '%2F'; Waypost matches decoded paths "
                    "and cannot tell it from '/'"
                )
            text = unquote(piece)
            if "<" in text or ">" in text:
                raise Refusal(f"{self.path!r} holds '<' or '>', which Waypost patterns cannot")
            out.append(text)
        pattern = "".join(out)
        try:
            parse_pattern(pattern)
        except RuleSyntaxError as error:
            raise Refusal(f"{self.path!r} cannot be a Waypost pattern: {error}") from None
        return pattern


def _target(to: str, names: set[str], *, empty_splat: bool, relative: bool) -> tuple[str, bool]:
    """The Waypost target for Cloudflare's ``to`` (placeholders it defines filled in, the rest
    literal; a relative target's slashes squeezed as Cloudflare squeezes them), and whether a
    splat value ending in '/' could meet a '/' of the target."""
    pieces: list[str | Placeholder] = []
    pos = 0
    for found in _TARGET_PLACEHOLDER.finditer(to):
        name = found.group(1)
        if name not in names:
            continue
        pieces.append(to[pos : found.start()])
        pieces.append(Placeholder(name) if not (empty_splat and name == "splat") else "")
        pos = found.end()
    pieces.append(to[pos:])
    merged: list[str | Placeholder] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    slash_after_splat = False
    out: list[str] = []
    for index, piece in enumerate(merged):
        if isinstance(piece, Placeholder):
            out.append(f"{{{piece.name}}}")
            nxt = merged[index + 1] if index + 1 < len(merged) else ""
            if piece.name == "splat" and isinstance(nxt, str) and nxt.startswith("/"):
                slash_after_splat = relative
            continue
        text = _squeeze(piece) if relative else piece
        out.append(text.replace("{", "{{").replace("}", "}}"))
    return "".join(out), slash_after_splat


def _rules_for(source: _Source, to: str, status: int) -> tuple[list[dict[str, Any]], list[str]]:
    notes: list[str] = []
    relative = not _ABSOLUTE.match(to)
    variants = [False, True] if "splat" in source.names else [False]
    rules: list[dict[str, Any]] = []
    for empty_splat in variants:
        pattern = source.pattern(empty_splat=empty_splat)
        target, slash_after_splat = _target(
            to, source.names, empty_splat=empty_splat, relative=relative
        )
        if slash_after_splat:
            notes.append(
                "a request path ending in '/' gives a splat ending in '/', so the target has "
                "'//' where Cloudflare squeezes it to '/'"
            )
        rule: dict[str, Any] = {"from": pattern}
        if status == 200:
            path = target.partition("#")[0].partition("?")[0]
            if path != target and not empty_splat:
                notes.append(
                    "Cloudflare serves the asset at the target's path: its query string and "
                    "fragment are dropped"
                )
            rule["rewrite"] = path
        else:
            rule["to"] = target
            rule["status"] = status
        rule["trailing_slash"] = "strict"
        rules.append(rule)
    if variants == [False, True]:
        # The empty splat first: the two never match the same path, and an exact rule reads
        # better ahead of its pattern.
        rules.reverse()
    return rules, notes


def parse_cloudflare_pages(text: str) -> ImportResult:
    """Read a Cloudflare Pages ``_redirects`` file; see the module docstring."""
    collector = Collector(first_match=True)
    seen: set[str] = set()
    static_rules = dynamic_rules = 0
    static_allowed = True
    lines = list(numbered_lines(text))
    for position, (number, raw) in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if len(line) > MAX_LINE_LENGTH:
                raise Refusal(
                    f"the line is longer than {MAX_LINE_LENGTH} characters; Cloudflare ignores it"
                )
            tokens = line.split()
            comment = next(
                (i for i, token in enumerate(tokens) if i >= 2 and token.startswith("#")), None
            )
            if comment is not None:
                tokens = tokens[:comment]
            if not 2 <= len(tokens) <= 3:
                raise Refusal(
                    "expected 2 or 3 whitespace-separated tokens (from, to, status); "
                    f"got {len(tokens)}"
                )
            from_token, to_token = tokens[0], tokens[1]
            status_token = tokens[2] if len(tokens) == 3 else "302"
            if _ABSOLUTE.match(from_token):
                raise Refusal(
                    f"Cloudflare Pages allows only relative paths in 'from'; {from_token!r} is "
                    "an absolute URL"
                )
            notes: list[str] = []
            if "?" in from_token or "#" in from_token:
                notes.append(
                    "Cloudflare ignores the query string and fragment of 'from': the rule "
                    "matches the path alone"
                )
            from_path = _url_path(from_token, search=False, fragment=False)
            source = _Source(from_path)
            if static_allowed and not source.dynamic:
                static_rules += 1
                if static_rules > MAX_STATIC_RULES:
                    raise Refusal(f"Cloudflare applies at most {MAX_STATIC_RULES} static rules")
            else:
                # From the first splat or placeholder on, every rule counts as dynamic.
                static_allowed = False
                dynamic_rules += 1
                if dynamic_rules > MAX_DYNAMIC_RULES:
                    for later, later_raw in lines[position:]:
                        if later_raw.strip() and not later_raw.strip().startswith("#"):
                            collector.skip(
                                later,
                                later_raw,
                                f"Cloudflare applies at most {MAX_DYNAMIC_RULES} rules from the "
                                "first with a splat or placeholder on, and ignores the rest",
                            )
                    break
            to = _read_target(to_token)
            if not status_token.isdigit() or int(status_token) not in STATUSES:
                raise Refusal(
                    "valid statuses are 200, 301, 302 (the default), 303, 307 and 308; got "
                    f"{status_token!r}"
                )
            status = int(status_token)
            relative = not _ABSOLUTE.match(to)
            loops = from_path.endswith(("/*", "/")) and re.search(r"/index(\.html)?$", to)
            if relative and loops:
                raise Refusal(
                    "Cloudflare refuses this rule: its HTML handling strips '.html' and "
                    "'/index', so the rule would loop"
                )
            if from_path in seen:
                raise Refusal(f"a rule for {from_path!r} came earlier; Cloudflare ignores this one")
            seen.add(from_path)
            if status == 200 and not relative:
                raise Refusal(
                    "a 200 (rewrite) can only point to a path on the site; Cloudflare Pages "
                    f"does not proxy to {to!r}"
                )
            rules, rule_notes = _rules_for(source, to, status)
            for rule in rules:
                unreachable = unreachable_source(rule["from"])
                if unreachable is not None:
                    raise Refusal(unreachable)
        except Refusal as refusal:
            collector.skip(number, raw, str(refusal))
            continue
        # Not Collector.add: two lines may make the same rule (the later one then never
        # applies, which first-match order allows), and neither is a skipped line.
        collector.rules.extend(rules)
        collector.lines.extend([number] * len(rules))
        collector.notes.extend(
            Note(number, raw, note) for note in dict.fromkeys(notes + rule_notes)
        )
    return collector.result("cloudflare-pages")
