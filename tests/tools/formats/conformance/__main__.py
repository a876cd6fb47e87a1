"""Print the per-suite figures of the conformance suite (and, with ``-v``, every case that does
not simply agree): ``python -m tests.tools.formats.conformance [-v]``."""

from __future__ import annotations

import sys

from . import all_cases
from ._harness import render_table, run_case


def main(argv: list[str]) -> int:
    outcomes = [run_case(case) for case in all_cases()]
    if "-v" in argv:
        for outcome in outcomes:
            if outcome.verdict != "agree":
                print(outcome.render())
        print()
    print(render_table(outcomes))
    return 1 if any(outcome.verdict == "disagree" for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
