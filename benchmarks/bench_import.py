"""Benchmark of ``waypost db import`` of a large CSV table into an empty SQLite store: the whole
command, in a fresh process, against the code of another source tree in the same run.

Run it with ``python benchmarks/bench_import.py`` (several minutes) or ``--sizes 1000``
(seconds). It prints a table, writes the figures to ``benchmarks/results/import.json`` and a
README snippet to ``benchmarks/results/import.md``.

The issue's target (#19): a million-row import in under 20 s. The table is ``from,to,status``:
literal paths, one row in ten a pattern, one in twenty a 302. Each measurement is a fresh
process importing into a fresh database file, one after the other, ``--rounds`` times; the
figure is the median of the command's CPU seconds (user and system: the machine is shared, and
the wall clock counts the other jobs) with its wall-clock seconds beside it. The baseline is
the same command on an older tree (``--baseline-src DIR``, see ``_baseline.py``: the store's
write path before the change); without one, the table shows this tree alone.
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

TARGET_SECONDS = 20.0

_WORKER = r"""
import json, resource, sys, time
from waypost.cli import main
from waypost.cli.store import db_import
csv_path, db_path = sys.argv[1], sys.argv[2]
args = ["db", "import", csv_path, "--db", "sqlite:///" + db_path]
if any(param.name == "quiet" for param in db_import.params):  # an older tree has no --quiet
    args.append("--quiet")
start = time.perf_counter()
main(args, standalone_mode=False)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""


def write_csv(path: Path, count: int) -> None:
    """A ``from,to,status`` table of ``count`` rows: literal paths, one in ten a pattern, one in
    twenty a 302."""
    with path.open("w", encoding="utf-8") as out:
        out.write("from,to,status\n")
        for n in range(count):
            if n % 10 == 9:
                out.write(f"/section{n}/<path:rest>,/s{n}/{{rest}},301\n")
            else:
                out.write(f"/old/{n},/new/{n},{302 if n % 20 == 3 else 301}\n")


def run(path: Path, folder: Path, tree: Path | None, name: str) -> dict[str, Any]:
    db = folder / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return run_worker(_WORKER, [str(path), str(db)], tree, name)


def measure(count: int, rounds: int, tree: Path | None, baseline_max: int) -> dict[str, Any]:
    trees: dict[str, Path | None] = {"waypost": None}
    if tree is not None and count <= baseline_max:
        trees["baseline"] = tree
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "rules.csv"
        write_csv(path, count)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, source in trees.items():  # interleaved: each round meets the same noise
                runs[name].append(run(path, folder, source, name))
    figures = median_figures(runs)
    out: dict[str, Any] = {
        "rows": count,
        "figures": figures,
        "meets_target": figures["waypost"]["cpu"] < TARGET_SECONDS,
    }
    return with_baseline_ratio(out)


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "### Importing a large CSV table into the store (`benchmarks/bench_import.py`)",
        "",
        "`waypost db import rules.csv --db sqlite:///...` into an empty store, in a fresh "
        "process: median CPU seconds (wall clock beside it) and peak memory; target: a "
        f"million rows in under {TARGET_SECONDS:.0f} s. The baseline is the same command on "
        "the tree before the change (`--baseline-src`).",
        "",
        "| rows | Waypost | before (baseline) | before / Waypost |",
        "|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r['baseline_over_waypost']}x" if "baseline_over_waypost" in r else "-"
        lines.append(
            f"| {r['rows']:,} | {figure_cell(r, 'waypost')} "
            f"| {figure_cell(r, 'baseline')} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="row counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=1_000_000,
        help="the largest size the baseline is run at (it is slow)",
    )
    add_baseline_argument(parser)
    args = parser.parse_args()
    tree = checked_baseline_src(args.baseline_src)
    sizes = parse_sizes(args.sizes)
    results = []
    for size in sizes:
        result = measure(size, args.rounds, tree, args.baseline_max)
        print(json.dumps(result), flush=True)
        results.append(result)
    write_results("import", results, report(results))
    print(report(results))
    failed = [r["rows"] for r in results if r["rows"] >= 1_000_000 and not r["meets_target"]]
    if failed:
        print(f"FAIL: over {TARGET_SECONDS:.0f} s at {failed}")


if __name__ == "__main__":
    main()
