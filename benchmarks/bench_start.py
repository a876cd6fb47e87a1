"""Benchmark of starting up: seconds from the start of ``waypost serve rules.csv`` to its first
answer, against nginx's with the same rules as a ``map``, in the same rounds.

Run it with ``python benchmarks/bench_start.py`` (about a minute) or ``--sizes 1000 --rounds 1``
(seconds). It prints a table and writes ``benchmarks/results/start.json`` and ``start.md``.

The issue's target (#20): with 1,000,000 CSV rules, the first answer no later than nginx's. The
rules and nginx's configuration are bench_server.py's (``/p/<i>`` -> ``/n/<i>``, 301). Each
round starts nginx, then Waypost (one worker each), and asks each for ``/p/7`` on a new
connection every 20 ms from the moment its process starts until a 301 comes back; a refused
connection is asked again (the port refuses connections until the rules are loaded). The
figure is the median of the rounds, and the ratio the median of the round-by-round ratios.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import parse_sizes, write_results
from bench_server import NGINX_CONF, _command, _free_port, prepare


def first_answer(command: list[str], port: int, timeout: float = 300) -> float:
    """Seconds from starting ``command`` until ``GET /p/7`` on ``port`` gets a 301."""
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                    sock.sendall(b"GET /p/7 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 301"):
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit(f"{command[0]} did not answer within {timeout:.0f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(size: int, rounds: int, tmp: Path) -> dict[str, Any]:
    nginx_runs: list[float] = []
    waypost_runs: list[float] = []
    for _ in range(rounds):
        port = _free_port()
        conf = tmp / f"nginx-{size}.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, size=size, port=port))
        nginx_runs.append(first_answer(["nginx", "-c", str(conf), "-p", str(tmp)], port))
        port = _free_port()
        command = _command("waypost", port, tmp / f"rules-{size}.csv", tmp, size)
        waypost_runs.append(first_answer(command, port))
        print(
            f"  {size:>9,} rules: nginx {nginx_runs[-1]:.2f} s, waypost {waypost_runs[-1]:.2f} s",
            flush=True,
        )
    ratio = statistics.median(w / n for w, n in zip(waypost_runs, nginx_runs, strict=True))
    return {
        "rules": size,
        "nginx_s": round(statistics.median(nginx_runs), 2),
        "waypost_s": round(statistics.median(waypost_runs), 2),
        "nginx_runs": [round(x, 2) for x in nginx_runs],
        "waypost_runs": [round(x, 2) for x in waypost_runs],
        "ratio": round(ratio, 3),
        "meets_target": ratio <= 1.0,
    }


def markdown(results: list[dict[str, Any]], rounds: int) -> str:
    lines = [
        "### Starting up (`benchmarks/bench_start.py`)",
        "",
        f"Seconds from the start of the process to its first answer (a 301), median of {rounds}"
        " rounds, nginx and `waypost serve rules.csv` with the same rules, one worker each; the"
        " ratio is the median of the round-by-round ratios (target: at most 1 at a million"
        " rules).",
        "",
        "| rules | nginx | Waypost | Waypost / nginx |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        lines.append(
            f"| {row['rules']:,} | {row['nginx_s']:.2f} s | {row['waypost_s']:.2f} s "
            f"| {row['ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    args = parser.parse_args()
    sizes = parse_sizes(args.sizes)
    with tempfile.TemporaryDirectory(prefix="waypost-start-") as name:
        tmp = Path(name)
        prepare(tmp, sizes, distinct=10)
        results = [measure(size, args.rounds, tmp) for size in sizes]
    text = markdown(results, args.rounds)
    print(text)
    if not args.no_write:
        write_results("start", results, text)
    sys.exit(0)


if __name__ == "__main__":
    main()
