"""Benchmark of the admin page's rules list: how long a page takes with a million rules in the
store, against the JSON API's list of the same rules in the same run.

Run it with ``python benchmarks/bench_admin.py`` (a few minutes: seeding a million rules takes
most of it) or ``--sizes 1000`` (seconds). It prints a table, writes the figures to
``benchmarks/results/admin.json`` and a README snippet to ``benchmarks/results/admin.md``.

The issue's target (#17): with a million rules in the store the rules list answers in under
300 ms per page. A real ``waypost serve --db`` serves a SQLite store seeded with the rules
(literal redirects, one in ten a pattern, one in fifty with a name and a note, hits recorded for
one in a hundred); one client asks, one request at a time, for each kind of page in turn, round
after round, and the figure is the median time of each kind:

- ``first``: ``/_waypost/rules``, the first 50 rules with their hits;
- ``deep``: a page past the middle, by the keyset cursor its previous page gave;
- ``prefix``: rules whose ``from`` starts with a prefix;
- ``search``: rules holding a word anywhere (target, name, note), a common one;
- ``rare``: the same with a word one rule in fifty thousand holds: a scan of every rule, the
  worst case of a search;
- ``status``: rules answering 410, which none does: the worst case of the status filter;
- ``api``: ``/_waypost/api/rules?limit=50``, the JSON API's first page (the baseline: what the
  HTML costs on top of the same read).

The client's own time is in the figures: one sequential client, far from saturating anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _results import parse_sizes, write_results

TARGET_MS = 300.0
KINDS = ("first", "deep", "prefix", "search", "rare", "status", "api")


def rules(count: int) -> list[dict[str, Any]]:
    """``count`` rules: literal redirects, one in ten a pattern, one in fifty named."""
    out: list[dict[str, Any]] = []
    for n in range(count):
        if n % 10 == 9:
            rule: dict[str, Any] = {"from": f"/section{n}/<path:rest>", "to": f"/s{n}/{{rest}}"}
        else:
            rule = {"from": f"/old/{n}", "to": f"/new/{n}"}
        if n % 50 == 0:
            rule["name"] = f"rule-{n}"
            rule["note"] = f"moved in migration batch {n // 1000}"
        out.append(rule)
    return out


def seed(db: str, count: int) -> str:
    """A store at ``db`` holding ``count`` rules and hits for some; the admin key."""
    from waypost.store import open_store
    from waypost.store.stats import RuleHitsDelta

    store = open_store(db)
    try:
        store.replace_rules(rules(count), message="benchmark rules")
        now = time.time()
        ids = store.load_snapshot().rule_ids
        store.add_rule_hits(
            [RuleHitsDelta(ids[i], 1 + i % 7, now, now, {}) for i in range(0, count, 100)]
        )
        _, key = store.create_key("admin", note="benchmark")
    finally:
        store.close()
    return key


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(db: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "waypost", "serve", "--db", db, "--port", str(port),
         "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            if httpx.get(base + "/_waypost/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the server did not start")
        time.sleep(0.2)


def measure(count: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'admin.db'}"
        started = time.perf_counter()
        key = seed(db, count)
        seeded = time.perf_counter() - started
        proc, base = serve(db)
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/html"}
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                deep_cursor = _cursor_near(Path(tmp) / "admin.db", count // 2)
                urls = {
                    "first": "/_waypost/rules",
                    "deep": f"/_waypost/rules?cursor={deep_cursor}",
                    "prefix": f"/_waypost/rules?prefix=/old/{count // 3}",
                    "search": "/_waypost/rules?q=batch",
                    "rare": f"/_waypost/rules?q=batch+{count // 1000 - 1}",
                    "status": "/_waypost/rules?status=410",
                    "api": "/_waypost/api/rules?limit=50",
                }
                for url in urls.values():  # warm up, and check each answers
                    answer = client.get(url)
                    answer.raise_for_status()
                times: dict[str, list[float]] = {kind: [] for kind in KINDS}
                for _ in range(rounds):
                    for kind in KINDS:
                        start = time.perf_counter()
                        client.get(urls[kind]).raise_for_status()
                        times[kind].append((time.perf_counter() - start) * 1000)
        finally:
            proc.terminate()
            proc.wait(30)
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    return {
        "rules": count,
        "seconds_to_seed": round(seeded, 1),
        "median_ms": {k: round(v, 1) for k, v in medians.items()},
        "html_over_api": round(medians["first"] / medians["api"], 2),
        "meets_target": all(medians[k] < TARGET_MS for k in KINDS),
    }


def _cursor_near(path: Path, position: int) -> str:
    """The keyset cursor of the page that starts after the rule at ``position`` (the cursor a
    person paging there would have been given)."""
    import sqlite3

    from waypost.store._sql_rules import _cursor

    with sqlite3.connect(path) as conn:
        (sort_key,) = conn.execute(
            "SELECT sort_key FROM waypost_rules ORDER BY sort_key LIMIT 1 OFFSET ?", (position,)
        ).fetchone()
    return _cursor(int(sort_key))


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "### Admin page: the rules list (`benchmarks/bench_admin.py`)",
        "",
        f"Median milliseconds per page over a real `waypost serve --db` (SQLite), one client; "
        f"target: under {TARGET_MS:.0f} ms with a million rules. A rare word and a status no "
        "rule has are the worst cases: they scan every rule.",
        "",
        "| rules | first page | deep page | prefix | search | rare word | status 410 | "
        "API page (baseline) | HTML / API |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r["median_ms"]
        lines.append(
            f"| {r['rules']:,} | {m['first']} | {m['deep']} | {m['prefix']} | {m['search']} | "
            f"{m['rare']} | {m['status']} | {m['api']} | {r['html_over_api']}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,1000000", help="rule counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    sizes = parse_sizes(args.sizes)
    results = []
    for size in sizes:
        result = measure(size, args.rounds)
        print(json.dumps(result), flush=True)
        results.append(result)
    write_results("admin", results, report(results))
    print(report(results))
    failed = [r["rules"] for r in results if r["rules"] >= 1_000_000 and not r["meets_target"]]
    if failed:
        print(f"FAIL: a page took {TARGET_MS:.0f} ms or more at {failed}")


if __name__ == "__main__":
    main()
