"""Print the per-suite figures of the conformance suite (and, with ``-v``, every case that does
not simply agree): ``python -m tests.tools.formats.conformance [-v]``."""

from __future__ import annotations

import sys

from . import all_cases
from ._harness import VERDICTS, run_case, tally


def main(argv: list[str]) -> int:
    outcomes = [run_case(case) for case in all_cases()]
    if "-v" in argv:
        for outcome in outcomes:
            if outcome.verdict != "agree":
                print(outcome.render())
        print()
    table = tally(outcomes)
    print("| suite | cases | " + " | ".join(VERDICTS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in VERDICTS) + " |")
    for suite, row in table.items():
        cells = " | ".join(str(row[verdict]) for verdict in VERDICTS)
        print(f"| {suite} | {sum(row.values())} | {cells} |")
    total = {verdict: sum(row[verdict] for row in table.values()) for verdict in VERDICTS}
    print(f"| all | {sum(total.values())} | " + " | ".join(map(str, total.values())) + " |")
    return 1 if total["disagree"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
