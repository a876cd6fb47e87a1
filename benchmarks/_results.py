"""What the size-by-size benchmarks share: reading ``--sizes`` and writing their results
(``benchmarks/results/NAME.json`` with the machine's facts, and ``NAME.md``, the snippet
``update_readme.py`` puts into docs/speed.md)."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def parse_sizes(text: str) -> list[int]:
    """``"1000,1000000"`` (commas or spaces) as the sizes to run."""
    return [int(size) for size in re.split(r"[,\s]+", text.strip()) if size]


def write_results(name: str, results: list[dict[str, Any]], markdown: str) -> None:
    """Write ``results`` (with the Python and CPU count) and their ``markdown`` snippet; nothing
    with ``WAYPOST_BENCH_NO_WRITE=1`` (the suite's runs at tiny sizes, tests/test_benchmarks.py)."""
    if os.environ.get("WAYPOST_BENCH_NO_WRITE") == "1":
        return
    RESULTS.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "cpus": os.cpu_count()}
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown)
