"""Netlify: the ``_redirects`` file and the ``[[redirects]]`` tables of ``netlify.toml``.

Import (read as netlify/build's redirect parser reads it; ``tests/data/peer-formats/netlify`` holds
its own tests, which the conformance suite runs):

* Netlify applies the first line that matches, so the result says ``defaults: {order:
  first_match}``: the rules are tried in file order, and two lines for one path are legal (the
  later one is tried when the first does not apply).
* ``/*`` at the end of a path becomes ``<path:splat>`` and ``:splat`` in the target ``{splat}``;
  a ``:name`` segment becomes ``<name>`` and ``:name`` in the target ``{name}``. Netlify's splat
  also matches the bare directory (``/news/*`` matches ``/news/``), which ``<path:...>`` does not;
  each such rule carries a note.
* A line is ``from [key=value ...] to [status[!]] [Condition=a,b ...] [# comment]``; a word
  starting with ``#`` ends the line (``/page#part`` is a target with a fragment). A forward rule
  leaves out the target (``/admin/* 200``: the target is ``/admin/:splat``).
* Status 301 (the default), 302, 303, 307, 308 make ``to`` rules. A rule without ``!`` (force)
  only applies when no file exists at the path, so it gets ``only_if_missing: true`` (the rule
  waits for the app's 404); a forced rule always applies. Status 200 to a path is a
  ``rewrite``; 200 to a URL proxies there (a ``rewrite`` to the URL, its host listed in the
  result's ``proxy_hosts``). 404, 410 and other error statuses
  become ``respond: <status>`` with a note: Netlify serves the target page with that status,
  Waypost answers with the status and no page.
* A full-URL source (``https://old.example.com/*``) becomes ``when.host`` and ``when.scheme``:
  the line applies to that scheme's requests only. The usual http/https pair (two lines in a row
  that differ only in the scheme) is one rule for both schemes, and the second line is reported
  as the same rule.
* Query parameters (``/store id=:id``) become ``when.query`` (``:id`` = present, a literal value =
  equal) and the rule gets ``query: drop``, because Netlify does not forward the parameters it
  matched. A target that uses a query value (``/blog/:id``) is skipped: Waypost placeholders only
  refer to path variables. Rules without query parameters keep the query string.
* ``Language=de,fr`` becomes ``when.language``; ``Country``, ``Role`` and ``Cookie`` conditions have
  no Waypost equivalent and their lines are skipped, as are rate limits (``rate_limit``).
  ``Sign=``/``signed`` (the secret Netlify signs a proxied request with) is noted and ignored on
  a redirect or a rewrite, where Netlify signs nothing; a signed proxy is skipped.
  ``headers`` (sent with a rewritten or proxied request) become ``set_headers``.
* Refused as Netlify refuses them: a source under ``/.netlify``, a URL without a host
  (``http://``), a destination that is neither a path nor a URL, an unknown status, a missing
  ``to`` (other than a forward rule); in netlify.toml also ``[redirects]`` written as a table, an
  entry that is not a table, ``headers``/``query``/``conditions`` that are not tables. A source
  without its leading ``/`` is skipped too (Netlify's _redirects refuses it, and netlify.toml,
  which takes it, gives it no documented meaning). netlify.toml's older key names (``origin``,
  ``destination``, ``params``/``parameters``, ``sign``/``signing``) and a status written as a
  string (``status = "200"``) are read as Netlify reads them.

Export writes one line per rule (two for a host: http and https; one for a rule with
``when.scheme``, which needs a host), forced with ``!`` unless the
rule sets ``only_if_missing``. Netlify ignores trailing slashes, so ``trailing_slash: strict``
rules are reported as unsupported. A splat or placeholder matches any text, and Netlify's
documentation says nothing of checking what it fills in, so a target whose host comes from one
(``https://:site/``) or whose path starts with one (``/:splat``: ``/go//evil.com`` would give
``//evil.com``) is reported as unsupported: Netlify cannot refuse a value that leads off-site,
which Waypost answers with 400. (A rewrite too: a 200 to another host is a proxy.)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._canon import Placeholder, Variable, parse_pattern_pieces, parse_target_pieces
from ._common import (
    REDIRECT_STATUSES,
    Collector,
    Refusal,
    check_baseline,
    is_absolute_url,
    needs_strict,
    single_value,
    split_source_url,
    unsupported_keys,
    with_proxy_hosts,
)
from ._priority import priority_order
from ._report import ExportResult, ImportResult, Skipped, export_each
from ._safety import exposure, refuse_exposed
from ._text import clean_text, numbered_lines

__all__ = ["export_netlify", "parse_netlify", "parse_netlify_toml"]

_STATUS = re.compile(r"^(\d{3})(!?)$")
_PLACEHOLDER = re.compile(r":([A-Za-z_]\w*)")
_SEGMENT_NAME = re.compile(r"^:([A-Za-z_]\w*)$")


def _convert_path(path: str) -> tuple[str, set[str], bool]:
    """The Waypost pattern for a Netlify path, its variable names, and whether it has a splat."""
    segments = path.split("/")
    out: list[str] = []
    names: set[str] = set()
    splat = False
    for index, segment in enumerate(segments):
        if segment == "*":
            if index != len(segments) - 1:
                raise Refusal(f"the splat '*' must be the last segment of {path!r}")
            out.append("<path:splat>")
            names.add("splat")
            splat = True
        elif match := _SEGMENT_NAME.match(segment):
            out.append(f"<{match.group(1)}>")
            names.add(match.group(1))
        elif "*" in segment or ":" in segment:
            raise Refusal(
                f"segment {segment!r} mixes a placeholder with text; Netlify placeholders "
                "must be whole segments"
            )
        elif "<" in segment or ">" in segment:
            raise Refusal(f"path {path!r} contains '<' or '>', which Waypost patterns cannot")
        else:
            out.append(segment)
    return "/".join(out), names, splat


def _convert_target(target: str, names: set[str], query_vars: set[str]) -> str:
    out: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(target):
        name = match.group(1)
        literal = target[pos : match.start()]
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if name in names:
            out.append(f"{{{name}}}")
        elif name in query_vars:
            raise Refusal(
                f"the target uses the query value ':{name}'; Waypost placeholders refer only to "
                "path variables"
            )
        else:
            out.append(match.group(0))
        pos = match.end()
    out.append(target[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Redirect:
    """One redirect as Netlify's parsers read it, from a ``_redirects`` line or a table."""

    source: str
    target: str | None
    status: int = 301
    force: bool = False
    query: Mapping[str, str] = field(default_factory=dict)
    conditions: Mapping[str, list[str]] = field(default_factory=dict)
    signed: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _check_source(source: str) -> tuple[str | None, str | None, str]:
    """The scheme and host (if any) and the path of a source, or refuse what Netlify refuses (a
    URL it cannot read, a ``/.netlify`` path) or gives no meaning (a path without its ``/``)."""
    scheme, host, path, query = split_source_url(source)
    if scheme is not None and host is None:
        raise Refusal(f"invalid URL {source!r}: it has no host")
    if scheme not in (None, "http", "https"):
        raise Refusal(f"the source {source!r} is neither an http nor an https URL")
    if scheme is None and not source.startswith("/"):
        raise Refusal(
            f"the source {source!r} is neither a path starting with '/' nor a URL (Netlify's "
            "_redirects refuses it; netlify.toml gives it no documented meaning)"
        )
    if query:
        raise Refusal("a query string in the source path is not Netlify syntax; use 'key=value'")
    if path == "/.netlify" or path.startswith("/.netlify/"):
        raise Refusal("sources must not start with '/.netlify': Netlify keeps that path for itself")
    return scheme, host, path


def _build_rule(entry: _Redirect) -> tuple[dict[str, Any], list[str]]:
    """One Netlify redirect as a Waypost rule and the notes it deserves, or raise Refusal."""
    notes: list[str] = []
    status, target = entry.status, entry.target
    if target is None and not (200 <= status < 300 and entry.source.endswith("/*")):
        raise Refusal("missing 'to': only a 200 rule whose path ends in '/*' may omit it")
    scheme, host, path = _check_source(entry.source)
    if target is None:
        # A forward rule ('/admin/* 200'): Netlify makes the target '/admin/:splat'.
        target = path[:-1] + ":splat"
    pattern, names, splat = _convert_path(path)
    if splat:
        base = path[:-1]
        notes.append(f"Netlify's {path!r} also matches {base!r} itself; add a rule if that matters")
    when: dict[str, Any] = {}
    if host:
        when["host"] = host
    if scheme:
        when["scheme"] = scheme
    query_vars: set[str] = set()
    if entry.query:
        when_query: dict[str, str] = {}
        for key, value in entry.query.items():
            if value.startswith(":"):
                query_vars.add(value[1:])
                when_query[key] = "*"
            else:
                when_query[key] = value
        when["query"] = when_query
    for key, values in entry.conditions.items():
        if key.lower() == "language":
            when["language"] = [value.lower() for value in values]
        else:
            raise Refusal(
                f"the Netlify condition {key}={','.join(values)} (the visitor's "
                f"{_CONDITION_WORDS.get(key.lower(), key)}) has no Waypost equivalent"
            )
    proxy = status == 200 and is_absolute_url(target)
    if entry.signed is not None:
        if proxy:
            raise Refusal(
                f"Netlify signs the proxied request with the secret {entry.signed!r} (a JWS in "
                "X-Nf-Sign); Waypost cannot sign a request"
            )
        notes.append(
            f"Netlify signs only proxied requests; 'signed = {entry.signed}' does nothing here"
        )
    rule: dict[str, Any] = {"from": pattern}
    if status in REDIRECT_STATUSES:
        rule["to"] = _convert_target(target, names, query_vars)
        rule["status"] = status
        if entry.query:
            rule["query"] = "drop"
    elif proxy:
        # A placeholder in the authority (':site'; a port is digits) would let the request
        # choose where it is proxied: Waypost proxies only to hosts written out.
        if re.search(r":[A-Za-z_]", urlsplit(target).netloc):
            raise Refusal(f"the proxy target {target!r} takes its host from the request")
        rule["rewrite"] = _convert_target(target, names, query_vars)
        if entry.query:
            rule["query"] = "drop"
        if entry.headers:
            rule["set_headers"] = dict(entry.headers)
    elif status == 200:
        rule["rewrite"] = _convert_target(target, names, query_vars)
        if entry.query:
            rule["query"] = "drop"
        if entry.headers:
            rule["set_headers"] = dict(entry.headers)
    elif 400 <= status <= 599:
        rule["respond"] = status
        notes.append(
            f"Netlify serves {target!r} with status {status}; the rule responds {status} "
            "without that page"
        )
    else:
        raise Refusal(f"status {status} is not a redirect, a rewrite (200) or an error status")
    if entry.headers and "set_headers" not in rule:
        notes.append("Netlify sends 'headers' only with rewritten and proxied requests; ignored")
    if not entry.force:
        # Netlify applies an unforced rule only when no file exists at the path ("shadowing").
        rule["only_if_missing"] = True
    if when:
        rule["when"] = when
    return rule, notes


_CONDITION_WORDS = {"country": "country", "role": "role, from its JWT", "cookie": "cookies"}


def _is_pair(token: str) -> bool:
    return "=" in token and not token.startswith("/") and not is_absolute_url(token)


def _parse_line(line: str) -> _Redirect:
    """A ``_redirects`` line, read as Netlify's line parser reads it."""
    tokens = line.split()
    for index, token in enumerate(tokens):
        if token.startswith("#"):  # an inline comment ('/a/b#frag' is a target, not one)
            del tokens[index:]
            break
    source, rest = tokens[0], tokens[1:]
    if not rest:
        raise Refusal("missing destination: the line has only a source")
    query: dict[str, str] = {}
    target: str | None = None
    if not _STATUS.match(rest[0]):  # else a forward rule ('/admin/* 200'), without a target
        while rest and _is_pair(rest[0]):
            key, _, value = rest.pop(0).partition("=")
            query[key] = value
        if not rest or not (rest[0].startswith("/") or is_absolute_url(rest[0])):
            found = repr(rest[0]) if rest else "nothing"
            raise Refusal(f"the destination must start with '/' or be a URL; found {found}")
        target = rest.pop(0)
    status, force = 301, False
    if rest:
        match = _STATUS.match(rest.pop(0))
        if not match:
            raise Refusal(
                f"invalid status code {line.split()[len(tokens) - len(rest) - 1]!r}: the "
                "destination is followed by a status ('301', '200!'), then conditions"
            )
        status, force = int(match.group(1)), bool(match.group(2))
    conditions: dict[str, list[str]] = {}
    signed: str | None = None
    for token in rest:
        key, sep, value = token.partition("=")
        if not sep:
            raise Refusal(f"cannot read {token!r}: expected a condition like Language=de")
        if key in ("Sign", "signed"):
            signed = value
        else:
            conditions[key] = value.split(",")
    return _Redirect(source, target, status, force, query, conditions, signed)


def parse_netlify(text: str) -> ImportResult:
    """Read a Netlify ``_redirects`` file; see the module docstring for what maps to what."""
    builder = Collector(first_match=True)  # Netlify applies the first matching line
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rule, notes = _build_rule(_parse_line(line))
        except Refusal as refusal:
            builder.skipped.append(Skipped(number, raw, str(refusal)))
            continue
        if not builder.add_scheme_twin(number, raw, rule):
            builder.add(number, raw, rule, notes)
    return with_proxy_hosts(builder.result("netlify"))


_TOML_TABLE = re.compile(r"^\s*\[\[\s*redirects\s*\]\]")
_TOML_KEY = re.compile(r"^\s*(from|origin)\s*=")
_TOML_ANY = re.compile(r"^\s*\[|^\s*redirects\s*=")

#: The old names netlify.toml still accepts, and the names they stand for.
_TOML_ALIASES = {
    "origin": "from",
    "destination": "to",
    "params": "query",
    "parameters": "query",
    "sign": "signed",
    "signing": "signed",
}
_TOML_KEYS = {"from", "to", "status", "force", "query", "conditions", "signed", "headers"}


def _toml_entry_lines(lines: list[str], count: int) -> list[int]:
    """Per ``[[redirects]]`` entry, the line that names its source (``from`` or ``origin``), or
    its header when none does; line 1 for entries written some other way."""
    headers = [n for n, line in enumerate(lines, start=1) if _TOML_TABLE.match(line)]
    if len(headers) != count:
        return [1] * count
    out: list[int] = []
    for index, header in enumerate(headers):
        end = headers[index + 1] if index + 1 < len(headers) else len(lines) + 1
        named = [n for n in range(header + 1, end) if _TOML_KEY.match(lines[n - 1])]
        out.append(named[0] if named else header)
    return out


def _toml_status(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)  # Netlify reads status = "200" as 200
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Refusal(f"invalid status code {value!r}")


def _toml_redirect(entry: Any) -> _Redirect:
    if not isinstance(entry, dict):
        raise Refusal(f"each redirect must be a table ([[redirects]]), not {entry!r}")
    # The current name wins over an old one written beside it.
    data = {str(key): value for key, value in entry.items() if key not in _TOML_ALIASES}
    for old, value in entry.items():
        if old in _TOML_ALIASES:
            data.setdefault(_TOML_ALIASES[old], value)
    if "rate_limit" in data:
        raise Refusal("Netlify's rate limiting ('rate_limit') has no Waypost equivalent")
    extra = sorted(set(data) - _TOML_KEYS)
    if extra:
        raise Refusal(f"cannot import {', '.join(map(repr, extra))} of a redirect")
    if not isinstance(data.get("from"), str):
        raise Refusal("missing 'from': the redirect has no source path or URL")
    target = data.get("to")
    if target is not None and not isinstance(target, str):
        raise Refusal(f"'to' {target!r} is not a string")
    for key in ("query", "conditions", "headers"):
        if not isinstance(data.get(key) or {}, dict):
            raise Refusal(f"'{key}' must be an object (a table), not {data[key]!r}")
    signed = data.get("signed")
    return _Redirect(
        data["from"],
        target,
        _toml_status(data.get("status", 301)),
        data.get("force", False) is True,
        {str(k): str(v) for k, v in (data.get("query") or {}).items()},
        {
            str(k): [str(item) for item in (v if isinstance(v, list) else [v])]
            for k, v in (data.get("conditions") or {}).items()
        },
        None if signed is None else str(signed),
        {str(k): str(v) for k, v in (data.get("headers") or {}).items()},
    )


def parse_netlify_toml(text: str) -> ImportResult:
    """Read the ``[[redirects]]`` of a ``netlify.toml``; other tables are ignored."""
    text = clean_text(text)
    builder = Collector(first_match=True)  # Netlify applies the first matching line
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else 1
        builder.skipped.append(Skipped(line, "", f"invalid TOML, nothing imported: {error}"))
        return builder.result("netlify-toml")
    lines = text.split("\n")
    entries = data.get("redirects", [])
    if not isinstance(entries, list):
        number = next(
            (
                n
                for n, line in enumerate(lines, start=1)
                if "redirects" in line and _TOML_ANY.match(line)
            ),
            1,
        )
        builder.skip(
            number,
            lines[number - 1],
            "'redirects' must be an array of tables, written [[redirects]]; nothing imported",
        )
        return builder.result("netlify-toml")
    for entry, number in zip(entries, _toml_entry_lines(lines, len(entries)), strict=True):
        raw = lines[number - 1]
        try:
            rule, notes = _build_rule(_toml_redirect(entry))
        except Refusal as refusal:
            builder.skipped.append(Skipped(number, raw, str(refusal)))
            continue
        if not builder.add_scheme_twin(number, raw, rule):
            builder.add(number, raw, rule, notes)
    return with_proxy_hosts(builder.result("netlify-toml"))


# -- export -------------------------------------------------------------------------------------


def _export_path(pattern: str) -> tuple[str, str | None]:
    """The Netlify path for a pattern and the name of its splat variable, if any."""
    pieces = parse_pattern_pieces(pattern)
    out: list[str] = []
    splat: str | None = None
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            if any(char.isspace() for char in piece) or "*" in piece or ":" in piece:
                raise Refusal(f"the path text {piece!r} cannot be written in _redirects")
            out.append(piece)
            continue
        before = out[-1] if out else ""
        after = pieces[index + 1] if index + 1 < len(pieces) else "/"
        whole_segment = before.endswith("/") and (
            not isinstance(after, str) or after.startswith("/")
        )
        if isinstance(after, Variable) or not whole_segment:
            raise Refusal(f"{piece.render()} is not a whole path segment; Netlify cannot match it")
        if piece.converter == "path" and index == len(pieces) - 1:
            out.append("*")
            splat = piece.name
        elif piece.converter == "string" and not piece.args and piece.name != "splat":
            out.append(f":{piece.name}")
        else:
            raise Refusal(
                f"Netlify placeholders match any segment; {piece.render()} cannot be constrained"
            )
    return "".join(out), splat


def _export_target(target: str, splat: str | None) -> str:
    out: list[str] = []
    pieces = parse_target_pieces(target)
    for index, piece in enumerate(pieces):
        if isinstance(piece, Placeholder):
            nxt = pieces[index + 1] if index + 1 < len(pieces) else ""
            if isinstance(nxt, str) and nxt[:1].isalnum() | (nxt[:1] == "_"):
                raise Refusal(f"{{{piece.name}}} is followed by a letter; Netlify cannot end it")
            out.append(":splat" if piece.name == splat else f":{piece.name}")
        else:
            if any(char.isspace() for char in piece) or _PLACEHOLDER.search(piece):
                raise Refusal(f"the target text {piece!r} cannot be written in _redirects")
            out.append(piece)
    return "".join(out)


def _export_rule(rule: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> list[str]:
    eff = check_baseline(rule, defaults, only_if_missing=True)
    reason = unsupported_keys(
        eff,
        {"to", "rewrite", "respond", "status", "query", "trailing_slash", "case", "when"}
        | {"only_if_missing"},
        {"host", "scheme", "query", "language"},
    )
    if reason:
        raise Refusal(reason)
    if eff["case"] != "sensitive":
        raise Refusal("Netlify cannot match case-insensitively")
    if needs_strict(eff):
        raise Refusal("Netlify ignores trailing slashes; 'trailing_slash: strict' cannot be kept")
    force = "" if eff["only_if_missing"] else "!"
    path, splat = _export_path(str(eff["from"]))
    when = eff.get("when") or {}
    parts: list[str] = []
    query = when.get("query") or {}
    for key, raw_value in query.items():
        value = single_value(raw_value, f"the query parameter {key!r}")
        if value is None:
            raise Refusal(f"Netlify cannot require the query parameter {key!r} to be absent")
        if any(char.isspace() for char in f"{key}{value}"):
            raise Refusal(f"the query condition {key}={value} cannot be written in _redirects")
        parts.append(f"{key}=:{key}" if value == "*" else f"{key}={value}")
    expected_query = "drop" if query else "keep"
    if "respond" in eff:
        raise Refusal("Netlify needs a page to serve for an error status; use a 404 page instead")
    refuse_exposed(exposure(str(eff.get("to", eff.get("rewrite")))), "Netlify")
    if "to" in eff:
        if eff["status"] not in REDIRECT_STATUSES:
            raise Refusal(f"status {eff['status']!r} is not a redirect status")
        target, status = _export_target(str(eff["to"]), splat), f"{eff['status']}{force}"
    else:
        target, status = _export_target(str(eff["rewrite"]), splat), f"200{force}"
    if eff["query"] == "keep" and "?" in str(eff.get("to", eff.get("rewrite"))):
        # Waypost merges the two (the target's parameters first, and winning); Netlify does not
        # document what it does with both.
        raise Refusal(
            "Netlify cannot be told to merge the request's query string into a target that has "
            "its own, as Waypost does"
        )
    if eff["query"] != expected_query:
        raise Refusal(
            "Netlify keeps the query string unless the rule matches query parameters; "
            f"'query: {eff['query']}' cannot be expressed here"
        )
    tail = [target, status]
    if when.get("language"):
        languages = when["language"]
        languages = [languages] if isinstance(languages, str) else languages
        tail.append("Language=" + ",".join(languages))
    hosts = when.get("host")
    raw_schemes = when.get("scheme") or ["http", "https"]
    schemes = sorted({raw_schemes} if isinstance(raw_schemes, str) else set(raw_schemes))
    if hosts is None:
        if len(schemes) == 1:
            raise Refusal(
                "Netlify matches a scheme only in a full URL source (http://host/path); set "
                "'when.host' to write one"
            )
        sources = [path]
    else:
        host_list = [hosts] if isinstance(hosts, str) else list(hosts)
        if len(host_list) != 1 or "*" in host_list[0]:
            raise Refusal("Netlify matches one exact host per line; split the rule per host")
        sources = [f"{scheme}://{host_list[0]}{path}" for scheme in schemes]
    return [" ".join([source, *parts, *tail]) for source in sources]


def export_netlify(
    rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None
) -> ExportResult:
    """Write rules as a Netlify ``_redirects`` file; see the module docstring.

    Netlify applies the first line that matches, so the lines are in the order Waypost offers
    the rules (file order for ``order: first_match``, else by specificity; see ``_priority``).
    """
    lines = ["# Generated by waypost. Rules are forced (!) unless they set only_if_missing."]
    made, unsupported = export_each(
        rules, lambda rule: _export_rule(rule, defaults), priority_order(rules, defaults)
    )
    for _, _, rule_lines in made:
        lines.extend(rule_lines)
    return ExportResult("\n".join(lines) + "\n", unsupported, len(made))
