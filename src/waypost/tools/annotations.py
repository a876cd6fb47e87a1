"""Findings written for the reader at hand: people, JSON, GitHub Actions and GitLab.

- :func:`render_human`: ``file:line: severity [kind] message`` lines and a summary;
- :func:`render_json`: one object with the loading errors and every finding;
- :func:`render_github`: workflow commands (``::error file=...,line=...::message``) that GitHub
  Actions turns into annotations on the pull request;
- :func:`render_gitlab`: a GitLab Code Quality report (a JSON list of issues with
  ``description``, ``check_name``, ``fingerprint``, ``severity`` and ``location``).

Pure: strings in, strings out.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from waypost.exceptions import RuleError
from waypost.tools.check import Finding, Severity

__all__ = ["render_github", "render_gitlab", "render_human", "render_json", "summary_counts"]

_GITHUB_LEVEL: dict[Severity, str] = {"error": "error", "warning": "warning", "info": "notice"}
# GitLab Code Quality severities: info, minor, major, critical, blocker.
_GITLAB_LEVEL: dict[Severity, str] = {"error": "major", "warning": "minor", "info": "info"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_counts(findings: Sequence[Finding]) -> dict[str, int]:
    """How many findings of each severity: ``{"error": 1, "warning": 0, "info": 3}``."""
    counts = Counter(f.severity for f in findings)
    return {name: counts.get(name, 0) for name in ("error", "warning", "info")}


def render_human(
    findings: Sequence[Finding], *, file: str, rule_count: int, verbose: bool = False
) -> str:
    """The findings for people, worst first within each line; notes (info) only if ``verbose``.

    A file with nothing worse than notes reads ``FILE: ok, N rules``.
    """
    counts = summary_counts(findings)
    shown = [f for f in findings if verbose or f.severity != "info"]
    lines = [f.render() for f in shown]
    fixable = sum(1 for f in findings if f.fix is not None)
    if not counts["error"] and not counts["warning"]:
        head = f"{file}: ok, {_plural(rule_count, 'rule')}"
        if verbose and counts["info"]:
            head += f" ({_plural(counts['info'], 'note')})"
        lines.append(head)
        return "\n".join(lines)
    parts = [_plural(counts["error"], "error"), _plural(counts["warning"], "warning")]
    if counts["info"]:
        parts.append(_plural(counts["info"], "note") + ("" if verbose else " (-v shows them)"))
    lines.append(f"{file}: {_plural(rule_count, 'rule')}; {', '.join(parts)}")
    if fixable:
        lines.append(
            f"{_plural(fixable, 'chain')} can be pointed straight at the destination with --fix"
        )
    return "\n".join(lines)


def render_json(
    findings: Sequence[Finding],
    *,
    file: str,
    rule_count: int,
    errors: Sequence[RuleError] = (),
) -> str:
    """One JSON object: ``file``, ``ok`` (no loading error and no error finding), ``rules``,
    ``errors`` (loading errors, as before), ``findings`` and ``counts``."""
    counts = summary_counts(findings)
    data: dict[str, Any] = {
        "file": file,
        "ok": not errors and not counts["error"],
        "rules": rule_count,
        "errors": [
            {"file": e.file, "line": e.line, "col": e.col, "message": e.message} for e in errors
        ],
        "findings": [f.to_dict() for f in findings],
        "counts": counts,
    }
    return json.dumps(data, indent=2)


def _escape_data(text: str) -> str:
    # GitHub workflow commands: https://github.com/actions/toolkit (command.ts, escapeData).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands, one per finding (``::error file=F,line=N,title=T::M``)."""
    lines: list[str] = []
    for finding in findings:
        props = []
        if finding.file:
            props.append(f"file={_escape_property(finding.file)}")
        if finding.line is not None:
            props.append(f"line={finding.line}")
        props.append(f"title={_escape_property('waypost ' + finding.kind)}")
        level = _GITHUB_LEVEL[finding.severity]
        lines.append(f"::{level} {','.join(props)}::{_escape_data(finding.message)}")
    return "\n".join(lines)


def _fingerprint(finding: Finding) -> str:
    origin = finding.rule.path if finding.rule is not None else ""
    key = "|".join([finding.kind, finding.file or "", origin, finding.message])
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def render_gitlab(findings: Sequence[Finding]) -> str:
    """A GitLab Code Quality report: a JSON list of issues (``artifacts:reports:codequality``)."""
    issues = [
        {
            "type": "issue",
            "check_name": f"waypost-{finding.kind}",
            "description": finding.message,
            "categories": ["Bug Risk"] if finding.severity == "error" else ["Style"],
            "severity": _GITLAB_LEVEL[finding.severity],
            "fingerprint": _fingerprint(finding),
            "location": {
                "path": finding.file or "<rules>",
                "lines": {"begin": finding.line or 1},
            },
        }
        for finding in findings
    ]
    return json.dumps(issues, indent=2)
