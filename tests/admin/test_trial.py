"""Trying a rule before it is saved: problems by field, the sample's decision, check's warnings."""

from __future__ import annotations

from waypost.admin.trial import problem_fields, try_rule
from waypost.store.model import Snapshot

STORED = Snapshot(
    revision=3,
    defaults={},
    allowed_hosts=(),
    rules=({"from": "/old", "to": "/new"}, {"name": "taken", "from": "/n", "to": "/m"}),
    rule_ids=("r1", "r2"),
)
FIELDS = {"from": "from", "to": "target", "name": "name"}


def test_problems_come_back_by_field() -> None:
    trial = try_rule(STORED, {"from": "/a/<itn:x>", "to": "/b", "name": "taken"})
    fields = problem_fields(trial.problems, FIELDS)
    assert "did you mean 'int'" in " ".join(fields["from"])
    assert trial.decision is None


def test_a_duplicate_name_is_a_problem_unless_it_is_the_rule_itself() -> None:
    duplicate = try_rule(STORED, {"name": "taken", "from": "/q", "to": "/r"})
    assert "already used" in " ".join(problem_fields(duplicate.problems, FIELDS)["name"])
    itself = try_rule(STORED, {"name": "taken", "from": "/q", "to": "/r"}, rule_id="r2")
    assert itself.problems == []


def test_the_sample_is_answered_and_a_loop_is_found() -> None:
    trial = try_rule(STORED, {"from": "/new", "to": "/old"}, sample="/new?x=1")
    assert trial.decision == "redirect 301 /old?x=1" and trial.decided_by_rule
    assert any(f.kind == "loop" for f in trial.findings)
    other = try_rule(STORED, {"from": "/elsewhere", "to": "/e"}, sample="/old")
    assert other.decision == "redirect 301 /new" and not other.decided_by_rule


def test_past_the_check_limit_the_check_is_left_out_and_said_so() -> None:
    trial = try_rule(STORED, {"from": "/new", "to": "/old"}, check_limit=2)
    assert trial.findings == [] and "waypost check" in (trial.note or "")
