"""What the benchmarks of a whole command share (bench_import.py, bench_check.py): one run of
the command in a fresh process, on this tree or another (``_baseline.py``), reporting its CPU and
wall seconds and peak memory; the medians of the runs; and a table cell of them."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _baseline import tree_env


def run_worker(worker: str, args: list[str], tree: Path | None, name: str) -> dict[str, Any]:
    """Run ``python -c worker *args`` with the code of ``tree`` (None: this one); the JSON its
    last line prints (``cpu``, ``wall``, ``peak_mb``). Exits naming ``name`` when it fails."""
    out = subprocess.run(
        [sys.executable, "-c", worker, *args],
        capture_output=True,
        text=True,
        env=tree_env(tree),
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def median_figures(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each tree's median CPU and wall seconds and peak memory over its runs."""
    return {
        name: {
            "cpu": round(statistics.median(r["cpu"] for r in results), 1),
            "wall": round(statistics.median(r["wall"] for r in results), 1),
            "peak_mb": round(statistics.median(r["peak_mb"] for r in results)),
        }
        for name, results in runs.items()
    }


def with_baseline_ratio(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` with ``baseline_over_waypost`` (CPU) when its figures have a baseline."""
    figures = out["figures"]
    if "baseline" in figures:
        out["baseline_over_waypost"] = round(
            figures["baseline"]["cpu"] / figures["waypost"]["cpu"], 2
        )
    return out


def figure_cell(result: dict[str, Any], name: str) -> str:
    """``name``'s figures as a table cell ('-' when it did not run)."""
    figure = result["figures"].get(name)
    if figure is None:
        return "-"
    return f"{figure['cpu']} s ({figure['wall']} s wall), {figure['peak_mb']:,} MB"
