"""Copy the latest benchmark results (benchmarks/results/*.md) into docs/speed.md.

Run after ``bench_engine.py``, ``bench_server.py``, ``bench_start.py``, ``bench_middleware.py``,
``bench_guards.py``, ``bench_admin.py``, ``bench_load.py``, ``bench_import.py`` and
``bench_check.py``; ``make bench`` does all of them.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)", re.DOTALL)


def main() -> None:
    parts = [
        (RESULTS / name).read_text(encoding="utf-8").strip()
        for name in (
            "engine.md",
            "server.md",
            "start.md",
            "middleware.md",
            "guards.md",
            "admin.md",
            "load.md",
            "import.md",
            "check.md",
        )
        if (RESULTS / name).exists()
    ]
    readme = ROOT / "docs" / "speed.md"
    text = readme.read_text(encoding="utf-8")
    body = "\n\n".join(parts) + "\n"
    updated, count = BLOCK.subn(lambda m: m.group(1) + body + m.group(2), text)
    if count != 1:
        raise SystemExit("docs/speed.md has no <!-- bench:start --> ... <!-- bench:end --> block")
    readme.write_text(updated, encoding="utf-8")
    print(f"docs/speed.md: updated from {len(parts)} result files")


if __name__ == "__main__":
    main()
