"""Benchmark of loading a large YAML rules file: the time and the peak memory of ``read_rules`` on
the file ``waypost db export`` writes for a large store, against the pure-Python parser in the
same run.

Run it with ``python benchmarks/bench_load.py`` (a few minutes) or ``--sizes 1000`` (seconds). It
prints a table, writes the figures to ``benchmarks/results/load.json`` and a README snippet to
``benchmarks/results/load.md``.

The issue's target (#19): a million-rule YAML file loads in under 30 s and 1.5 GB. The file is
what ``waypost db export`` writes (``dump_document``): literal redirects, one in ten a pattern,
one in twenty a 302, one in fifty with a name and a note. Each measurement is a fresh process
(its peak resident memory is the figure), one after the other, ``--rounds`` times; the figure is
the median. The ways to read it:

- ``waypost``: ``read_rules`` as shipped (libyaml's events, when PyYAML has libyaml);
- ``pure``: the same with PyYAML's pure-Python parser (the baseline; slow, so only up to
  ``--pure-max`` rules);
- ``libyaml``: ``yaml.load(text, Loader=yaml.CSafeLoader)`` alone, for reference: values, no
  positions and no rules (slower than the loader, which pauses the garbage collector and holds
  no tree of nodes);
- ``baseline``: ``read_rules`` of another source tree (``--baseline-src DIR``), when given (up to
  ``--pure-max`` rules too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _baseline import add_baseline_argument, checked_baseline_src, tree_env
from _results import parse_sizes, write_results

TARGET_SECONDS = 30.0
TARGET_MB = 1536.0

_WORKER = r"""
import json, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
import yaml
from waypost.rules import load
if mode == "pure":
    from waypost.rules import _yaml
    _yaml._FAST_LOADER = None
start = time.perf_counter()
if mode == "libyaml":
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle.read(), Loader=yaml.CSafeLoader)
    count, errors = len(document["rules"]), 0
else:
    ruleset, problems = load.read_rules(path)
    count, errors = len(ruleset.rules), len(problems)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "rules": count, "errors": errors}))
"""


def rules(count: int) -> list[dict[str, Any]]:
    """``count`` stored rules: literal redirects, one in ten a pattern, one in twenty a 302, one
    in fifty named with a note."""
    out: list[dict[str, Any]] = []
    for n in range(count):
        if n % 10 == 9:
            rule: dict[str, Any] = {"from": f"/section{n}/<path:rest>", "to": f"/s{n}/{{rest}}"}
        else:
            rule = {"from": f"/old/{n}", "to": f"/new/{n}"}
        if n % 20 == 3:
            rule["status"] = 302
        if n % 50 == 0:
            rule["name"] = f"rule-{n}"
            rule["note"] = f"moved in migration batch {n // 1000}"
        out.append(rule)
    return out


def write_export(path: Path, count: int) -> None:
    """The file ``waypost db export`` writes for a store holding ``rules(count)``."""
    from waypost.store.model import Snapshot
    from waypost.store.transfer import dump_document

    snapshot = Snapshot(revision=1, defaults={}, allowed_hosts=(), rules=tuple(rules(count)))
    path.write_text(dump_document(snapshot), encoding="utf-8")


def run(mode: str, path: Path, tree: Path | None) -> dict[str, Any]:
    worker_mode = "waypost" if mode == "baseline" else mode
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, worker_mode, str(path)],
        capture_output=True,
        text=True,
        env=tree_env(tree if mode == "baseline" else None),
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(count: int, rounds: int, pure_max: int, tree: Path | None) -> dict[str, Any]:
    modes = ["waypost", "libyaml"]
    if count <= pure_max:
        modes.append("pure")
        if tree is not None:
            modes.append("baseline")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.yaml"
        # In a process of its own: a child's peak memory starts at its parent's (Linux keeps
        # it across exec), and a million rules being dumped is two gigabytes.
        subprocess.run([sys.executable, __file__, "--write", str(count), str(path)], check=True)
        size_mb = path.stat().st_size / 1e6
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for _ in range(rounds):
            for mode in modes:  # interleaved: each round meets the same noise
                runs[mode].append(run(mode, path, tree))
    figures: dict[str, dict[str, Any]] = {}
    # Ratios from the unrounded medians: a tiny table loads in less than the 0.01 s shown.
    seconds = {
        mode: statistics.median(r["seconds"] for r in results) for mode, results in runs.items()
    }
    for mode, results in runs.items():
        figures[mode] = {
            "seconds": round(statistics.median(r["seconds"] for r in results), 2),
            "peak_mb": round(statistics.median(r["peak_mb"] for r in results)),
            "rules": results[0]["rules"],
            "errors": results[0]["errors"],
        }
    ours = figures["waypost"]
    out: dict[str, Any] = {
        "rules": count,
        "file_mb": round(size_mb, 1),
        "figures": figures,
        "meets_target": ours["seconds"] < TARGET_SECONDS
        and ours["peak_mb"] < TARGET_MB
        and ours["rules"] == count
        and ours["errors"] == 0,
    }
    for mode in ("pure", "baseline", "libyaml"):
        if mode in figures:
            ratio = seconds[mode] / seconds["waypost"] if seconds["waypost"] > 0 else None
            out[f"{mode}_over_waypost"] = None if ratio is None else round(ratio, 2)
    return out


def _cell(result: dict[str, Any], mode: str) -> str:
    figure = result["figures"].get(mode)
    if figure is None:
        return "-"
    return f"{figure['seconds']} s, {figure['peak_mb']:,} MB"


def report(results: list[dict[str, Any]], pure_max: int) -> str:
    with_baseline = any("baseline" in r["figures"] for r in results)
    lines = [
        "### Loading a large YAML file (`benchmarks/bench_load.py`)",
        "",
        "`read_rules` on the file `waypost db export` writes, in a fresh process: median seconds "
        f"and peak memory; target: a million rules in under {TARGET_SECONDS:.0f} s and "
        f"{TARGET_MB / 1024:.1f} GB. The baseline is PyYAML's pure-Python parser (run up to "
        f"{pure_max:,} rules); `yaml.load` with libyaml (values only: no positions, no rules, "
        "the garbage collector left on) is for reference.",
        "",
        "| rules | file | Waypost | pure-Python parser (baseline) | pure / Waypost | "
        + ("older tree | older / Waypost | " if with_baseline else "")
        + "libyaml `yaml.load` |",
        "|---:|---:|---:|---:|---:|" + ("---:|---:|" if with_baseline else "") + "---:|",
    ]
    for r in results:
        ratio = f"{r['pure_over_waypost']}x" if r.get("pure_over_waypost") is not None else "-"
        row = (
            f"| {r['rules']:,} | {r['file_mb']} MB | {_cell(r, 'waypost')} | {_cell(r, 'pure')} "
            f"| {ratio} | "
        )
        if with_baseline:
            older = (
                f"{r['baseline_over_waypost']}x"
                if r.get("baseline_over_waypost") is not None
                else "-"
            )
            row += f"{_cell(r, 'baseline')} | {older} | "
        lines.append(row + f"{_cell(r, 'libyaml')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="rule counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--pure-max",
        type=int,
        default=100_000,
        help="the largest size the baselines are run at (the pure-Python parser is slow, and "
        "an older tree may fail on large files)",
    )
    parser.add_argument("--write", nargs=2, metavar=("COUNT", "PATH"), help=argparse.SUPPRESS)
    add_baseline_argument(parser)
    args = parser.parse_args()
    if args.write:
        write_export(Path(args.write[1]), int(args.write[0]))
        return
    tree = checked_baseline_src(args.baseline_src)
    sizes = parse_sizes(args.sizes)
    results = []
    for size in sizes:
        result = measure(size, args.rounds, args.pure_max, tree)
        print(json.dumps(result), flush=True)
        results.append(result)
    write_results("load", results, report(results, args.pure_max))
    print(report(results, args.pure_max))
    failed = [r["rules"] for r in results if r["rules"] >= 1_000_000 and not r["meets_target"]]
    if failed:
        print(f"FAIL: over {TARGET_SECONDS:.0f} s or {TARGET_MB:.0f} MB at {failed}")


if __name__ == "__main__":
    main()
