"""Small pieces shared by several formats: URL splitting, query strings, rule assembly."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from waypost.rules.request import source_normal_form

from ._canon import action_of, effective_rule, ends_with_path_variable, uses_last_variable
from ._report import ImportResult, Note, Refusal, Skipped

__all__ = [
    "FIRST_MATCH",
    "REDIRECT_STATUSES",
    "Collector",
    "Refusal",
    "check_baseline",
    "is_absolute_url",
    "merge_slash_twins",
    "needs_strict",
    "query_condition",
    "single_value",
    "slash_twins",
    "split_source_url",
    "table_path",
    "unsupported_keys",
    "with_proxy_hosts",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_absolute_url(text: str) -> bool:
    """True for ``http://...`` and ``https://...`` (and other ``scheme://`` URLs)."""
    return bool(_SCHEME.match(text))


def split_source_url(text: str) -> tuple[str | None, str | None, str, str]:
    """``(scheme, host, path, query)`` of a source that may be a path or a full URL.

    A source without a scheme but starting with a host (``example.com/about``, as Cloudflare
    writes them) is split too.
    """
    try:
        if is_absolute_url(text):
            parts = urlsplit(text)
            host = (parts.hostname or "").lower() or None
            return parts.scheme.lower(), host, parts.path or "/", parts.query
        if not text.startswith("/"):
            parts = urlsplit("//" + text)
            return None, (parts.hostname or "").lower() or None, parts.path or "/", parts.query
    except ValueError:
        raise Refusal(f"cannot read the URL {text!r}") from None
    path, _, query = text.partition("?")
    return None, None, path, query


def table_path(path: str) -> str:
    """A redirect table's ``old_path`` (Django's, Wagtail's) as a ``from``: a leading ``/``, no
    trailing one (they match both); Refusal for ``<`` or ``>``, which a pattern cannot hold."""
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/")
    if "<" in path or ">" in path:
        raise Refusal(f"the path {path!r} contains '<' or '>', which Waypost patterns cannot")
    return path


def query_condition(query: str) -> dict[str, str]:
    """``a=1&b`` as a ``when.query`` mapping: a key without ``=`` only has to be present."""
    out: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue
        if "=" in item:
            key, value = next(iter(parse_qsl(item, keep_blank_values=True)))
            out[key] = value
        else:
            out[item] = "*"
    return out


def unsupported_keys(
    rule: Mapping[str, Any], allowed: set[str], allowed_when: set[str]
) -> str | None:
    """A reason naming the keys of ``rule`` (and of ``when``) outside ``allowed``, or ``None``."""
    extra = sorted(set(rule) - allowed - {"from", "name", "when"})
    when = rule.get("when") or {}
    allowed_when = allowed_when if "when" in allowed else set()
    names = extra + sorted(f"when.{key}" for key in set(when) - allowed_when)
    if not names:
        return None
    return "cannot express " + ", ".join(repr(name) for name in names)


def slash_twins(pattern: str, trailing_slash: str) -> list[str]:
    """The patterns a strict-matching format needs for ``pattern``: two (without and with the
    trailing slash) when the slash is ignored, else the pattern itself."""
    if trailing_slash != "ignore" or ends_with_path_variable(pattern) or pattern == "/":
        return [pattern]
    bare = pattern.rstrip("/")
    return [bare, bare + "/"]


def merge_slash_twins(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Undo :func:`slash_twins`: consecutive strict rules for ``/x`` and ``/x/`` that are otherwise
    identical become one ``/x`` rule that ignores the trailing slash."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        previous = out[-1] if out else None
        if (
            previous is not None
            and previous.get("trailing_slash") == rule.get("trailing_slash") == "strict"
            and str(rule.get("from")) == str(previous.get("from")) + "/"
            and {k: v for k, v in rule.items() if k != "from"}
            == {k: v for k, v in previous.items() if k != "from"}
        ):
            del previous["trailing_slash"]
            continue
        out.append(rule)
    return out


def single_value(value: Any, what: str) -> Any:
    """A condition value as one string, ``"*"`` or ``None``: a one-element list (the loader's
    spelling) is unwrapped; a longer list (any of several values) is refused."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise Refusal(
                f"{what} accepts one of several values {list(value)!r}; the format cannot"
            )
        return value[0]
    return value


def check_baseline(
    rule: Mapping[str, Any],
    defaults: Mapping[str, Any] | None,
    *,
    only_if_missing: bool = False,
) -> dict[str, Any]:
    """The effective rule, after refusing rules without exactly one action.

    ``only_if_missing`` says whether the format can express rules that wait for the app's 404;
    when it cannot, such a rule is refused and the key is left out of the result.
    """
    if action_of(rule) is None:
        raise Refusal("the rule needs exactly one of 'to', 'rewrite', 'respond' or 'pass'")
    if "from" not in rule:
        raise Refusal("the rule has no 'from' pattern")
    eff = effective_rule(rule, defaults)
    if not only_if_missing and eff.pop("only_if_missing", False):
        raise Refusal("the format cannot wait for the app's 404 ('only_if_missing')")
    return eff


def needs_strict(eff: Mapping[str, Any]) -> bool:
    """True when ``trailing_slash: strict`` changes what the rule does, so a format must keep it.

    Strict, ``/x`` and ``/x/`` are different paths. A pattern ending in a path variable matches
    both either way, but the variable's value keeps the request's trailing slash only when
    strict (``/a/<path:p>`` on ``/a/b/`` gives ``b/``; ignoring the slash gives ``b``), which
    matters when a target uses it: ``/blog/<path:rest>`` to ``/new/{rest}`` sends ``/blog/x/`` to
    ``/new/x/`` (what Apache's ``Redirect /blog /new`` imports as), not ``/new/x``.
    """
    if eff.get("trailing_slash") != "strict":
        return False
    pattern = str(eff["from"])
    return not ends_with_path_variable(pattern) or uses_last_variable(eff, pattern)


#: The defaults of an import from a format that applies the first matching line.
FIRST_MATCH: dict[str, Any] = {"order": "first_match"}


def unreachable_source(source: Any) -> str | None:
    """Why a rule's ``from`` is a path no request reaches, or None: Waypost answers a path with
    ``//`` or a ``.``/``..`` segment with a redirect to its normal form (see
    :func:`waypost.rules.request.normal_path`), as nginx and Werkzeug do, so a peer's source
    written that way (Cloudflare Pages and Netlify match it literally) never matches."""
    if not isinstance(source, str) or not source.startswith("/"):
        return None
    fixed = source_normal_form(source, encoded=True)
    if fixed is None:
        return None
    return (
        f"the source {source!r} has a '//' or a '.' or '..' segment; Waypost answers such "
        f"paths with a redirect to their normal form ({fixed!r}), so it would never match"
    )


class Collector:
    """Collects an importer's rules, skips and notes; a repeated rule is skipped as a duplicate.

    ``first_match``: the peer applies the first matching line (Netlify, Cloudflare Pages, Apache,
    WordPress Redirection), so the result asks for ``order: first_match``.
    """

    def __init__(self, *, first_match: bool = False) -> None:
        self.first_match = first_match
        self.rules: list[dict[str, Any]] = []
        #: The source line of each rule, in step with ``rules``.
        self.lines: list[int] = []
        self.skipped: list[Skipped] = []
        self.notes: list[Note] = []
        self._seen: dict[str, int] = {}
        self.scheme_note = False

    def add(self, line: int, text: str, rule: dict[str, Any], notes: Sequence[str] = ()) -> None:
        """Add ``rule`` read from ``line``, unless an identical rule came earlier or its source
        is a path no request reaches (see :func:`unreachable_source`)."""
        reason = unreachable_source(rule.get("from"))
        if reason is not None:
            self.skip(line, text, reason)
            return
        key = repr(sorted(rule.items()))
        if key in self._seen:
            if self.skipped and self.skipped[-1].line == line:
                return  # one line's second rule duplicating too: reported once
            self.skipped.append(
                Skipped(
                    line,
                    text,
                    f"same rule as line {self._seen[key]}"
                    + (
                        " once the scheme is dropped (the two lines give one redirect for http "
                        "and https)"
                        if self.scheme_note
                        else ""
                    ),
                )
            )
            return
        self._seen[key] = line
        self.rules.append(rule)
        self.lines.append(line)
        self.notes.extend(Note(line, text, note) for note in notes)

    def add_scheme_twin(self, line: int, text: str, rule: dict[str, Any]) -> bool:
        """Where ``rule`` (for one scheme: ``when.scheme``) repeats the rule added last for the
        other scheme, make that rule hold for both, report ``line`` as the same rule and return
        True. Only the rule right before counts: in a first-match file a line between the two
        may answer one scheme's requests."""
        if not self.rules:
            return False
        last = self.rules[-1]
        when, last_when = rule.get("when") or {}, last.get("when") or {}
        if {when.get("scheme"), last_when.get("scheme")} != {"http", "https"}:
            return False

        def bare(one: Mapping[str, Any]) -> dict[str, Any]:
            kept = {k: v for k, v in one["when"].items() if k != "scheme"}
            return {**{k: v for k, v in one.items() if k != "when"}, "when": kept}

        if bare(rule) != bare(last):
            return False
        self.rules[-1] = bare(last)
        if not self.rules[-1]["when"]:
            del self.rules[-1]["when"]
        self._seen[repr(sorted(self.rules[-1].items()))] = self.lines[-1]
        self.skipped.append(
            Skipped(
                line,
                text,
                f"same rule as line {self.lines[-1]} once the scheme is dropped (the two lines "
                "give one redirect for http and https)",
            )
        )
        return True

    def skip(self, line: int, text: str, reason: str) -> None:
        """Record a line that was not imported."""
        self.skipped.append(Skipped(line, text, reason))

    def note(self, line: int, text: str, message: str) -> None:
        """Record an assumption made while importing a line."""
        self.notes.append(Note(line, text, message))

    def result(self, fmt: str) -> ImportResult:
        """The finished :class:`ImportResult`."""
        defaults = dict(FIRST_MATCH) if self.first_match else {}
        lines = self.lines if len(self.lines) == len(self.rules) else []
        return ImportResult(self.rules, self.skipped, fmt, self.notes, defaults, lines=lines)


def refuse_proxy(rule: Mapping[str, Any], platform: str, how: str) -> None:
    """Raise :class:`Refusal` for a proxy rule (a ``rewrite`` to an absolute URL), which
    ``platform`` would turn into a redirect; ``how`` says what to write there by hand."""
    target = rule.get("rewrite")
    if isinstance(target, str) and target[:8].lower().startswith(("http://", "https://")):
        raise Refusal(
            f"a rewrite to another origin (a proxy) would be a redirect in {platform}; {how}"
        )


def with_proxy_hosts(result: ImportResult) -> ImportResult:
    """``result`` with the hosts its proxy rules (a ``rewrite`` to an absolute URL) go to, in the
    order they first appear, so that ``waypost import`` writes them as ``proxy_hosts:``."""
    hosts: list[str] = []
    for rule in result.rules:
        target = rule.get("rewrite")
        if isinstance(target, str) and is_absolute_url(target):
            host = (urlsplit(target).hostname or "").lower()
            if host and host not in hosts:
                hosts.append(host)
    return replace(result, proxy_hosts=hosts)
