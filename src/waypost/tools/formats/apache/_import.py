"""Reading the redirects of Apache ``.htaccess`` files and configuration; see the package
docstring for what is understood."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._canon import escape_target
from .._common import REDIRECT_STATUSES, Collector, Refusal, is_absolute_url
from .._regex import Ref, RegexNotSupported, RegexPattern, convert_regex, render_ref_target
from .._report import ImportResult
from .._text import numbered_lines
from ._order import Entry, Module, apache_order

__all__ = ["Context", "parse_apache", "parse_htaccess"]

#: Where the file sits: a ``.htaccess`` at the document root, or server configuration.
Context = Literal["server", "htaccess"]

_NAMED_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_TRANSPARENT = {"ifmodule", "ifdefine", "ifversion", "virtualhost"}
_PREFIX_REDIRECTS = ("redirect", "redirectpermanent", "redirecttemp")
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
    elif test == "%{HTTPS}" and pattern.lower() in ("on", "=on", "^on$", "off", "=off", "^off$"):
        # mod_ssl says 'on' or 'off': a test of one is a test of the scheme.
        https = ("on" in pattern.lower()) != negate
        if "scheme" in when:
            raise Refusal("two HTTPS conditions cannot be combined")
        when["scheme"] = "https" if https else "http"
        if negate and not when["not"]:
            del when["not"]
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
    context: Context | None = None
    base: str = "/"
    #: Whether a RewriteBase line set ``base``.
    base_given: bool = False
    #: The Redirects read so far with a URL-path, as ``(line, URL-path)`` per list mod_alias
    #: tries in order: one per ``(<Location>, hosts)``.
    prefixes: dict[tuple[str | None, str], list[tuple[int, str]]] = field(default_factory=dict)


def _collapse(path: str) -> str:
    # mod_alias lets any run of '/' in a URL-path match any run in the request, and Apache merges
    # a request's doubled slashes anyway (MergeSlashes), so '/a//b' is '/a/b'.
    return re.sub("/{2,}", "/", path)


def _under(path: str, prefix: str) -> bool:
    """True when mod_alias's segment-wise prefix match of ``prefix`` takes ``path``.

    ``/blog`` takes ``/blog``, ``/blog/`` and ``/blog/x`` but not ``/blogger``; ``/blog/`` takes
    ``/blog/`` and ``/blog/x`` but not ``/blog``. ``<Location>`` matches its path the same way.
    """
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def _sample(pattern: str) -> str:
    """A path standing for what ``pattern`` (a prefix rule's) matches, for :func:`_under`.

    ``/a/<path:rest>`` stands as ``/a/`` + a character no prefix holds: it is under a prefix
    exactly when all the paths it matches are.
    """
    return pattern.replace("<path:rest>", "\x00")


def _check_url(url: str) -> None:
    if not (url.startswith("/") or is_absolute_url(url)):
        raise Refusal(f"the URL {url!r} is neither a full URL nor a path starting with '/'")


def _prefix_rules(
    path: str, target: str | None, action: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rules (and notes) for mod_alias's prefix ``Redirect path target``.

    mod_alias matches ``path`` at segment boundaries and appends whatever follows it in the
    request, slashes and all, to ``target``: ``Redirect /blog /new`` sends ``/blog`` to ``/new``,
    ``/blog/`` to ``/new/`` and ``/blog/x/`` to ``/new/x/``. Waypost needs a strict rule for each
    shape: ``/blog``, ``/blog/`` and ``/blog/<path:rest>`` (strict, so ``rest`` keeps a trailing
    slash as Apache does). The request's query string is appended unless ``target`` has its own.
    """
    if not path.startswith("/") or "<" in path or ">" in path:
        raise Refusal(f"the URL-path {path!r} must be a path starting with '/', without '<' or '>'")
    path = _collapse(path)
    if path.endswith("/"):
        shapes = [(path, ""), (path + "<path:rest>", "{rest}")]
    else:
        shapes = [(path, ""), (path + "/", "/"), (path + "/<path:rest>", "/{rest}")]
    if target is None:
        # Nothing is appended, so one rule ignoring the slash serves '/x' and '/x/'.
        if not path.endswith("/"):
            return [{"from": path, **action}, {"from": path + "/<path:rest>", **action}], []
        return [
            {"from": path, **action, "trailing_slash": "strict"},
            {"from": path + "<path:rest>", **action},
        ], []
    _check_url(target)
    notes: list[str] = []
    example = path + ("x" if path.endswith("/") else "/x")
    joined = target + example[len(path) :]
    if "?" in target:
        notes.append(
            f"the URL has a query string, so Apache appends the rest of the path to it "
            f"({example!r} goes to {joined!r}) and drops the request's query string; "
            "imported as Apache does"
        )
    elif re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", target) and path.endswith("/"):
        # Appended to a bare origin, the rest would run into the host name.
        shapes = shapes[:1]
        notes.append(
            f"Apache appends the rest of the path to the host name ({example!r} goes to "
            f"{joined!r}), which Waypost cannot do; only {path!r} itself was imported"
        )
    elif path.endswith("/") and not target.endswith("/"):
        notes.append(
            f"the URL-path ends with '/' and the URL does not, so Apache joins the rest of the "
            f"path to the URL without one ({example!r} goes to {joined!r}); imported as Apache does"
        )
    elif target.endswith("/") and not path.endswith("/"):
        notes.append(
            f"the URL ends with '/' and the URL-path does not, so Apache doubles the slash "
            f"({example!r} goes to {joined!r}); imported as Apache does"
        )
    escaped = escape_target(target)
    rules = []
    for pattern, suffix in shapes:
        rule: dict[str, Any] = {"from": pattern, "to": escaped + suffix, **action}
        if "?" in target:
            rule["query"] = "drop"
        rule["trailing_slash"] = "strict"
        rules.append(rule)
    return rules, notes


def _location_rules(
    location: str, target: str | None, action: dict[str, Any]
) -> list[dict[str, Any]]:
    """The rules for ``Redirect [status] [URL]`` without a URL-path inside ``<Location>``.

    Every path the ``<Location>`` takes goes to ``target`` as it is (nothing is appended), with
    the request's query string unless ``target`` has its own.
    """
    rule: dict[str, Any] = {}
    if target is not None:
        # The URL is an ap_expr string there: '%{VAR}' and '$1' are evaluated per request.
        if "%{" in target or re.search(r"\$\d", target):
            raise Refusal(f"the URL {target!r} is an expression Waypost cannot evaluate")
        _check_url(target)
        rule["to"] = escape_target(target)
    rule.update(action)
    if target is not None and "?" in target:
        rule["query"] = "drop"
    if location.endswith("/"):
        return [
            {"from": location, **rule, "trailing_slash": "strict"},
            {"from": location + "<path:rest>", **rule},
        ]
    return [{"from": location, **rule}, {"from": location + "/<path:rest>", **rule}]


def _in_location(rules: list[dict[str, Any]], path: str, location: str) -> list[dict[str, Any]]:
    """The rules of ``Redirect path ...`` that apply inside ``<Location location>``."""
    base = _collapse(path)
    inside = [rule for rule in rules if _under(_sample(rule["from"]), location)]
    if not inside:
        if _under(location, base):
            raise Refusal(
                f"the URL-path {path!r} is wider than <Location {location!r}>, "
                "which Waypost cannot narrow it to"
            )
        raise Refusal(f"it never applies: the URL-path {path!r} is outside <Location {location!r}>")
    return inside


def _status_word(word: str) -> int | None:
    lower = word.lower()
    if lower in _NAMED_STATUS:
        return _NAMED_STATUS[lower]
    return int(word) if word.isdigit() else None


def _redirect(
    name: str, args: list[str], location: str | None = None
) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """``Redirect``/``RedirectPermanent``/``RedirectTemp`` as rules, notes and the URL-path.

    Inside ``<Location>`` (``location``), ``Redirect [status] URL`` and ``Redirect gone`` have no
    URL-path (the third item is None): they apply to the whole ``<Location>``. A URL-path, there,
    must lie inside it.
    """
    args = list(args)
    status: int = {"redirectpermanent": 301, "redirecttemp": 302}.get(name, 302)
    given = _status_word(args[0]) if name == "redirect" and args else None
    if given is not None:
        status = given
        args.pop(0)
    elif name == "redirect" and (
        len(args) == 3 or (args and not args[0].startswith("/") and location is None)
    ):
        raise Refusal(f"unknown Redirect status {args[0]!r}")
    is_redirect = 300 <= status <= 399
    if is_redirect and status not in REDIRECT_STATUSES:
        raise Refusal(f"status {status} is not a redirect Waypost supports")
    action: dict[str, Any] = {"status": status} if is_redirect else {"respond": status}
    if location is not None and name == "redirect" and len(args) == int(is_redirect):
        # Apache reads one argument after a redirect status (or none after another) as the
        # target of the whole <Location>.
        return _location_rules(location, args[0] if args else None, action), [], None
    if is_redirect:
        if len(args) != 2:
            raise Refusal(f"a {status} redirect needs a URL-path and a URL")
        rules, notes = _prefix_rules(args[0], args[1], action)
    else:
        if len(args) != 1:
            raise Refusal(f"status {status} takes a URL-path and no URL")
        rules, notes = _prefix_rules(args[0], None, action)
    if location is not None:
        rules = _in_location(rules, args[0], location)
    return rules, notes, _collapse(args[0])


def _unshadowed(
    rules: list[dict[str, Any]], earlier: Sequence[tuple[int, str]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rules of a Redirect that no ``earlier`` (line, URL-path) Redirect takes first.

    mod_alias tries Redirects in file order and the first whose URL-path matches wins, so after
    ``Redirect /blog /new``, ``Redirect /blog/old /x`` never applies; Waypost would prefer the
    longer path.
    """
    kept: list[dict[str, Any]] = []
    taken: dict[int, list[str]] = {}
    for rule in rules:
        first = next((n for n, path in earlier if _under(_sample(rule["from"]), path)), None)
        if first is None:
            kept.append(rule)
        else:
            taken.setdefault(first, []).append(rule["from"])
    if not taken:
        return rules, []
    where = " and ".join(str(n) for n in taken)
    where = (
        f"the Redirects on lines {where} come"
        if len(taken) > 1
        else f"the Redirect on line {where} comes"
    )
    if not kept:
        raise Refusal(f"it never applies: {where} first and takes every path this one would")
    patterns = ", ".join(repr(p) for froms in taken.values() for p in froms)
    return kept, [
        f"{where} first for {patterns}, so only "
        f"{', '.join(repr(rule['from']) for rule in kept)} was imported"
    ]


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
        # How a back-reference is percent-encoded: Waypost encodes every value it fills in.
        "B",
        "BACKREFESCAPING",
        "BNE",
        "BNP",
        "BACKREFERNOPLUS",
        "BCTLS",
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
    _check_context(pattern, state.context)
    converted = convert_regex(
        pattern, relative=state.context != "server", case_insensitive=insensitive
    )
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
        if state.context == "htaccess" and not state.base_given and "status" in action:
            # Apache 2.4 sends 'Location: http://host/var/www/html/new' here.
            raise Refusal(
                f"without a RewriteBase, Apache redirects the relative substitution "
                f"{substitution!r} to the directory's file-system path; add 'RewriteBase /' "
                "(or write the substitution with its leading '/')"
            )
        # Server configuration and an internal rewrite at the document root: from '/'.
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


def _check_context(pattern: str, context: Context | None) -> None:
    """Refuse a RewriteRule pattern that never matches where the file sits.

    In ``.htaccess`` mod_rewrite strips the directory's prefix, leading slash included, before
    matching (``old`` for ``/old``); in server configuration it matches the URL-path as it is.
    """
    body = pattern.removeprefix("(?i)")
    if context is None or not body.startswith("^"):
        return
    slash = body.startswith("^/")
    if context == "htaccess" and slash and not body.startswith("^/?"):
        raise Refusal(
            f"in .htaccess the path a RewriteRule matches has no leading '/' ('old' for "
            f"'/old'), so {pattern!r} never matches; write it without the '/'"
        )
    if context == "server" and not slash:
        if re.match(r"[\w.~%-]", body[1:2]):
            raise Refusal(
                f"in server configuration the path a RewriteRule matches starts with '/', so "
                f"{pattern!r} never matches (that is the .htaccess form); write it with the '/'"
            )
        raise Refusal(
            f"in server configuration the path a RewriteRule matches starts with '/', and "
            f"Waypost reads {pattern!r} only with that '/' written out after '^'"
        )


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


def _plain_location(containers: Sequence[tuple[str, str]]) -> str | None:
    """The path of the one ``<Location>`` holding a line, when it is a plain path, else None.

    ``<Location ~ regex>`` and wildcard paths are not plain; nor is a ``<Location>`` inside or
    around another block that limits where it applies.
    """
    blocked = [(kind, arg) for kind, arg in containers if kind not in _TRANSPARENT]
    if len(blocked) != 1 or blocked[0][0] != "location":
        return None
    path = blocked[0][1]
    if not path.startswith("/") or re.search(r"[*?\[<>]", path):
        return None
    return _collapse(path)


def parse_apache(text: str, *, context: Context | None = None) -> ImportResult:
    """Read the redirects of an ``.htaccess`` or Apache configuration; see the package docstring.

    ``context`` says where the file sits: ``"htaccess"`` (a ``.htaccess`` at the document root:
    RewriteRule patterns see the path without its leading ``/``), ``"server"`` (server or
    virtual host configuration: they see it with it), or None when it is not known (both forms
    are read, ``^old`` as in ``.htaccess`` and ``^/old`` as in server configuration).
    """
    state = _State(context=context)
    collector = state.collector
    lines = _join_continuations(text)
    vhosts = _virtual_hosts(lines)
    containers: list[tuple[str, str]] = []
    entries: list[Entry] = []
    for number, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("</"):
            if containers:
                containers.pop()
            continue
        if line.startswith("<"):
            head = _split(line.strip("<>")) or ["?"]
            containers.append((head[0].lower(), " ".join(head[1:])))
            continue
        words = _split(line)
        name, args = words[0].lower(), words[1:]
        if name not in (
            *_PREFIX_REDIRECTS,
            "redirectmatch",
            "rewriterule",
            "rewritecond",
            "rewritebase",
        ):
            continue
        blocked = [kind for kind, _arg in containers if kind not in _TRANSPARENT]
        location = _plain_location(containers) if name in _PREFIX_REDIRECTS else None
        if blocked and location is None and name != "rewritebase":
            collector.skip(
                number, line, f"inside a <{blocked[-1]}> block, which limits where it applies"
            )
            continue
        if name == "rewritebase":
            if context == "server" and not blocked:
                collector.skip(
                    number,
                    line,
                    "RewriteBase only applies in .htaccess and <Directory> "
                    "(Apache refuses it in server configuration)",
                )
                continue
            state.base = args[0] if args else "/"
            state.base_given = True
            continue
        if name == "rewritecond":
            state.conditions.append((number, line, args))
            continue
        conditions, state.conditions = state.conditions, []
        hosts = vhosts.get(number)
        notes: Sequence[str] = ()
        module: Module = "rewrite" if name == "rewriterule" else "alias"
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
                    rules, notes, prefix = _redirect(name, args, location)
                    if prefix is not None:
                        earlier = state.prefixes.setdefault((location, repr(when)), [])
                        rules, shadowed = _unshadowed(rules, earlier)
                        notes = [*notes, *shadowed]
                        earlier.append((number, prefix))
                if when:
                    for rule in rules:
                        rule["when"] = when
        except (Refusal, RegexNotSupported) as error:
            collector.skip(number, line, str(error))
            _skip_conditions(collector, conditions, number)
            continue
        entries.append(
            Entry(
                number,
                line,
                module,
                _rank(module, rules, context),
                rules,
                list(notes),
                [(cond_line, cond_text) for cond_line, cond_text, _args in conditions],
            )
        )
    for entry in apache_order(entries):
        if entry.skipped is not None:
            collector.skip(entry.line, entry.text, entry.skipped)
            for cond_line, cond_text in entry.conditions:
                collector.skip(
                    cond_line, cond_text, f"belongs to the skipped RewriteRule on line {entry.line}"
                )
            continue
        for note in entry.notes:
            collector.note(entry.line, entry.text, note)
        for rule in entry.rules:
            collector.add(entry.line, entry.text, rule)
    collector.skipped.sort(key=lambda skip: skip.line)
    collector.notes.sort(key=lambda note: note.line)
    result = collector.result("htaccess" if context == "htaccess" else "apache")
    # Apache applies the rules in the order they were added in (see _order): first match.
    result.defaults["order"] = "first_match"
    return result


def parse_htaccess(text: str) -> ImportResult:
    """Read the redirects of a ``.htaccess`` at the document root: :func:`parse_apache` with
    ``context="htaccess"``."""
    return parse_apache(text, context="htaccess")


def _skip_conditions(
    collector: Collector, conditions: Sequence[tuple[int, str, list[str]]], number: int
) -> None:
    for cond_line, cond_text, _args in conditions:
        collector.skip(cond_line, cond_text, f"belongs to the skipped RewriteRule on line {number}")


def _rank(module: Module, rules: Sequence[dict[str, Any]], context: Context | None) -> int:
    """Where a line's rules stand in the order Apache applies them (see ``_order``):
    RewriteRules, then mod_alias's Redirects; in ``.htaccess`` an internal rewrite comes after
    the Redirects, which run before it takes effect."""
    if module == "alias":
        return 1
    if context == "htaccess" and any("rewrite" in rule for rule in rules):
        return 2
    return 0
