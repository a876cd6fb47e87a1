"""What a rule being written would do, before it is saved: its problems (the rules loader's
messages, field by field), what it answers for a sample URL (the engine's explain) and what
``waypost check`` says about it among the stored rules (loops, chains, shadowing).

Nothing here writes. The admin page's rule form asks it on every change; the API's own
``/api/validate`` and ``/api/explain`` answer the same questions one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from waypost.admin.service import ProblemDict, validate
from waypost.exceptions import WaypostError
from waypost.follow.store_sync import snapshot_engine
from waypost.guards import KeyRing
from waypost.rules.model import Rule
from waypost.store.model import Snapshot
from waypost.tools.check import Finding, check_rules

__all__ = ["CHECK_LIMIT", "Trial", "try_rule"]

#: Above this many stored rules the form does not run ``check`` on each change (building an
#: engine for them takes seconds); it says so, and ``waypost check`` covers the whole set.
CHECK_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Trial:
    """What trying a rule found: ``problems`` (nothing else is known when there are some), the
    decision for the sample URL in words and the trace's steps that concern the rule,
    ``findings`` of ``check`` about it, and ``note`` when a part could not be run (why)."""

    problems: list[ProblemDict]
    sample: str | None = None
    decision: str | None = None
    decided_by_rule: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the form's script)."""
        return {
            "problems": self.problems,
            "sample": self.sample,
            "decision": self.decision,
            "decided_by_rule": self.decided_by_rule,
            "steps": self.steps,
            "findings": [
                {"severity": f.severity, "kind": f.kind, "message": f.message}
                for f in self.findings
            ],
            "note": self.note,
        }


def _candidate_rules(
    snapshot: Snapshot, rule: Mapping[str, Any], rule_id: str | None
) -> tuple[list[Any], int]:
    """The stored rules with ``rule`` standing in for ``rule_id`` (or added last), and its
    index."""
    rules = list(snapshot.rules)
    if rule_id is not None and rule_id in snapshot.rule_ids:
        index = snapshot.rule_ids.index(rule_id)
        rules[index] = dict(rule)
        return rules, index
    rules.append(dict(rule))
    return rules, len(rules) - 1


def _concerns(finding: Finding, rule: Rule) -> bool:
    return finding.rule is rule or any(other is rule for other in finding.related)


def try_rule(
    snapshot: Snapshot,
    rule: Mapping[str, Any],
    *,
    rule_id: str | None = None,
    sample: str | None = None,
    keys: KeyRing | None = None,
    check_limit: int = CHECK_LIMIT,
    alone_among: int | None = None,
) -> Trial:
    """Try ``rule`` among the stored rules (standing in for ``rule_id`` when given): its
    problems; without any, what it does to ``sample`` (a path with query, or an absolute URL)
    and what ``check`` finds about it.

    ``alone_among``: ``snapshot`` holds the settings but not the rules (their number is this),
    because reading and building a large rule set for each keystroke takes seconds; the rule is
    tried on its own, and the note says what is left to its saving (which checks it against
    every rule) and to ``waypost check``."""
    problems = validate(snapshot, rule=rule, rule_id=rule_id)
    if problems:
        return Trial(problems)
    rules, index = _candidate_rules(snapshot, rule, rule_id)
    try:
        engine = snapshot_engine(replace(snapshot, rules=tuple(rules)), keys=keys)
    except WaypostError as exc:  # a guard this process cannot build (a secret it lacks)
        return Trial([], note=f"the rules cannot be tried here: {exc}")
    candidate = engine.rules[index]
    decision = None
    decided = False
    steps: list[dict[str, Any]] = []
    if sample:
        try:
            trace = engine.explain("GET", sample)
        except WaypostError as exc:
            return Trial([], sample=sample, note=f"the sample URL cannot be tried: {exc}")
        decision = trace.decision.describe(detail=False)
        decided = trace.decision.rule is candidate
        steps = [
            {
                "this_rule": step.rule is candidate,
                "outcome": step.outcome,
                "reason": step.reason,
                "from": step.rule.path,
                "name": step.rule.name,
            }
            for step in trace.steps
        ]
    note = None
    findings: list[Finding] = []
    if alone_among is not None:
        note = (
            f"tried on its own, not among the {alone_among:,} stored rules (that takes seconds "
            "at this size): saving checks it against all of them, and `waypost check` finds "
            "loops and shadowing across the whole set"
        )
        findings = [f for f in check_rules(engine) if _concerns(f, candidate)]
    elif len(rules) > check_limit:
        note = (
            f"loops, chains and shadowing are not checked here with {len(rules):,} rules; run "
            "`waypost check` on an export"
        )
    else:
        findings = [f for f in check_rules(engine) if _concerns(f, candidate)]
    return Trial([], sample, decision, decided, steps, findings, note)


def problem_fields(
    problems: Sequence[ProblemDict], fields: Mapping[str, str]
) -> dict[str, list[str]]:
    """The problems by form field: a problem's path (``from``, ``rule.to``, ``to``) names a rule
    key, and ``fields`` says which field holds it; any other goes to ``""`` (the form as a
    whole)."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        path = problem["path"].removeprefix("rule").lstrip(".")
        head = path.split(".", 1)[0].split("[", 1)[0]
        out.setdefault(fields.get(head, ""), []).append(problem["message"])
    return out
