"""Every case of the peers' own suites agrees with the peer, or is refused or skipped with a
reason (see ``_harness``). The data is in tests/data/peer-formats (copied from
../shared/peer-formats; its README names the sources)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import all_cases
from ._harness import DATA, Case, render_table, run_case

SHARED = Path(__file__).parents[5] / "shared" / "peer-formats"

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.suite}:{c.name}" for c in CASES])
def test_case_agrees_or_is_refused_with_a_reason(case: Case) -> None:
    outcome = run_case(case)
    assert outcome.verdict != "disagree", outcome.render()
    if outcome.verdict != "agree":
        assert outcome.details, "a case that does not agree says why"


def test_the_copy_is_the_shared_suite() -> None:
    """The repository's copy is ../shared/peer-formats as it stands, where that is present."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the copy in {DATA} is what runs")
    ours = sorted(p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(SHARED) for p in SHARED.rglob("*") if p.is_file())
    assert ours == theirs
    for name in ours:
        assert (DATA / name).read_bytes() == (SHARED / name).read_bytes(), name


def test_every_suite_is_run() -> None:
    assert {case.suite for case in CASES} == {
        "netlify",
        "cloudflare-pages",
        "cloudflare-bulk",
        "vercel",
    }


def test_the_readme_gives_the_figures_of_this_run() -> None:
    readme = (Path(__file__).parents[4] / "docs" / "migrations.md").read_text(encoding="utf-8")
    written = readme.split("<!-- conformance -->\n", 1)[1].split("\n<!-- /conformance -->", 1)[0]
    assert written == render_table([run_case(case) for case in CASES]), (
        "update docs/migrations.md's table: python -m tests.tools.formats.conformance"
    )
