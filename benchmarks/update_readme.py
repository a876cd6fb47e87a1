"""Copy the latest benchmark results (benchmarks/results/*.md) into the README's Speed section.

Run after ``bench_engine.py``, ``bench_server.py`` and ``bench_guards.py``; ``make bench`` does
all of them.
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
        for name in ("engine.md", "server.md", "guards.md", "admin.md")
        if (RESULTS / name).exists()
    ]
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    body = "\n\n".join(parts) + "\n"
    updated, count = BLOCK.subn(lambda m: m.group(1) + body + m.group(2), text)
    if count != 1:
        raise SystemExit("README.md has no <!-- bench:start --> ... <!-- bench:end --> block")
    readme.write_text(updated, encoding="utf-8")
    print(f"README.md: Speed section updated from {len(parts)} result files")


if __name__ == "__main__":
    main()
