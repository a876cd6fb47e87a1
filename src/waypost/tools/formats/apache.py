"""Apache: the redirect subset of ``.htaccess`` files and server configuration.

Import understands:

* ``Redirect [status] /old /new`` (status a number or ``permanent``, ``temp``, ``seeother``,
  ``gone``; 302 when left out), ``RedirectPermanent`` and ``RedirectTemp``. mod_alias matches a
  path prefix at segment boundaries and appends the rest, so each line gives two rules: ``/old``
  and ``/old/<path:rest>`` (to ``/new/{rest}``). The query string is kept, as mod_alias does.
* ``RedirectMatch [status] regex URL`` where the regex converts (see ``_regex``).
* ``RewriteRule pattern substitution [flags]`` in ``.htaccess`` (``^old$``) or server (``^/old$``)
  form: ``R``/``R=3xx`` redirect, no ``R`` an internal ``rewrite``, ``F`` 403, ``G`` 410,
  ``R=4xx`` other statuses; ``NC`` is ``case: insensitive``; ``QSD`` or a substitution with its
  own query (without ``QSA``) drops the query string.
* ``RewriteCond`` lines before a rule, when they test ``%{HTTP_HOST}`` (exact names,
  ``(www\\.)?``, alternatives, ``.+\\.`` for subdomains, ``!`` to negate), ``%{QUERY_STRING}`` in
  the forms ``(^|&)key=value(&|$)`` / ``(^|&)key(=|&|$)``, or ``%{REQUEST_METHOD} ^(GET|POST)$``.
  A rule with any other condition (``%{REQUEST_FILENAME} !-f``, ``[OR]``...) is skipped, and its
  condition lines with it.
* ``ServerName``/``ServerAlias`` give the rules of their ``<VirtualHost>`` a ``when.host``.

Rules inside ``<Directory>``, ``<Location>``, ``<Files>`` and ``<If>`` blocks are skipped because
those blocks change where they apply. Directives that are not about redirects are ignored.

Export writes mod_rewrite rules for ``.htaccess`` (``RewriteEngine On`` first), with ``NE`` so
percent-escapes in targets are sent as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._canon import Placeholder, parse_target_pieces
from ._common import (
    REDIRECT_STATUSES,
    Collector,
    Refusal,
    check_baseline,
    is_absolute_url,
    single_value,
    unsupported_keys,
)
from ._regex import (
    Ref,
    RegexNotSupported,
    RegexPattern,
    convert_regex,
    pattern_regex,
    render_ref_target,
)
from ._report import ExportResult, ImportResult, Unsupported
from ._text import numbered_lines

__all__ = ["export_apache", "parse_apache"]

_NAMED_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_TRANSPARENT = {"ifmodule", "ifdefine", "ifversion", "virtualhost"}
_HOST_NAME = r"(?:\\?[\w-]|\\\.)+"
_QUERY_VALUE = re.compile(r"^\(\^\|&\)(?P<key>[\w.~%-]+)=(?P<value>[^()|^$*+?\[\]{}]*)\(&\|\$\)$")
_QUERY_PRESENT = re.compile(r"^\(\^\|&\)(?P<key>[\w.~%-]+)\(=\|&\|\$\)$")
_METHODS = re.compile(r"^\^\((?P<methods>[A-Z]+(?:\|[A-Z]+)*)\)\$$|^\^(?P<one>[A-Z]+)\$$")
_SUB_REF = re.compile(r"\\([$%\\])|\$(\d)|%\{[^}]*\}|%(\d)")


def _split(line: str) -> list[str]:
    """Apache argument splitting: whitespace separates, double quotes group."""
    return [a if a else b for a, b in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', line)]


def _unescape_host(text: str) -> str:
    return text.replace("\\.", ".").replace("\\-", "-").lower()


def _host_pattern(pattern: str) -> list[str]:
    """Hosts matched by an anchored HTTP_HOST regex, or Refusal."""
    match = re.fullmatch(r"\^(.*)\$", pattern)
    if not match:
        raise Refusal(f"the HTTP_HOST test {pattern!r} is not anchored with ^ and $")
    body = match.group(1)
    optional = re.fullmatch(rf"\(({_HOST_NAME}\\\.)\)\?({_HOST_NAME})", body)
    if optional:
        base = _unescape_host(optional.group(2))
        return [base, _unescape_host(optional.group(1)) + base]
    alternatives = body[1:-1].split("|") if body.startswith("(") and body.endswith(")") else [body]
    hosts = []
    for alternative in alternatives:
        if alternative.startswith(".+\\."):
            rest = alternative[4:]
            if not re.fullmatch(_HOST_NAME, rest):
                raise Refusal(f"the HTTP_HOST test {pattern!r} is a regex Waypost cannot express")
            hosts.append("*." + _unescape_host(rest))
        elif re.fullmatch(_HOST_NAME, alternative):
            hosts.append(_unescape_host(alternative))
        else:
            raise Refusal(f"the HTTP_HOST test {pattern!r} is a regex Waypost cannot express")
    return hosts


def _add_condition(when: dict[str, Any], args: list[str]) -> None:
    if len(args) < 2:
        raise Refusal("a RewriteCond needs a test string and a pattern")
    test, pattern = args[0], args[1]
    flags = (
        {flag.strip().upper() for flag in args[2].strip("[]").split(",")}
        if len(args) > 2
        else set()
    )
    if flags - {"NC", "NOCASE"}:
        raise Refusal(f"the RewriteCond flags {args[2]} are not supported")
    negate = pattern.startswith("!")
    pattern = pattern[1:] if negate else pattern
    target = when.setdefault("not", {}) if negate else when
    if test == "%{HTTP_HOST}":
        if "host" in target:
            raise Refusal("two HTTP_HOST conditions cannot be combined")
        hosts = _host_pattern(pattern)
        target["host"] = hosts[0] if len(hosts) == 1 else hosts
    elif test == "%{QUERY_STRING}" and (match := _QUERY_VALUE.match(pattern)):
        value = re.sub(r"\\(.)", r"\1", match.group("value"))
        target.setdefault("query", {})[match.group("key")] = value
    elif test == "%{QUERY_STRING}" and (match := _QUERY_PRESENT.match(pattern)):
        if negate:
            when.setdefault("query", {})[match.group("key")] = None
            if not when["not"]:
                del when["not"]
        else:
            target.setdefault("query", {})[match.group("key")] = "*"
    elif test == "%{REQUEST_METHOD}" and not negate and (match := _METHODS.match(pattern)):
        when["methods"] = (match.group("methods") or match.group("one")).split("|")
    else:
        raise Refusal(f"the condition 'RewriteCond {' '.join(args)}' is not supported")


def _substitution(text: str, refs: Mapping[str, str], empty: frozenset[str]) -> str:
    out: list[str | Ref] = []
    pos = 0
    for match in _SUB_REF.finditer(text):
        out.append(text[pos : match.start()])
        if match.group(1):
            out.append(match.group(1))
        elif match.group(2):
            out.append(Ref(match.group(2), match.group(0)))
        else:
            raise Refusal(f"the substitution uses {match.group(0)!r}, which Waypost cannot")
        pos = match.end()
    out.append(text[pos:])
    return render_ref_target([piece for piece in out if piece != ""], refs, empty)


@dataclass(slots=True)
class _State:
    collector: Collector = field(default_factory=Collector)
    conditions: list[tuple[int, str, list[str]]] = field(default_factory=list)
    base: str = "/"


def _prefix_rules(path: str, target: str | None, action: dict[str, Any]) -> list[dict[str, Any]]:
    if not path.startswith("/") or "<" in path or ">" in path:
        raise Refusal(f"the URL-path {path!r} must be a path without '<' or '>'")
    under = path if path.endswith("/") else path + "/"
    rules = []
    for pattern, suffix in ((path, ""), (under + "<path:rest>", "{rest}")):
        rule: dict[str, Any] = {"from": pattern}
        if target is not None:
            escaped = target.replace("{", "{{").replace("}", "}}")
            if suffix and not escaped.endswith("/"):
                escaped += "/"
            rule["to"] = escaped + suffix
        rule.update(action)
        if not suffix:
            rule["trailing_slash"] = "strict"
        rules.append(rule)
    return rules


def _redirect(name: str, args: list[str]) -> list[dict[str, Any]]:
    status: int = {"redirectpermanent": 301, "redirecttemp": 302}.get(name, 302)
    if name == "redirect" and args and not args[0].startswith("/"):
        word = args.pop(0).lower()
        if word in _NAMED_STATUS:
            status = _NAMED_STATUS[word]
        elif word.isdigit():
            status = int(word)
        else:
            raise Refusal(f"unknown Redirect status {word!r}")
    if status in REDIRECT_STATUSES or 300 <= status <= 399:
        if len(args) != 2:
            raise Refusal(f"a {status} redirect needs a URL-path and a URL")
        if status not in REDIRECT_STATUSES:
            raise Refusal(f"status {status} is not a redirect Waypost supports")
        return _prefix_rules(args[0], args[1], {"status": status})
    if len(args) != 1:
        raise Refusal(f"status {status} takes a URL-path and no URL")
    return _prefix_rules(args[0], None, {"respond": status})


def _redirect_match(args: list[str]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    status = 302
    if len(args) == 3 or (len(args) == 2 and not args[0].startswith(("^", "/", "("))):
        word = args.pop(0).lower()
        status = _NAMED_STATUS.get(word) or (int(word) if word.isdigit() else 0)
        if not status:
            raise Refusal(f"unknown RedirectMatch status {word!r}")
    converted = convert_regex(args[0])
    rules: list[dict[str, Any]] = []
    for pattern, empty in converted.variants():
        if status in REDIRECT_STATUSES:
            if len(args) != 2:
                raise Refusal(f"a {status} RedirectMatch needs a URL")
            rules.append(
                {
                    "from": pattern,
                    "to": _substitution(args[1], converted.refs, empty),
                    "status": status,
                }
            )
        elif 400 <= status <= 599 and len(args) == 1:
            rules.append({"from": pattern, "respond": status})
        else:
            raise Refusal(f"status {status} is not supported here")
        _slash(rules[-1], converted)
    return rules, converted.notes


def _slash(rule: dict[str, Any], converted: RegexPattern) -> None:
    """Set a converted regex rule's trailing_slash and case options."""
    # A greedy (.*)$ keeps a trailing slash in what it captures ('/old/a/' gives 'a/'), as
    # Apache's regex engine does: only an optional slash in the regex ('/?$') ignores it.
    if not converted.optional_slash:
        rule["trailing_slash"] = "strict"
    if converted.case_insensitive:
        rule["case"] = "insensitive"


def _rewrite_rule(
    args: list[str], state: _State, when: dict[str, Any]
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    if len(args) < 2:
        raise Refusal("a RewriteRule needs a pattern and a substitution")
    pattern, substitution = args[0], args[1]
    flags = [flag.strip() for flag in args[2].strip("[]").split(",")] if len(args) > 2 else []
    upper = {flag.split("=")[0].upper(): flag.partition("=")[2] for flag in flags if flag}
    unknown = set(upper) - {
        "R",
        "REDIRECT",
        "L",
        "LAST",
        "END",
        "NC",
        "NOCASE",
        "QSA",
        "QSD",
        "NE",
        "NOESCAPE",
        "F",
        "FORBIDDEN",
        "G",
        "GONE",
        "PT",
    }
    if unknown:
        raise Refusal(f"the RewriteRule flag {sorted(unknown)[0]} is not supported")
    negated = pattern.startswith("!")
    if negated:
        raise Refusal("a negated RewriteRule pattern cannot be expressed")
    insensitive = "NC" in upper or "NOCASE" in upper
    converted = convert_regex(pattern, relative=True, case_insensitive=insensitive)
    action: dict[str, Any]
    redirect = upper.get("R", upper.get("REDIRECT"))
    if "F" in upper or "FORBIDDEN" in upper:
        action = {"respond": 403}
    elif "G" in upper or "GONE" in upper:
        action = {"respond": 410}
    elif redirect is not None:
        status = int(redirect) if redirect.isdigit() else 302 if redirect in ("", "temp") else 0
        if redirect.lower() == "permanent":
            status = 301
        if status in REDIRECT_STATUSES:
            action = {"status": status}
        elif 400 <= status <= 599:
            action = {"respond": status}
        else:
            raise Refusal(f"R={redirect} is not a status Waypost supports")
    elif is_absolute_url(substitution):
        action = {"status": 302}
    else:
        action = {"rewrite": True}
    if "respond" not in action and substitution == "-":
        raise Refusal("'-' leaves the URL as it is; nothing to import")
    # A substitution with its own query replaces the request's, unless QSA appends it.
    keep = not (
        "QSD" in upper or substitution.endswith("?") or ("?" in substitution and "QSA" not in upper)
    )
    substitution = substitution.removesuffix("?")
    if not (substitution.startswith("/") or is_absolute_url(substitution) or substitution == "-"):
        substitution = state.base.rstrip("/") + "/" + substitution
    rules: list[dict[str, Any]] = []
    for variant, empty in converted.variants():
        rule: dict[str, Any] = {"from": variant}
        if "respond" in action:
            rule["respond"] = action["respond"]
        else:
            target = _substitution(substitution, converted.refs, empty)
            if "rewrite" in action:
                rule["rewrite"] = target
            else:
                rule.update({"to": target, "status": action["status"]})
            if not keep:
                rule["query"] = "drop"
        _slash(rule, converted)
        if when:
            rule["when"] = when
        rules.append(rule)
    return rules, converted.notes


def _join_continuations(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in numbered_lines(text):
        if pending is not None:
            number, line = pending[0], pending[1] + " " + line.strip()
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        out.append((number, line))
    if pending is not None:
        out.append(pending)
    return out


def _virtual_hosts(lines: list[tuple[int, str]]) -> dict[int, list[str]]:
    """For each line inside a <VirtualHost>, the hosts named by its ServerName/ServerAlias."""
    out: dict[int, list[str]] = {}
    block: list[int] | None = None
    hosts: list[str] = []
    for number, line in lines:
        word = line.strip().split(maxsplit=1)[0].lower() if line.strip() else ""
        if word == "<virtualhost":
            block, hosts = [], []
        elif word == "</virtualhost>":
            for inside in block or []:
                out[inside] = hosts
            block = None
        elif block is not None:
            block.append(number)
            if word in ("servername", "serveralias"):
                hosts.extend(name.split(":")[0].lower() for name in line.split()[1:])
    return out


def parse_apache(text: str) -> ImportResult:
    """Read the redirects of an ``.htaccess`` or Apache configuration; see the module docstring."""
    state = _State()
    collector = state.collector
    lines = _join_continuations(text)
    vhosts = _virtual_hosts(lines)
    containers: list[str] = []
    for number, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("</"):
            if containers:
                containers.pop()
            continue
        if line.startswith("<"):
            containers.append((line.strip("<>").split() or ["?"])[0].lower())
            continue
        words = _split(line)
        name, args = words[0].lower(), words[1:]
        if name not in (
            "redirect",
            "redirectpermanent",
            "redirecttemp",
            "redirectmatch",
            "rewriterule",
            "rewritecond",
            "rewritebase",
        ):
            continue
        blocked = [c for c in containers if c not in _TRANSPARENT]
        if blocked and name != "rewritebase":
            collector.skip(
                number, line, f"inside a <{blocked[-1]}> block, which limits where it applies"
            )
            continue
        if name == "rewritebase":
            state.base = args[0] if args else "/"
            continue
        if name == "rewritecond":
            state.conditions.append((number, line, args))
            continue
        conditions, state.conditions = state.conditions, []
        hosts = vhosts.get(number)
        notes: tuple[str, ...] = ()
        try:
            when: dict[str, Any] = {}
            for _cond_line, _cond_text, cond_args in conditions:
                _add_condition(when, cond_args)
            if hosts and "host" not in when:
                when["host"] = hosts[0] if len(hosts) == 1 else hosts
            if name == "rewriterule":
                rules, notes = _rewrite_rule(args, state, when)
            else:
                if conditions:
                    raise Refusal("RewriteCond only applies to RewriteRule")
                if name == "redirectmatch":
                    rules, notes = _redirect_match(args)
                else:
                    rules = _redirect(name, args)
                if when:
                    for rule in rules:
                        rule["when"] = when
        except (Refusal, RegexNotSupported) as error:
            collector.skip(number, line, str(error))
            for cond_line, cond_text, _args in conditions:
                collector.skip(
                    cond_line, cond_text, f"belongs to the skipped RewriteRule on line {number}"
                )
            continue
        for note in notes:
            collector.note(number, line, note)
        for rule in rules:
            collector.add(number, line, rule)
    collector.skipped.sort(key=lambda skip: skip.line)
    return collector.result("apache")


# -- export -------------------------------------------------------------------------------------


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
    """Write rules as mod_rewrite directives for an ``.htaccess`` file."""
    lines = ["# Generated by waypost.", "RewriteEngine On"]
    unsupported: list[Unsupported] = []
    for index, rule in enumerate(rules):
        try:
            lines.extend(_export_rule(rule, defaults))
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
    exported = len(rules) - len(unsupported)
    return ExportResult("\n".join(lines) + "\n", unsupported, exported)
