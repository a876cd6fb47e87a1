"""Cloudflare's cases: Pages ``_redirects`` (workers-sdk's parser and handler tests) and Bulk
Redirects CSV (the examples of Cloudflare's documentation).

The handler tests and the documentation state the requests and the answers, so those cases are
read as they are. The parser tests state only the rules Cloudflare makes of a file (``from``,
``to``, ``status``, ``line``) and the lines it rejects: :func:`pages_parse_cases` asks, for each
rule, requests that its ``from`` matches, and answers them as Cloudflare's asset worker would,
with the small reference below (``rules-engine.ts`` and ``handler.ts`` of workers-sdk: the first
matching rule in line order; ``*`` any text, ``:name`` one segment's worth; the target filled in
and, when relative, its runs of slashes squeezed into one; a 200 serves the target's path).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from typing import Any

from ._harness import DATA, Ask, Case, ask_from

__all__ = ["bulk_cases", "pages_parse_cases", "pages_runtime_cases"]

# rules-engine.ts: the characters escaped before '*' and ':name' become groups.
_ESCAPE = re.compile(r"[-/\\^$*+?.()|[\]{}]")
_PLACEHOLDER = re.compile(r":([A-Za-z]\w*)")
_ABSOLUTE = re.compile(r"^\w+://")


def pages_rule_regex(source: str) -> re.Pattern[str] | None:
    """Cloudflare's regex for a ``from`` (``generateRuleRegExp``), or None where it cannot
    compile one (a name used twice), which Cloudflare then never applies."""
    text = "(?P<splat>.*)".join(
        _ESCAPE.sub(lambda m: "\\" + m.group(0), part) for part in source.split("*")
    )
    text = _PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", text)
    try:
        return re.compile(f"^{text}$")
    except re.error:
        return None


def pages_answer(rules: list[dict[str, Any]], path: str) -> tuple[str, int | None]:
    """Cloudflare's answer to a GET of ``path`` (no query) under ``rules``, in
    :meth:`Decision.describe` words, and the line of the rule that gives it."""
    for rule in rules:
        regex = pages_rule_regex(rule["from"])
        found = regex.match(path) if regex else None
        if found is None:
            continue
        values: dict[str, str] = found.groupdict()
        target = _PLACEHOLDER.sub(
            lambda m, values=values: values.get(m.group(1), m.group(0)), rule["to"]
        ).strip()
        if not _ABSOLUTE.match(target):
            target = re.sub(r"/+", "/", target)
        if rule["status"] == 200:
            return f"rewrite {target.partition('#')[0].partition('?')[0]}", rule["line"]
        return f"redirect {rule['status']} {target}", rule["line"]
    return "pass", None


def _requests_for(source: str) -> list[str]:
    """Paths that ``source`` matches: its splat filled with 'a/b' and with nothing, each
    placeholder with 'v' and its name."""
    filled = _PLACEHOLDER.sub(lambda m: "v" + m.group(1), source)
    paths = [filled.replace("*", "a/b")]
    if "*" in filled:
        paths.append(filled.replace("*", ""))
    return paths


def pages_parse_cases() -> list[Case]:
    """The parser tests: a ``_redirects`` file, the lines Cloudflare rejects, the rules it makes,
    and requests each rule matches, answered by :func:`pages_answer`."""
    data = json.loads((DATA / "cloudflare-pages" / "cases.json").read_text(encoding="utf-8"))
    cases = []
    for entry in data["parse"]:
        rules = sorted(entry["rules"], key=lambda rule: rule["line"])
        asks: list[Ask] = []
        for rule in rules:
            for path in _requests_for(rule["from"]):
                expect, line = pages_answer(rules, path)
                if any(ask.url == path for ask in asks):
                    continue
                asks.append(Ask(path, expect, line=line, why=f"{rule['from']} {rule['to']}"))
        cases.append(
            Case(
                "cloudflare-pages",
                entry["test"],
                "_redirects",
                entry["input"],
                tuple(asks),
                format="cloudflare-pages",
                invalid=tuple(item["line"] for item in entry["invalid"]),
                rules=len(rules),
            )
        )
    return cases


def pages_runtime_cases() -> list[Case]:
    """The handler and rules-engine tests: a ``_redirects`` file and the answers asserted."""
    data = json.loads((DATA / "cloudflare-pages" / "cases.json").read_text(encoding="utf-8"))
    return [
        Case(
            "cloudflare-pages",
            entry["test"],
            "_redirects",
            entry["input"],
            tuple(ask_from(ask) for ask in entry["requests"]),
            format="cloudflare-pages",
        )
        for entry in data["runtime"]
    ]


def bulk_line(text: str, url: str) -> int | None:
    """The CSV line whose redirect Cloudflare applies to ``url``, by its documented matching
    (the scheme if the source has one; the host, or its subdomains with ``include_subdomains``;
    the path, or a path under it with ``subpath_matching``) and precedence (the more specific
    subpath, an exact host, the more specific domain, a source with a scheme: "How Bulk
    Redirects work")."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    path = "/" + path.partition("?")[0]
    best: tuple[tuple[Any, ...], int] | None = None
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if len(row) < 2:
            continue
        source_scheme, sep, source = row[0].partition("://")
        if not sep:
            source_scheme, source = "", row[0]
        source_host, _, source_path = source.partition("/")
        source_path = "/" + source_path
        flags = [cell.strip().upper() == "TRUE" for cell in [*row[3:], "", "", "", ""][:4]]
        subdomains, subpath = flags[1], flags[2]
        under = source_path if source_path.endswith("/") else source_path + "/"
        if source_scheme and source_scheme != scheme:
            continue
        if host != source_host and not (subdomains and host.endswith("." + source_host)):
            continue
        if path != source_path and not (subpath and path.startswith(under)):
            continue
        key = (
            -len(source_path.rstrip("/")),
            subdomains,
            -source_host.count("."),
            not source_scheme,
        )
        if best is None or key < best[0]:
            best = (key, number)
    return best[1] if best else None


def bulk_cases() -> list[Case]:
    """The documentation's examples, each a CSV file and the redirects it makes; a request's
    line, which the examples leave out, is the one :func:`bulk_line` finds."""
    data = json.loads((DATA / "cloudflare-bulk" / "docs_cases.json").read_text(encoding="utf-8"))
    cases = []
    for entry in data["cases"]:
        asks = []
        for item in entry["requests"]:
            ask = ask_from(item)
            if ask.line is None:
                ask = replace(ask, line=bulk_line(entry["input"], ask.url))
            asks.append(ask)
        cases.append(
            Case(
                "cloudflare-bulk",
                entry["test"],
                entry.get("file") or "redirects.csv",
                entry["input"],
                tuple(asks),
                format=None if entry.get("file") else "cloudflare",
            )
        )
    return cases
