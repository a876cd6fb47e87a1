"""``waypost test``: the redirect map of a migration, as test cases run against the rules.

A cases file lists requests and what must happen to them. CSV (the header names the columns)::

    method,url,headers,status,location
    GET,/old-page,,301,/new-page
    POST,/form,Content-Type: application/x-www-form-urlencoded,308,/form2
    GET,/still-here,,200,

or YAML, a list (or ``cases:``) of mappings with the same keys (``headers`` may be a mapping;
the expectations may also sit under ``expect:``)::

    cases:
      - url: /old-page
        expect: {status: 301, location: /new-page}

Columns: ``url`` (required), ``method`` (GET), ``headers`` (``Name: value`` pairs separated by
``|`` in CSV), ``ip``, ``name``, and at least one expectation: ``status`` (``200`` means "not
redirected, the app answers": a pass, a rewrite or a proxy), ``location`` (the redirect's
Location, a rewrite's new path and query, or the URL a proxy sends the request to), ``action``
(redirect, rewrite, proxy, respond, pass) and ``final`` (the URL a browser ends at after following
every redirect).

Pure: :func:`parse_cases` reads text, :func:`run_cases` asks the engine.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from waypost.engine import Decision, Engine
from waypost.exceptions import RuleError
from waypost.rules.load import csv_table
from waypost.tools.trace import follow

__all__ = [
    "CASE_KEYS",
    "Case",
    "CaseResult",
    "parse_cases",
    "render_failures",
    "run_cases",
]

CASE_KEYS = ("method", "url", "headers", "ip", "name", "status", "location", "action", "final")
_EXPECT_KEYS = ("status", "location", "action", "final")
# 'auth': a forward_auth guard's service would be asked (the tools never ask it).
_ACTIONS = ("redirect", "rewrite", "proxy", "respond", "pass", "auth")


@dataclass(frozen=True, slots=True)
class Case:
    """One request and what must happen to it (None: not checked)."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    client_ip: str | None = None
    status: int | None = None
    location: str | None = None
    action: str | None = None
    final: str | None = None
    name: str | None = None
    line: int | None = None

    def request_text(self) -> str:
        """``GET /old-page`` (with the headers, when there are any)."""
        headers = "".join(f" [{k}: {v}]" for k, v in self.headers)
        return f"{self.method} {self.url}{headers}"

    def expected_text(self) -> str:
        """The expectations in a few words: ``301 /new-page``."""
        parts = [
            self.action or "",
            "" if self.status is None else str(self.status),
            self.location or "",
            f"final {self.final}" if self.final else "",
        ]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case, the engine's decision, and what did not match (empty when it passed)."""

    case: Case
    decision: Decision
    problems: tuple[str, ...] = ()
    final_url: str | None = None

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.problems

    def got_text(self) -> str:
        """What happened, in the same words as :meth:`Case.expected_text`: the decision's own
        (:meth:`Decision.describe`), but a bare ``pass`` (a case expects ``action: pass``)."""
        d = self.decision
        text = "pass" if d.action == "pass" else d.describe(detail=False)
        if self.case.final is not None and self.final_url is not None:
            text += f" final {self.final_url}"
        return text


def _rewritten(decision: Decision) -> str:
    return f"{decision.path}?{decision.query}" if decision.query else str(decision.path)


# --------------------------------------------------------------------------------------------
# Reading


class _Bad(ValueError):
    pass


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, Mapping):
        return tuple((str(k), str(v)) for k, v in value.items())
    items = value if isinstance(value, list) else str(value).split("|")
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not str(item).strip():
            continue
        name, sep, rest = str(item).partition(":")
        if not sep or not name.strip():
            raise _Bad(
                f"{item!r} is not a header; write it as 'Name: value' (several: 'A: 1 | B: 2')"
            )
        pairs.append((name.strip(), rest.strip()))
    return tuple(pairs)


def _case(entry: Mapping[str, Any], line: int | None) -> Case:
    entry = dict(entry)
    expect = entry.pop("expect", None)
    if expect is not None:
        if not isinstance(expect, Mapping):
            raise _Bad("'expect' must be a mapping like {status: 301, location: /new}")
        for key, value in expect.items():
            if key not in _EXPECT_KEYS:
                raise _Bad(_unknown(str(key), _EXPECT_KEYS, "expectation"))
            entry[key] = value
    for key in entry:
        if key not in CASE_KEYS:
            raise _Bad(_unknown(str(key), CASE_KEYS))
    entry = {k: v for k, v in entry.items() if v is not None and v != ""}
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _Bad("every case needs a 'url', like /old-page")
    if not any(k in entry for k in _EXPECT_KEYS):
        raise _Bad(f"nothing to check for {url!r}: give status, location, action or final")
    status: int | None = None
    if "status" in entry:
        raw = entry["status"]
        if isinstance(raw, bool) or not str(raw).strip().isdecimal():
            raise _Bad(f"status must be a number like 301, got {raw!r}")
        status = int(str(raw).strip())
    action = entry.get("action")
    if action is not None:
        action = str(action).strip().lower()
        if action not in _ACTIONS:
            raise _Bad(_unknown(action, _ACTIONS, "action"))
    method = str(entry.get("method", "GET")).strip().upper() or "GET"
    return Case(
        url=url.strip(),
        method=method,
        headers=_headers(entry.get("headers")),
        client_ip=str(entry["ip"]).strip() if "ip" in entry else None,
        status=status,
        location=str(entry["location"]).strip() if "location" in entry else None,
        action=action,
        final=str(entry["final"]).strip() if "final" in entry else None,
        name=str(entry["name"]) if "name" in entry else None,
        line=line,
    )


def _unknown(key: str, known: Sequence[str], what: str = "key") -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return f"unknown {what} {key!r}; {hint}"


def _parse_csv(text: str, file: str) -> tuple[list[Case], list[RuleError]]:
    cases: list[Case] = []
    errors: list[RuleError] = []

    def check_header(header: list[str], row: list[str], start: int) -> bool:
        bad = [h for h in header if h not in CASE_KEYS]
        if bad or "url" not in header:
            problem = _unknown(bad[0], CASE_KEYS, "column") if bad else "the header has no 'url'"
            errors.append(RuleError(f"{problem} (header: {','.join(row)})", file=file, line=start))
            return False
        return True

    for header, row, start in csv_table(
        io.StringIO(text, newline=""),
        file,
        errors,
        check_header=check_header,
        wrong_width=lambda header, row: (
            f"this row has {len(row)} columns but the header has {len(header)}"
        ),
        empty="the file is empty; its first line names the columns, like url,status,location",
    ):
        try:
            cases.append(_case(dict(zip(header, row, strict=True)), start))
        except _Bad as exc:
            errors.append(RuleError(str(exc), file=file, line=start))
    return cases, errors


def _items(root: Node | None) -> list[Node] | None:
    if isinstance(root, SequenceNode):
        return list(root.value)
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if getattr(key, "value", None) == "cases" and isinstance(value, SequenceNode):
                return list(value.value)
    return None


def _parse_yaml(text: str, file: str) -> tuple[list[Case], list[RuleError]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        return [], [RuleError(f"not valid YAML: {exc.problem}", file=file, line=line)]
    except yaml.YAMLError as exc:
        return [], [RuleError(f"not valid YAML: {exc}", file=file)]
    items = _items(root)
    if items is None:
        return [], [
            RuleError(
                "a cases file holds a list of cases (or 'cases:' with one)", file=file, line=1
            )
        ]
    cases: list[Case] = []
    errors: list[RuleError] = []
    loader = yaml.SafeLoader("")
    for node in items:
        line = node.start_mark.line + 1
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            errors.append(RuleError(f"not valid YAML: {exc}", file=file, line=line))
            continue
        if not isinstance(value, Mapping):
            errors.append(
                RuleError(f"a case is a mapping with 'url', got {value!r}", file=file, line=line)
            )
            continue
        try:
            cases.append(_case(value, line))
        except _Bad as exc:
            errors.append(RuleError(str(exc), file=file, line=line))
    loader.dispose()
    return cases, errors


def parse_cases(
    text: str, *, format: str, file: str = "<cases>"
) -> tuple[list[Case], list[RuleError]]:
    """Read cases from ``text`` in ``format`` (``csv`` or ``yaml``); returns cases and errors."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if format == "csv":
        return _parse_csv(text, file)
    if format == "yaml":
        return _parse_yaml(text, file)
    raise ValueError(f"unknown cases format {format!r}; use csv or yaml")


# --------------------------------------------------------------------------------------------
# Running


def _check(case: Case, decision: Decision, final_url: str | None) -> tuple[str, ...]:
    problems: list[str] = []
    if case.action is not None and decision.action != case.action:
        problems.append(f"action is {decision.action}, expected {case.action}")
    if case.status is not None:
        if case.status == 200 and decision.action in ("pass", "rewrite", "proxy"):
            pass  # the app (or the proxied origin) answers
        elif decision.status != case.status:
            got = decision.status if decision.status is not None else f"none ({decision.action})"
            problems.append(f"status is {got}, expected {case.status}")
    if case.location is not None:
        if decision.action == "redirect" or decision.action == "proxy":
            got_location: str | None = decision.location
        elif decision.action == "rewrite":
            got_location = _rewritten(decision)
        else:
            got_location = None
        if got_location != case.location:
            problems.append(f"location is {got_location}, expected {case.location}")
    if case.final is not None and final_url != case.final:
        problems.append(f"final URL is {final_url}, expected {case.final}")
    return tuple(problems)


def run_cases(
    engine: Engine, cases: Sequence[Case], *, site_hosts: Sequence[str] = ()
) -> list[CaseResult]:
    """Resolve every case and compare; ``site_hosts`` serve the ``final`` expectation."""
    results: list[CaseResult] = []
    hosts = (*engine.ruleset.allowed_hosts, *site_hosts)
    for case in cases:
        decision = engine.resolve(case.method, case.url, case.headers, case.client_ip)
        final_url = None
        if case.final is not None:
            walk = follow(
                engine,
                case.method,
                case.url,
                case.headers,
                case.client_ip,
                site_hosts=hosts,
                first=decision,
            )
            final_url = (
                walk.final_url if walk.outcome in ("final", "offsite") else f"({walk.outcome})"
            )
        results.append(CaseResult(case, decision, _check(case, decision, final_url), final_url))
    return results


def render_failures(results: Sequence[CaseResult], *, file: str = "<cases>") -> str:
    """A table of the failed cases (location, request, expected, got) and a summary line."""
    failed = [r for r in results if not r.passed]
    summary = f"{len(results) - len(failed)} passed, {len(failed)} failed"
    if not failed:
        return summary
    rows = [("case", "request", "expected", "got")]
    for result in failed:
        case = result.case
        where = f"{file}:{case.line}" if case.line is not None else file
        if case.name:
            where += f" {case.name}"
        rows.append((where, case.request_text(), case.expected_text(), result.got_text()))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, summary])
