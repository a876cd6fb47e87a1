"""Writing rules as mod_rewrite directives for an ``.htaccess`` file; see :func:`export_apache`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._canon import Placeholder, parse_target_pieces
from .._common import (
    REDIRECT_STATUSES,
    Refusal,
    check_baseline,
    single_value,
    unsupported_keys,
)
from .._regex import RegexNotSupported, pattern_regex
from .._report import ExportResult, Unsupported

__all__ = ["export_apache"]


def _quote(text: str) -> str:
    return f'"{text}"' if re.search(r"\s", text) or not text else text


def _host_regex(hosts: Any) -> str:
    host_list = [hosts] if isinstance(hosts, str) else list(hosts)
    parts = []
    for host in host_list:
        if host.startswith("*."):
            parts.append(".+\\." + re.escape(host[2:]))
        elif "*" in host:
            raise Refusal(f"the host pattern {host!r} has no Apache equivalent")
        else:
            parts.append(re.escape(host))
    body = parts[0] if len(parts) == 1 else "(" + "|".join(parts) + ")"
    return f"^{body}$"


def _conditions(when: Mapping[str, Any]) -> list[str]:
    lines = []
    negated = when.get("not") or {}
    if set(negated) - {"host", "query"}:
        raise Refusal(f"cannot express 'when.not.{sorted(set(negated) - {'host', 'query'})[0]}'")
    if "host" in when:
        lines.append(f"RewriteCond %{{HTTP_HOST}} {_host_regex(when['host'])} [NC]")
    if "host" in negated:
        lines.append(f"RewriteCond %{{HTTP_HOST}} !{_host_regex(negated['host'])} [NC]")
    for source, negate in ((when.get("query") or {}, False), (negated.get("query") or {}, True)):
        for key, raw_value in source.items():
            value = single_value(raw_value, f"the query parameter {key!r}")
            if not re.fullmatch(r"[\w.~%-]+", key):
                raise Refusal(f"the query key {key!r} cannot be written as a condition")
            bang = "!" if negate or value is None else ""
            if negate and value is None:
                raise Refusal("'not' with an absent query parameter cannot be expressed")
            if value in ("*", None):
                lines.append(f"RewriteCond %{{QUERY_STRING}} {bang}(^|&){key}(=|&|$)")
            else:
                escaped = re.escape(str(value))
                if re.search(r"[\s()|^$*+?\[\]{}]", str(value)):
                    raise Refusal(f"the query value {value!r} cannot be written as a condition")
                lines.append(f"RewriteCond %{{QUERY_STRING}} {bang}(^|&){key}={escaped}(&|$)")
    if "methods" in when:
        methods = when["methods"]
        methods = [methods] if isinstance(methods, str) else methods
        lines.append(f"RewriteCond %{{REQUEST_METHOD}} ^({'|'.join(m.upper() for m in methods)})$")
    return lines


def _target(target: str, names: list[str]) -> str:
    out = []
    for piece in parse_target_pieces(target):
        if isinstance(piece, Placeholder):
            number = names.index(piece.name) + 1 if piece.name in names else 0
            if not 1 <= number <= 9:
                raise Refusal(f"{{{piece.name}}} is not one of the first 9 pattern variables")
            out.append(f"${number}")
        else:
            out.append(re.sub(r"([$%\\])", r"\\\1", piece))
    return "".join(out)


def _export_rule(rule: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> list[str]:
    eff = check_baseline(rule, defaults)
    reason = unsupported_keys(
        eff,
        {"to", "rewrite", "respond", "status", "query", "trailing_slash", "case", "when"},
        {"host", "query", "methods", "not"},
    )
    if reason:
        raise Refusal(reason)
    try:
        regex, names = pattern_regex(
            str(eff["from"]),
            named=False,
            relative=True,
            optional_slash=eff["trailing_slash"] == "ignore",
        )
    except RegexNotSupported as error:
        raise Refusal(str(error)) from None
    lines = _conditions(eff.get("when") or {})
    flags: list[str] = []
    if "respond" in eff:
        respond = eff["respond"]
        if isinstance(respond, Mapping):
            if set(respond) != {"status"}:
                raise Refusal("mod_rewrite cannot send a response body or headers")
            respond = respond["status"]
        status = int(respond)
        if not 400 <= status <= 599:
            raise Refusal(f"mod_rewrite can only answer with error statuses, not {status}")
        target = "-"
        flags.append({403: "F", 410: "G"}.get(status, f"R={status}"))
    else:
        raw = str(eff.get("to", eff.get("rewrite")))
        target = _target(raw, names)
        if "to" in eff:
            if eff["status"] not in REDIRECT_STATUSES:
                raise Refusal(f"status {eff['status']!r} is not a redirect status")
            flags.append(f"R={eff['status']}")
        if eff["query"] == "drop":
            flags.append("QSD")
        elif "?" in raw:
            flags.append("QSA")
    if eff["case"] == "insensitive":
        flags.append("NC")
    flags.extend(["NE", "L"])
    lines.append(f"RewriteRule {_quote(regex)} {_quote(target)} [{','.join(flags)}]")
    return lines


def export_apache(
    rules: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None
) -> ExportResult:
    """Write rules as mod_rewrite directives for an ``.htaccess`` file (``RewriteEngine On``
    first), with ``NE`` so percent-escapes in targets are sent as written."""
    lines = ["# Generated by waypost.", "RewriteEngine On"]
    unsupported: list[Unsupported] = []
    for index, rule in enumerate(rules):
        try:
            lines.extend(_export_rule(rule, defaults))
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
    exported = len(rules) - len(unsupported)
    return ExportResult("\n".join(lines) + "\n", unsupported, exported)
