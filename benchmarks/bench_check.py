"""Benchmark of ``waypost check`` on a large CSV table: the whole command, in a fresh process,
for two tables, against the code of another source tree in the same run.

Run it with ``python benchmarks/bench_check.py`` (a few minutes) or ``--sizes 1000`` (seconds).
It prints a table and writes ``benchmarks/results/check.json`` and ``check.md``.

The issue's target (#19): a million-row CSV table checks in under 10 s, since ``check`` runs in
every CI pipeline of a large site. Two tables of ``from,to,status``: ``literal``, literal
redirects only (what a site's export of moved pages is), and ``mixed``, bench_import.py's (one
row in ten a pattern, one in twenty a 302). Each measurement is a fresh process, one after the
other, ``--rounds`` times, interleaved with the baseline (``--baseline-src DIR``, see
``_baseline.py``) when given; the figure is the median of the command's CPU seconds (user and
system: the machine is shared) with its wall-clock seconds beside it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from _baseline import add_baseline_argument, checked_baseline_src
from _command import figure_cell, median_figures, run_worker, with_baseline_ratio
from _results import parse_sizes, write_results
from bench_import import write_csv

TARGET_SECONDS = 10.0

_WORKER = r"""
import json, resource, sys, time
from waypost.cli import main
start = time.perf_counter()
try:
    main(["check", sys.argv[1]], standalone_mode=False)
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""


def write_literal(path: Path, count: int) -> None:
    """``count`` literal redirects, one in twenty a 302."""
    with path.open("w", encoding="utf-8") as out:
        out.write("from,to,status\n")
        for n in range(count):
            out.write(f"/old/{n},/new/{n},{302 if n % 20 == 3 else 301}\n")


def measure(count: int, table: str, rounds: int, tree: Path | None) -> dict[str, Any]:
    trees: dict[str, Path | None] = {"waypost": None}
    if tree is not None:
        trees["baseline"] = tree
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.csv"
        (write_literal if table == "literal" else write_csv)(path, count)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, source in trees.items():
                runs[name].append(run_worker(_WORKER, [str(path)], source, name))
    figures = median_figures(runs)
    out: dict[str, Any] = {
        "rows": count,
        "table": table,
        "figures": figures,
        "meets_target": figures["waypost"]["cpu"] < TARGET_SECONDS,
    }
    return with_baseline_ratio(out)


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "### Checking a large CSV table (`benchmarks/bench_check.py`)",
        "",
        "`waypost check rules.csv` in a fresh process: median CPU seconds (wall clock beside "
        "it) and peak memory; `literal`: literal redirects only, `mixed`: one row in ten a "
        f"pattern. Target: a million rows in under {TARGET_SECONDS:.0f} s.",
        "",
        "| rows | table | Waypost | before (baseline) | before / Waypost |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r['baseline_over_waypost']}x" if "baseline_over_waypost" in r else "-"
        lines.append(
            f"| {r['rows']:,} | {r['table']} | {figure_cell(r, 'waypost')} "
            f"| {figure_cell(r, 'baseline')} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000", help="row counts, comma-separated")
    parser.add_argument("--tables", default="literal,mixed")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    add_baseline_argument(parser)
    args = parser.parse_args()
    tree = checked_baseline_src(args.baseline_src)
    results = []
    for size in parse_sizes(args.sizes):
        for table in args.tables.split(","):
            result = measure(size, table, args.rounds, tree)
            print(json.dumps(result), flush=True)
            results.append(result)
    text = report(results)
    if not args.no_write:
        write_results("check", results, text)
    print(text)
    failed = [
        f"{r['table']} {r['rows']:,}"
        for r in results
        if r["rows"] >= 1_000_000 and not r["meets_target"]
    ]
    if failed:
        print(f"FAIL: over {TARGET_SECONDS:.0f} s for {', '.join(failed)}")


if __name__ == "__main__":
    main()
