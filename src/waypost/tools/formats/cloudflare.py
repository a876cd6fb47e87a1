"""Cloudflare Bulk Redirects: the CSV list format.

Columns, without a header row (one is tolerated): ``source_url, target_url, status_code,
preserve_query_string, include_subdomains, subpath_matching, preserve_path_suffix``; only the first
two are required, the status defaults to 301 and the flags to false.

Import: the host of ``source_url`` becomes ``when.host`` (``include_subdomains`` adds
``*.host``); a scheme is dropped with a note, since Waypost matches http and https alike.
``subpath_matching`` gives two rules, the exact path and ``<path:suffix>`` under it, whose
target ends in ``{suffix}`` when ``preserve_path_suffix`` is set; Cloudflare appends the rest of
the path as it is, trailing slash included, so that rule is ``trailing_slash: strict``.
``preserve_query_string`` false means ``query: drop``. A source with a query string is skipped:
Cloudflare does not allow one. Cloudflare matches the trailing slash exactly, so rules get
``trailing_slash: strict``; the exporter writes a rule that ignores the slash as two lines
(``/x`` and ``/x/``), which read back as one rule.

Export needs a host for every rule: from ``when.host`` or the ``host`` argument. The exact rule
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
from ._priority import first_match, priority_key
from ._report import ExportResult, ImportResult, Unsupported
from ._safety import exposure, refuse_exposed
from ._text import parse_bool, read_csv_rows

__all__ = ["export_cloudflare", "parse_cloudflare"]

_STATUSES = frozenset({301, 302, 307, 308})
_FLAGS = ("preserve_query_string", "include_subdomains", "subpath_matching", "preserve_path_suffix")


def _read_row(fields: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
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
    notes = []
    if scheme:
        notes.append(f"the scheme {scheme!r} was dropped: Waypost matches http and https alike")
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
    return rules, notes


def parse_cloudflare(text: str) -> ImportResult:
    """Read a Cloudflare Bulk Redirects CSV; see the module docstring."""
    collector = Collector()
    collector.scheme_note = True
    for index, (line, raw, fields) in enumerate(read_csv_rows(text)):
        if index == 0 and fields[0].lower() in ("source_url", "source", "source url"):
            continue
        try:
            rules, notes = _read_row(fields)
        except Refusal as refusal:
            collector.skip(line, raw, str(refusal))
            continue
        for rule in rules:
            collector.add(line, raw, rule, notes)
            notes = []
    collector.rules[:] = merge_slash_twins(collector.rules)
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
        eff, {"to", "status", "query", "trailing_slash", "case", "when"}, {"host"}
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


def export_cloudflare(
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    host: str | None = None,
) -> ExportResult:
    """Write rules as a Cloudflare Bulk Redirects CSV; ``host`` serves rules without one.

    The lines are in the order Waypost offers the rules: file order for ``order: first_match``;
    else exact paths first, then the subpath lines by the specificity of their ``<path:...>``
    rule (see ``_priority``), so that ``/docs/special`` listed after the subpath line of
    ``/docs/`` still wins.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    rows: list[tuple[Any, list[Any]]] = []
    in_file_order = first_match(defaults)
    unsupported: list[Unsupported] = []
    exported = 0
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
            subpath: bool | None = None
            if index + 1 < len(rules) and needs_strict(eff):
                try:
                    subpath = _subpath(eff, _check(rules[index + 1], defaults))
                except Refusal:
                    subpath = None
            flags = [eff["query"] == "keep", subdomains, subpath is not None, bool(subpath)]
            target = _literal(str(eff["to"]))
            # Cloudflare matches the trailing slash exactly: an ignored slash needs two lines.
            consumed = 2 if subpath is not None else 1
            key: Any = (
                index
                if in_file_order
                else priority_key(index + consumed - 1, rules[index + consumed - 1], defaults)
            )
            for path in slash_twins(str(eff["from"]), eff["trailing_slash"]):
                row = [apex + path, target, eff["status"]]
                rows.append((key, [*row, *("TRUE" if flag else "FALSE" for flag in flags)]))
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
            consumed = 1
        else:
            exported += consumed
        index += consumed
    rows.sort(key=lambda pair: pair[0])  # stable: a rule's lines stay together, in order
    writer.writerows(row for _key, row in rows)
    return ExportResult(buffer.getvalue(), unsupported, exported)
