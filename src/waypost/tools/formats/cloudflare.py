"""Cloudflare Bulk Redirects: the CSV list format.

Columns, without a header row (one is tolerated): ``source_url, target_url, status_code,
preserve_query_string, include_subdomains, subpath_matching, preserve_path_suffix``; only the first
two are required, the status defaults to 301 and the flags to false.

Import: the host of ``source_url`` becomes ``when.host`` (``include_subdomains`` adds
``*.host``) and its scheme, if any, ``when.scheme`` (Cloudflare applies ``http://example.com/x``
to http requests only); where the list gives the same redirect for both schemes, the scheme is
dropped and the second line reported as the same rule.
``subpath_matching`` gives two rules, the exact path and ``<path:suffix>`` under it, whose
target ends in ``{suffix}`` when ``preserve_path_suffix`` is set; Cloudflare appends the rest of
the path as it is, trailing slash included, so that rule is ``trailing_slash: strict``.
``preserve_query_string`` false means ``query: drop``. A source with a query string is skipped:
Cloudflare does not allow one. Cloudflare matches the trailing slash exactly, so rules get
``trailing_slash: strict``; the exporter writes a rule that ignores the slash as two lines
(``/x`` and ``/x/``), which read back as one rule.

Cloudflare chooses among the redirects that match by its documented precedence, not by line
(the more specific subpath, an exact host before ``include_subdomains``, the more specific
domain, a source with a scheme): the import writes the rules in that order under
``order: first_match``. A source URL listed twice is refused on its later line.

Export needs a host for every rule: from ``when.host`` or the ``host`` argument; a rule for
one scheme (``when.scheme: http``) is written with it (``http://example.com/x``). A rule that
Cloudflare's precedence would apply where Waypost applies an earlier one, or that repeats a
source URL already written, is reported instead of written. The exact rule
and ``<path:...>`` rule pair that an import produces is written back as one subpath line (a
``<path:...>`` rule whose target ends in its value must be strict: Cloudflare keeps the slash).

Bulk Redirects have no placeholders: the only request value Cloudflare writes into a target is
the path suffix, which it appends to the target URL's path ("How Bulk Redirects work" in
Cloudflare's documentation: ``example.com/foo/`` to ``https://example.com/qux/`` sends
``/foo/bar`` to ``https://example.com/qux/bar``), so it cannot change a host the target names.
A pair whose suffix would start the target's path (``/`` + ``{rest}``: ``//evil.com``) or join
its host (``https://example.com`` + ``{rest}``) is not merged: Cloudflare cannot refuse a value
that leads off-site, and the ``<path:...>`` rule is reported so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._canon import Placeholder, Variable, parse_pattern_pieces, parse_target_pieces
from ._common import (
    Collector,
    Refusal,
    check_baseline,
    merge_slash_twins,
    needs_strict,
    slash_twins,
    split_source_url,
    unsupported_keys,
)
from ._report import ExportResult, ImportResult, Unsupported
from ._safety import exposure, refuse_exposed
from ._text import parse_bool, read_csv_rows

__all__ = ["export_cloudflare", "parse_cloudflare"]

_STATUSES = frozenset({301, 302, 307, 308})
_FLAGS = ("preserve_query_string", "include_subdomains", "subpath_matching", "preserve_path_suffix")


@dataclass(frozen=True, slots=True)
class _Row:
    """One CSV line read: where Cloudflare's matching puts it, and the rules it gives."""

    line: int
    raw: str
    scheme: str | None
    host: str
    subdomains: bool
    path: str
    subpath: bool
    rules: list[dict[str, Any]]
    notes: list[str]

    @property
    def source(self) -> str:
        return (f"{self.scheme}://" if self.scheme else "") + self.host + self.path


def precedence(path: str, host: str, subdomains: bool, scheme: str | None) -> tuple[Any, ...]:
    """Cloudflare's order among URL redirects that match one request, smallest first ("How
    Bulk Redirects work", *Determining the URL redirect to apply*): the more specific subpath
    (the longer path; a trailing slash does not count), then an exact host before
    ``include_subdomains``, then the more specific domain (more labels), then a source with a
    scheme before one without."""
    return (
        -len(path.rstrip("/")),
        subdomains,
        -host.count("."),
        scheme is None,
    )


def _under(parent: str, path: str) -> bool:
    return path == parent or path.startswith(parent if parent.endswith("/") else parent + "/")


def overlaps(first: tuple[str, bool, str, bool], second: tuple[str, bool, str, bool]) -> bool:
    """Whether some request matches both lines, each ``(host, include_subdomains, path,
    subpath_matching)`` (the scheme aside)."""
    host_a, subs_a, path_a, sub_a = first
    host_b, subs_b, path_b, sub_b = second
    hosts = (
        host_a == host_b
        or (subs_a and host_b.endswith("." + host_a))
        or (subs_b and host_a.endswith("." + host_b))
    )
    paths = (
        path_a == path_b or (sub_a and _under(path_a, path_b)) or (sub_b and _under(path_b, path_a))
    )
    return hosts and paths


def _read_row(line: int, raw: str, fields: list[str]) -> _Row:
    if len(fields) < 2 or not fields[0] or not fields[1]:
        raise Refusal("a row needs a source URL and a target URL")
    if len(fields) > 7:
        raise Refusal(f"a row has at most 7 columns, this one has {len(fields)}")
    source, target = fields[0], fields[1]
    status_text = fields[2] if len(fields) > 2 and fields[2] else "301"
    if not status_text.isdigit() or int(status_text) not in _STATUSES:
        raise Refusal(f"status {status_text!r} is not one of 301, 302, 307, 308")
    flags: dict[str, bool] = {}
    for name, value in zip(_FLAGS, [*fields[3:], "", "", "", ""], strict=False):
        parsed = parse_bool(value)
        if parsed is None:
            raise Refusal(f"{name} {value!r} is not TRUE or FALSE")
        flags[name] = parsed
    scheme, host, path, query = split_source_url(source)
    if not host:
        raise Refusal(f"the source URL {source!r} has no host")
    if query:
        raise Refusal("Cloudflare source URLs cannot have a query string")
    if "<" in path or ">" in path:
        raise Refusal(f"the path {path!r} contains '<' or '>', which Waypost patterns cannot")
    if scheme not in (None, "http", "https"):
        raise Refusal(f"the source URL {source!r} is neither http nor https")
    notes: list[str] = []
    base: dict[str, Any] = {"status": int(status_text), "trailing_slash": "strict"}
    if not flags["preserve_query_string"]:
        base["query"] = "drop"
    base["when"] = {"host": [host, f"*.{host}"] if flags["include_subdomains"] else host}
    escaped = target.replace("{", "{{").replace("}", "}}")
    rules = [{"from": path, "to": escaped, **base}]
    if flags["subpath_matching"]:
        under = path if path.endswith("/") else path + "/"
        sub_target = escaped
        if flags["preserve_path_suffix"]:
            sub_target += "{suffix}" if path.endswith("/") else "/{suffix}"
        sub = {"from": under + "<path:suffix>", "to": sub_target, **base}
        if not flags["preserve_path_suffix"]:
            # Nothing of the path is kept, so the slash changes nothing: the simpler rule.
            del sub["trailing_slash"]
        rules.append(sub)
    return _Row(
        line,
        raw,
        scheme,
        host,
        flags["include_subdomains"],
        path,
        flags["subpath_matching"],
        rules,
        notes,
    )


def _listed_alike(row: _Row, rows: list[_Row]) -> _Row | None:
    """The line that gives ``row`` (a source with a scheme) for the other scheme, the same
    redirect, if there is one: then the two are one rule for both schemes."""
    for other in rows:
        if (
            other.scheme is not None
            and other.scheme != row.scheme
            and (other.host, other.subdomains, other.path, other.subpath)
            == (row.host, row.subdomains, row.path, row.subpath)
            and other.rules == row.rules
        ):
            return other
    return None


def parse_cloudflare(text: str) -> ImportResult:
    """Read a Cloudflare Bulk Redirects CSV; see the module docstring.

    A list is a set: Cloudflare chooses among the redirects that match by its own precedence
    (:func:`precedence`), not by line. The rules are written in that order under
    ``order: first_match``, so that Waypost's first match is Cloudflare's choice.
    """
    collector = Collector(first_match=True)
    collector.scheme_note = True
    rows: list[_Row] = []
    sources: dict[str, int] = {}
    for index, (line, raw, fields) in enumerate(read_csv_rows(text)):
        if index == 0 and fields[0].lower() in ("source_url", "source", "source url"):
            continue
        try:
            row = _read_row(line, raw, fields)
            if row.source in sources:
                raise Refusal(
                    f"the source URL {row.source!r} is on line {sources[row.source]} already; "
                    "Cloudflare refuses a list that has one source URL twice"
                )
            sources[row.source] = line
        except Refusal as refusal:
            collector.skip(line, raw, str(refusal))
            continue
        rows.append(row)
    rows.sort(key=lambda r: (*precedence(r.path, r.host, r.subdomains, r.scheme), r.line))
    # A source with a scheme applies to that scheme's requests only ('http://example.com/x'
    # beats 'example.com/x' for http, not for https), unless the list says the same for both.
    twins = {id(row): _listed_alike(row, rows) for row in rows if row.scheme}
    for row in rows:
        twin = twins.get(id(row))
        if twin is not None:
            row.notes.append(
                f"the scheme {row.scheme!r} was dropped: line {twin.line} gives the same "
                f"redirect for {twin.scheme}, so the rule applies to both"
            )
        elif row.scheme:
            for rule in row.rules:
                rule["when"]["scheme"] = row.scheme
    for row in rows:
        notes = row.notes
        for rule in row.rules:
            collector.add(row.line, row.raw, rule, notes)
            notes = []
    # The exporter writes a rule that ignores the slash as two lines ('/x', '/x/'): one again.
    merged: list[tuple[dict[str, Any], int]] = []
    for rule, line in zip(collector.rules, collector.lines, strict=True):
        if merged and len(pair := merge_slash_twins([dict(merged[-1][0]), dict(rule)])) == 1:
            merged[-1] = (pair[0], merged[-1][1])
            continue
        merged.append((rule, line))
    collector.rules[:] = [rule for rule, _ in merged]
    collector.lines[:] = [line for _, line in merged]
    collector.skipped.sort(key=lambda skip: skip.line)
    return collector.result("cloudflare")


# -- export -------------------------------------------------------------------------------------


def _host_of(when: Mapping[str, Any], host: str | None) -> tuple[str, bool]:
    hosts = when.get("host")
    if hosts is None:
        if host is None:
            raise Refusal("Cloudflare needs a host: set when.host or pass host=")
        return host, False
    host_list = [hosts] if isinstance(hosts, str) else list(hosts)
    if len(host_list) == 1 and "*" not in host_list[0]:
        return host_list[0], False
    if len(host_list) == 2:
        apex, wildcard = sorted(host_list, key=lambda item: item.startswith("*."))
        if wildcard == f"*.{apex}" and "*" not in apex:
            return apex, True
    raise Refusal("Cloudflare matches one host (and optionally its subdomains) per line")


def _check(rule: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    eff = check_baseline(rule, defaults)
    reason = unsupported_keys(
        eff, {"to", "status", "query", "trailing_slash", "case", "when"}, {"host", "scheme"}
    )
    if reason:
        raise Refusal(reason)
    if eff["case"] != "sensitive":
        raise Refusal("Cloudflare matches paths case-sensitively; 'case: insensitive' is lost")
    if eff["status"] not in _STATUSES:
        raise Refusal(f"status {eff['status']!r} is not one of 301, 302, 307, 308")
    if eff["query"] == "keep" and "?" in str(eff["to"]):
        raise Refusal("Cloudflare cannot keep the query string of a target that has its own")
    return eff


def _literal(target: str) -> str:
    pieces = parse_target_pieces(target)
    if any(isinstance(piece, Placeholder) for piece in pieces):
        raise Refusal("Cloudflare targets cannot use placeholders")
    return "".join(str(piece) for piece in pieces)


def _subpath(exact: dict[str, Any], sub: dict[str, Any]) -> bool | None:
    """Whether ``sub`` continues ``exact`` as subpath matching: ``True`` with the path suffix,
    ``False`` without it, ``None`` when it does not."""
    pieces = parse_pattern_pieces(str(sub["from"]))
    if len(pieces) != 2 or not isinstance(pieces[1], Variable) or pieces[1].converter != "path":
        return None
    found = exposure(str(sub["to"]))
    if found.host is not None or found.lead is not None:
        return None  # the suffix would lead off-site: reported with the rule itself
    path = str(exact["from"])
    if pieces[0] != (path if path.endswith("/") else path + "/"):
        return None
    ignored = ("from", "to", "trailing_slash")
    if {k: v for k, v in sub.items() if k not in ignored} != {
        k: v for k, v in exact.items() if k not in ignored
    }:
        return None
    if sub["to"] == exact["to"]:
        return False
    joiner = "" if path.endswith("/") else "/"
    # Cloudflare appends the rest of the path as it is, a trailing slash too ('/a/b/' gives
    # 'b/'), as a strict path variable keeps it; ignoring the slash, Waypost would leave it out.
    if sub["to"] == f"{exact['to']}{joiner}{{{pieces[1].name}}}" and needs_strict(sub):
        return True
    return None


@dataclass(frozen=True, slots=True)
class _Line:
    """What one exported rule (or exact and subpath pair) writes: its CSV rows and where
    Cloudflare's matching puts them."""

    index: int
    consumed: int
    host: str
    subdomains: bool
    path: str
    subpath: bool
    rows: list[list[Any]]
    scheme: str | None = None

    @property
    def where(self) -> tuple[str, bool, str, bool]:
        return (self.host, self.subdomains, self.path, self.subpath)


def _scheme_of(when: Mapping[str, Any]) -> str | None:
    """The one scheme a rule applies to (written into its source URL), or None for both."""
    schemes = when.get("scheme")
    if schemes is None:
        return None
    found = {str(s).lower() for s in ([schemes] if isinstance(schemes, str) else schemes)}
    if found >= {"http", "https"}:
        return None
    return found.pop()


def _waypost_first(a: _Line, b: _Line, first_match: bool) -> _Line:
    """Which of two overlapping lines Waypost applies (``a`` comes first in the file): the
    first under first_match; else the more specific path (an exact path before a pattern, a
    longer prefix first), then file order."""
    if first_match:
        return a
    length_a, length_b = len(a.path.rstrip("/")), len(b.path.rstrip("/"))
    if length_a != length_b:
        return a if length_a > length_b else b
    if a.subpath != b.subpath:
        return b if a.subpath else a
    return a


def _order_conflicts(lines: list[_Line], first_match: bool) -> dict[int, str]:
    """The lines Cloudflare would apply where Waypost applies another, by index, with why:
    a list is a set, and Cloudflare's precedence (:func:`precedence`) decides."""
    refused: dict[int, str] = {}
    for position, line in enumerate(lines):
        for earlier in lines[:position]:
            if earlier.index in refused or not overlaps(earlier.where, line.where):
                continue
            if None not in (earlier.scheme, line.scheme) and earlier.scheme != line.scheme:
                continue  # one for http, the other for https: no request matches both
            ours = _waypost_first(earlier, line, first_match)
            key_e = precedence(earlier.path, earlier.host, earlier.subdomains, earlier.scheme)
            key_l = precedence(line.path, line.host, line.subdomains, line.scheme)
            theirs = line if key_l < key_e else earlier
            if ours is not theirs:
                loser = ours.index + 1
                refused[theirs.index] = (
                    f"Cloudflare would apply it before rule {loser} (its host or path is more "
                    f"specific), where Waypost applies rule {loser} first; a Bulk Redirects list "
                    "has no order of its own"
                )
                break
    return refused


def export_cloudflare(
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    host: str | None = None,
) -> ExportResult:
    """Write rules as a Cloudflare Bulk Redirects CSV; ``host`` serves rules without one.

    Cloudflare chooses among matching redirects by its own precedence, not by line, and allows
    one redirect per source URL: a rule whose source URL another rule wrote already, or that
    Cloudflare would apply where Waypost applies an earlier rule, is reported, not written.
    """
    unsupported: list[Unsupported] = []
    lines: list[_Line] = []
    index = 0
    while index < len(rules):
        rule = rules[index]
        try:
            eff = _check(rule, defaults)
            if any(isinstance(p, Variable) for p in parse_pattern_pieces(str(eff["from"]))):
                refuse_exposed(exposure(str(eff["to"])), "Cloudflare")
                raise Refusal(
                    "Cloudflare has no path variables; a '<path:...>' rule is exported only right "
                    "after the exact rule for its parent path (subpath matching), and keeps the "
                    "trailing slash in its value (trailing_slash: strict)"
                )
            apex, subdomains = _host_of(eff.get("when") or {}, host)
            scheme = _scheme_of(eff.get("when") or {})
            prefix = f"{scheme}://" if scheme else ""
            subpath: bool | None = None
            if index + 1 < len(rules) and needs_strict(eff):
                try:
                    subpath = _subpath(eff, _check(rules[index + 1], defaults))
                except Refusal:
                    subpath = None
            flags = [eff["query"] == "keep", subdomains, subpath is not None, bool(subpath)]
            target = _literal(str(eff["to"]))
            # Cloudflare matches the trailing slash exactly: an ignored slash needs two lines.
            rows = [
                [
                    prefix + apex + path,
                    target,
                    eff["status"],
                    *("TRUE" if f else "FALSE" for f in flags),
                ]
                for path in slash_twins(str(eff["from"]), eff["trailing_slash"])
            ]
            consumed = 2 if subpath is not None else 1
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
            consumed = 1
        else:
            path = str(eff["from"])
            lines.append(
                _Line(index, consumed, apex, subdomains, path, subpath is not None, rows, scheme)
            )
        index += consumed
    written: dict[str, int] = {}
    kept: list[_Line] = []
    for line in lines:
        taken = next((written[row[0]] for row in line.rows if row[0] in written), None)
        if taken is not None:
            reason = (
                f"rule {taken + 1} has the source URL {line.rows[0][0]!r} already; "
                "Cloudflare allows one redirect per source URL"
            )
            for offset in range(line.consumed):
                unsupported.append(
                    Unsupported(line.index + offset, dict(rules[line.index + offset]), reason)
                )
            continue
        written.update((row[0], line.index) for row in line.rows)
        kept.append(line)
    first_match = (defaults or {}).get("order") == "first_match"
    conflicts = _order_conflicts(kept, first_match)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    exported = 0
    for line in kept:
        if line.index in conflicts:
            for offset in range(line.consumed):
                unsupported.append(
                    Unsupported(
                        line.index + offset, dict(rules[line.index + offset]), conflicts[line.index]
                    )
                )
            continue
        writer.writerows(line.rows)
        exported += line.consumed
    unsupported.sort(key=lambda item: item.index)
    return ExportResult(buffer.getvalue(), unsupported, exported)
