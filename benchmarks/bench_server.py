"""Benchmark the standalone server against nginx and a hand-written Starlette app, with wrk.

    python benchmarks/bench_server.py [--duration 10] [--connections 10] [--repeat 3]
                                      [--pipeline 4] [--sizes 1000,1000000] [--quick]
                                      [--baseline-src DIR]

Every server answers the same exact redirects (``/p/<i>`` -> ``/n/<i>``, 301) on loopback; wrk
keeps its connections alive and takes each request's path from a file of paths drawn at random
across the whole rule set, formatted before its clock starts and sent ``--pipeline`` at a time
(see PIPELINE). The server runs on CPU 0 and wrk on CPU 1 (taskset), one worker each. Every run
records the share of a CPU the server (with its worker processes) and wrk used; a run where wrk
was busier than SATURATED is flagged, and a target it touches is UNSURE rather than a pass or a
failure: the load generator must never be what is measured.

- ``waypost``: ``waypost serve`` as shipped (its own httptools protocol on uvloop, with
  Waypost's direct answers from the request head), one worker, without the access log;
- ``uvicorn``: the same Waypost app as plain ASGI on uvicorn with httptools and uvloop, and
  ``granian-asgi``: the same on Granian (the shoot-out that chose the stack; Granian served
  Waypost until the direct answers);
- ``nginx``: a ``map`` of the redirects and ``return 301`` (the practical ceiling), access log off;
- ``starlette``: one ``Route`` per redirect, served by uvicorn (what a user would write by hand).
  Starlette matches routes one by one, so it is measured up to ``--starlette-max`` routes;
- ``waypost-db`` and ``waypost-stats``: ``waypost serve`` of the same rules from a SQLite rule
  store of their own (``--db``, seeded from the file), with analytics off (``--no-stats``) and
  on (``--stats`` as users run it: every hit counted, written to the store every 5 s or, when
  writing takes longer than the 2% budget allows, less often): what the statistics
  cost (#16: at most 5%);
- ``waypost-baseline`` (with ``--baseline-src DIR``): ``waypost serve`` from another source tree
  (the code before a change: ``git archive OLD src | tar -x -C DIR``, then build its compiled
  store with ``python setup.py build_ext --inplace`` there), so that what a change costs is
  measured in the same rounds as the change itself.

Every server is started first; then ``--repeat`` rounds give each one wrk run in turn, so that a
noisy neighbour on this shared machine slows the contenders of a round alike. A server's figure is
its best run (the one least disturbed) with the median beside it; each target's ratio is the
median of the ratios taken round by round, with the ratio of the best runs beside it.
Results go to benchmarks/results/server.json and server.md.

Needs ``wrk`` and ``nginx`` on PATH (Debian: ``apt-get install -y wrk nginx-light``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from _baseline import add_baseline_argument, checked_baseline_src, tree_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BIN = Path(sys.executable).parent
SERVER_CPU, LOAD_CPU = "0", "1"
PATHS_IN_FILE = 200_000
# Every request is formatted once, before wrk's clock starts (init runs in each thread before
# the run): formatting one per request in Lua left wrk at 96-97% of its CPU, so that it measured
# itself and not the server. The paths file is in random order already; each thread starts at a
# different place in it.
LUA = """
local requests = {}
local next_request = 1
function init(args)
  local depth = tonumber(os.getenv("WAYPOST_BENCH_PIPELINE")) or 1
  local batch = {}
  for line in io.lines(os.getenv("WAYPOST_BENCH_PATHS")) do
    batch[#batch + 1] = wrk.format("GET", line)
    if #batch == depth then
      requests[#requests + 1] = table.concat(batch)
      batch = {}
    end
  end
  next_request = (id or 0) * 7919 % #requests + 1
end
function setup(thread)
  thread:set("id", setup_count or 0)
  setup_count = (setup_count or 0) + 1
end
function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end
"""
# A load generator busier than this share of its CPU may be what limits the rate: its round is
# flagged (and the figures say so).
SATURATED = 0.90
# Requests wrk sends at once on each connection. One at a time, wrk on one CPU tops out near
# nginx's rate on the other (each request costs the client a write and a read, as it costs the
# server): nginx's figure was wrk's (wrk at 97-98% of its CPU). Four at a time, wrk stays under
# 80% while nginx reaches 90% of its own. The servers read several requests a read as well: that
# favours the server whose cost is mostly system calls, nginx, so the ratios are the harder ones.
PIPELINE = 4
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  map_hash_max_size 4194304;
  map_hash_bucket_size 128;
  map $uri $waypost_target {{
    include {tmp}/map-{size}.conf;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      if ($waypost_target) {{ return 301 $waypost_target; }}
      return 404;
    }}
  }}
}}
"""


# -- apps for the ASGI servers (imported by uvicorn / granian with --factory) ----------------


def waypost_asgi() -> Any:
    """The Waypost ASGI app for the rules in $WAYPOST_BENCH_RULES (no access log, no reload)."""
    from waypost.engine import Engine
    from waypost.server.app import WaypostApp
    from waypost.server.config import Settings

    engine = Engine.from_file(os.environ["WAYPOST_BENCH_RULES"])
    return WaypostApp(engine, Settings(access_log=False, reload_interval=0))


def starlette_app() -> Any:
    """A Starlette app with one route per redirect, as a user would write by hand."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    def make(target: str) -> Any:
        async def endpoint(request: Any) -> RedirectResponse:
            return RedirectResponse(target, status_code=301)

        return endpoint

    size = int(os.environ["WAYPOST_BENCH_SIZE"])
    return Starlette(routes=[Route(f"/p/{i}", make(f"/n/{i}")) for i in range(size)])


# -- running ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /p/0 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 301"):
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _ms(value: float | None) -> str:
    """A p99 as the tables show it ('n/a' when wrk recorded none)."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f} ms"


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user and system) used so far by process ``pid`` and its live descendants
    (``waypost serve`` answers from a worker process of its own)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _wrk(
    port: int, args: argparse.Namespace, env: dict[str, str], server_pid: int
) -> dict[str, float]:
    """One wrk run: its figures, and the share of a CPU the server and wrk each used."""
    server_before = _tree_cpu(server_pid)
    load_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CPU,
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            env["WAYPOST_BENCH_LUA"],
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=args.duration + 60,
        check=True,
    ).stdout
    elapsed = time.monotonic() - started
    load_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = (_tree_cpu(server_pid) - server_before) / elapsed
    # wrk's reading of the paths file (before its clock starts) is counted in, so this share is
    # a little high: a flag it raises errs on the safe side.
    load_cpu = (
        load_after.ru_utime + load_after.ru_stime - load_before.ru_utime - load_before.ru_stime
    ) / elapsed
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # The line of wrk's latency distribution (a '99%' elsewhere, such as the end of a
    # '+/- Stdev' like '72.99%', is not it).
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    if p99_ms == 0.0:
        # wrk recorded no latency for the run (it happens with pipelined requests): unknown,
        # not zero.
        p99_ms = float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p99_ms": p99_ms,
        "bad_responses": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors and "timeout 0" not in errors.group(0) else 0.0,
        "server_cpu": round(server_cpu, 3),
        "load_cpu": round(load_cpu, 3),
    }


def _command(name: str, port: int, rules: Path, tmp: Path, size: int) -> list[str]:
    python = str(BIN / "python")
    bench_dir = str(ROOT / "benchmarks")
    if name in ("waypost", "waypost-baseline", "waypost-db", "waypost-stats"):
        command = [
            python,
            "-m",
            "waypost",
            "serve",
            str(rules),
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        if name in ("waypost-db", "waypost-stats"):
            # The same rules from a store of their own (seeded from the file when the server
            # starts), with statistics off and on: what counting every hit costs.
            command += ["--db", f"sqlite:///{tmp / f'{name}-{size}.db'}"]
            command += ["--stats"] if name == "waypost-stats" else ["--no-stats"]
        return command
    if name == "granian-asgi":
        return [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--working-dir",
            bench_dir,
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "bench_server:waypost_asgi",
        ]
    if name in ("uvicorn", "starlette"):
        factory = "bench_server:waypost_asgi" if name == "uvicorn" else "bench_server:starlette_app"
        return [
            str(BIN / "uvicorn"),
            "--factory",
            "--app-dir",
            bench_dir,
            "--port",
            str(port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
            factory,
        ]
    if name == "nginx":
        conf = tmp / f"nginx-{size}.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, size=size, port=port))
        return ["nginx", "-c", str(conf), "-p", str(tmp)]
    raise ValueError(name)


class Contender:
    """One server running with one rule-set size, measured in rounds with the others."""

    def __init__(
        self, name: str, size: int, tmp: Path, baseline_src: Path | None = None, pipeline: int = 1
    ) -> None:
        self.name, self.size = name, size
        self.port = _free_port()
        rules = tmp / f"rules-{size}.csv"
        if name == "waypost-baseline" and baseline_src is None:
            raise ValueError("waypost-baseline needs --baseline-src")
        self.env = {
            **tree_env(baseline_src if name == "waypost-baseline" else None),
            "WAYPOST_BENCH_RULES": str(rules),
            "WAYPOST_BENCH_SIZE": str(size),
            "WAYPOST_BENCH_PATHS": str(tmp / f"paths-{size}.txt"),
            "WAYPOST_BENCH_LUA": str(tmp / "paths.lua"),
            "WAYPOST_BENCH_PIPELINE": str(pipeline),
        }
        self.log = (tmp / f"{name}-{size}.log").open("wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *_command(name, self.port, rules, tmp, size)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ready: float | None = None
        self.runs: list[dict[str, float]] = []

    def wait(self, timeout: float) -> bool:
        self.ready = _wait_ready(self.port, self.proc, timeout)
        if self.ready is None:
            print(f"  {self.name:13} {self.size:>9,} rules: did not start", flush=True)
        return self.ready is not None

    def run(self, args: argparse.Namespace) -> None:
        self.runs.append(_wrk(self.port, args, self.env, self.proc.pid))

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()

    def result(self, start_timeout: float) -> dict[str, Any]:
        if self.ready is None or not self.runs:
            reason = f"did not answer within {start_timeout:.0f} s of starting"
            return {"server": self.name, "rules": self.size, "measured": False, "reason": reason}
        best = max(self.runs, key=lambda r: r["rps"])
        return {
            "server": self.name,
            "rules": self.size,
            "measured": True,
            "rps": round(best["rps"], 1),
            "median_rps": round(statistics.median(r["rps"] for r in self.runs), 1),
            "p99_ms": None if math.isnan(best["p99_ms"]) else round(best["p99_ms"], 3),
            "runs_rps": [round(r["rps"], 1) for r in self.runs],
            "bad_responses": max(r["bad_responses"] for r in self.runs),
            "start_seconds": round(self.ready, 2),
            # The share of one CPU each side used in the best run, and every run's wrk share:
            # a run with wrk past SATURATED may have measured wrk.
            "server_cpu": best["server_cpu"],
            "load_cpu": best["load_cpu"],
            "runs_load_cpu": [r["load_cpu"] for r in self.runs],
            "saturated_runs": sum(1 for r in self.runs if r["load_cpu"] >= SATURATED),
        }


def measure_all(
    plan: list[tuple[str, int]], tmp: Path, args: argparse.Namespace, start_timeout: float
) -> list[dict[str, Any]]:
    """Start every (server, size) at once, then run ``args.repeat`` rounds in which each gets one
    wrk run in turn: a noisy neighbour then slows the contenders of a round alike, and the
    ratios between them are taken round by round (see verdicts())."""
    contenders: list[Contender] = []
    try:
        for name, size in plan:
            contenders.append(Contender(name, size, tmp, args.baseline_src, args.pipeline))
            # One at a time: a million-rule server loads faster without another beside it.
            contenders[-1].wait(start_timeout)
        ready = [c for c in contenders if c.ready is not None]
        for round_number in range(args.repeat):
            for contender in ready:
                contender.run(args)
            figures = ", ".join(
                f"{c.name} {c.size:,}: {c.runs[-1]['rps']:,.0f} (server "
                f"{c.runs[-1]['server_cpu']:.0%}, wrk {c.runs[-1]['load_cpu']:.0%}"
                + (", wrk SATURATED" if c.runs[-1]["load_cpu"] >= SATURATED else "")
                + ")"
                for c in ready
                if c.runs
            )
            print(f"  round {round_number + 1}/{args.repeat}: {figures}", flush=True)
    finally:
        for contender in contenders:
            contender.stop()
    results = [c.result(start_timeout) for c in contenders]
    for row in results:
        if row["measured"]:
            print(
                f"  {row['server']:13} {row['rules']:>9,} rules: best {row['rps']:>9,.0f} req/s,"
                f" median {row['median_rps']:,.0f}, p99 {_ms(row['p99_ms'])}, CPU server "
                f"{row['server_cpu']:.0%} wrk {row['load_cpu']:.0%}"
                + (
                    f" ({row['saturated_runs']} runs with wrk saturated)"
                    if row["saturated_runs"]
                    else ""
                ),
                flush=True,
            )
    return results


def prepare(tmp: Path, sizes: list[int], distinct: int = PATHS_IN_FILE) -> None:
    """Rules (CSV), nginx maps and path files for each size, and the wrk script."""
    rng = random.Random(42)
    (tmp / "paths.lua").write_text(LUA)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / name).mkdir(exist_ok=True)
    for size in sizes:
        with (
            (tmp / f"rules-{size}.csv").open("w") as rules,
            (tmp / f"map-{size}.conf").open("w") as nginx_map,
        ):
            rules.write("from,to,status\n")
            for i in range(size):
                rules.write(f"/p/{i},/n/{i},301\n")
                nginx_map.write(f"/p/{i} /n/{i};\n")
        paths = [f"/p/{rng.randrange(size)}" for _ in range(distinct)]
        (tmp / f"paths-{size}.txt").write_text("\n".join(paths) + "\n")


def _get(results: list[dict[str, Any]], server: str, size: int) -> dict[str, Any] | None:
    for row in results:
        if row["server"] == server and row["rules"] == size and row.get("measured"):
            return row
    return None


def _paired(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """``a`` over ``b``: the median of the round-by-round ratios, and the ratio of the bests."""
    rounds = [x / y for x, y in zip(a["runs_rps"], b["runs_rps"], strict=False)]
    return statistics.median(rounds), a["rps"] / b["rps"]


def verdicts(results: list[dict[str, Any]], small: int, large: int) -> list[dict[str, Any]]:
    """The three targets, each with its ratio and PASS/FAIL.

    The verdict reads the median of the ratios taken round by round (the two contenders ran
    one after the other, seconds apart); the ratio of the best runs is shown beside it."""
    out: list[dict[str, Any]] = []

    def add(
        name: str, pair: tuple[float, float], need: float, *rows: dict[str, Any], most: bool = False
    ) -> None:
        ratio, best = pair
        met = ratio <= need if most else ratio >= need
        # A figure wrk may have limited proves nothing either way.
        saturated = any(row.get("saturated_runs") for row in rows)
        out.append(
            {
                "target": name,
                "ratio": round(ratio, 3),
                "best_ratio": round(best, 3),
                "need": f"{'<=' if most else '>='} {need:g}",
                "verdict": "UNSURE (wrk saturated)" if saturated else ("PASS" if met else "FAIL"),
            }
        )

    waypost = _get(results, "waypost", small)
    starlette = _get(results, "starlette", small)
    waypost_large = _get(results, "waypost", large)
    for size in dict.fromkeys((small, large)):
        waypost_n, nginx_n = _get(results, "waypost", size), _get(results, "nginx", size)
        if waypost_n and nginx_n:
            # #20: one worker at half of nginx's rate with one worker, p99 within 2.5x.
            add(
                f"waypost vs nginx, {size:,} rules",
                _paired(waypost_n, nginx_n),
                0.5,
                waypost_n,
                nginx_n,
            )
            if waypost_n["p99_ms"] and nginx_n["p99_ms"]:  # (None: wrk recorded none)
                add(
                    f"waypost p99 / nginx p99, {size:,} rules",
                    (waypost_n["p99_ms"] / nginx_n["p99_ms"],) * 2,
                    2.5,
                    waypost_n,
                    nginx_n,
                    most=True,
                )
    if waypost and starlette:
        add(f"waypost vs Starlette, {small:,} rules", _paired(waypost, starlette), 3, waypost)
    if waypost and waypost_large and large != small:
        add(
            f"waypost {large:,} vs {small:,} rules",
            _paired(waypost_large, waypost),
            0.9,
            waypost_large,
            waypost,
        )
    for size in dict.fromkeys((small, large)):
        counting, not_counting = (
            _get(results, "waypost-stats", size),
            _get(results, "waypost-db", size),
        )
        if counting and not_counting:
            # #16: statistics on cost at most 5% of the rate with them off.
            add(
                f"waypost stats on vs off, {size:,} rules",
                _paired(counting, not_counting),
                0.95,
                counting,
                not_counting,
            )
    for size in dict.fromkeys((small, large)):
        waypost_n, before = _get(results, "waypost", size), _get(results, "waypost-baseline", size)
        if waypost_n and before:
            # A change may cost a little; more than 5% of the rate needs a reason.
            add(
                f"waypost vs its baseline, {size:,} rules",
                _paired(waypost_n, before),
                0.95,
                waypost_n,
                before,
            )
    return out


def markdown(
    results: list[dict[str, Any]], targets: list[dict[str, Any]], meta: dict[str, Any]
) -> str:
    sizes = sorted({row["rules"] for row in results})
    servers = list(dict.fromkeys(row["server"] for row in results))
    lines = [
        f"wrk on loopback, keep-alive, {meta['connections']} connections, {meta['duration']} s per"
        f" run; every server started at once, then {meta['repeat']} rounds of one run each in"
        " turn; server on CPU 0, wrk on CPU 1; one worker each; each request's path drawn at"
        f" random from {meta['distinct_paths']:,} paths spread across the whole rule set."
        " Requests/s of the best run (median of the runs), p99 of the best run, and the share"
        " of one CPU the server and wrk used in it (wrk formats every request before its clock"
        f" starts; a run with wrk at {SATURATED:.0%} or more is flagged: it may measure wrk).",
        "",
        "| server | " + " | ".join(f"{size:,} rules" for size in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for server in servers:
        cells = []
        for size in sizes:
            row = next((r for r in results if r["server"] == server and r["rules"] == size), None)
            if row is None:
                cells.append("not run")
            elif not row.get("measured"):
                cells.append(f"not measured: {row['reason']}")
            else:
                cells.append(
                    f"{row['rps']:,.0f} ({row['median_rps']:,.0f}), p99 {_ms(row['p99_ms'])}, "
                    f"CPU {row['server_cpu']:.0%} / wrk {row['load_cpu']:.0%}"
                    + (" (wrk saturated)" if row.get("saturated_runs") else "")
                )
        lines.append(f"| {server} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| target | ratio (median of rounds) | ratio of the best runs | needed | result |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for target in targets:
        lines.append(
            f"| {target['target']} | {target['ratio']:.2f} | {target['best_ratio']:.2f} "
            f"| {target['need']} | {target['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--pipeline",
        type=int,
        default=PIPELINE,
        help="requests wrk sends at once on a connection (HTTP/1.1 pipelining)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="rounds: wrk runs per server")
    parser.add_argument(
        "--distinct-paths",
        type=int,
        default=PATHS_IN_FILE,
        help="how many paths wrk draws from (spread across the whole rule set)",
    )
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument(
        "--starlette-max", type=int, default=10_000, help="most routes given to Starlette"
    )
    parser.add_argument(
        "--servers",
        default="waypost,uvicorn,granian-asgi,nginx,starlette,waypost-db,waypost-stats",
        help="which to run",
    )
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 repeat, 1,000 rules")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    add_baseline_argument(parser)
    args = parser.parse_args()
    args.baseline_src = checked_baseline_src(args.baseline_src)
    if args.baseline_src is not None and "waypost-baseline" not in args.servers.split(","):
        args.servers += ",waypost-baseline"
    if args.quick:
        args.duration, args.repeat, args.sizes = 3, 1, "1000"
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install -y wrk nginx-light)")
    sizes = [int(s) for s in args.sizes.split(",")]
    servers = args.servers.split(",")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="waypost-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"preparing rules for {', '.join(f'{s:,}' for s in sizes)} ...", flush=True)
        prepare(tmp, sizes, args.distinct_paths)
        plan: list[tuple[str, int]] = []
        for size in sizes:
            for name in servers:
                if name == "starlette" and size > args.starlette_max:
                    reason = (
                        f"Starlette tries routes one by one; measured up to {args.starlette_max:,}"
                    )
                    results.append(
                        {"server": name, "rules": size, "measured": False, "reason": reason}
                    )
                    print(f"  {name:13} {size:>9,} rules: not measured ({reason})", flush=True)
                    continue
                plan.append((name, size))
        extra = args.starlette_max
        if "starlette" in servers and max(sizes) > extra >= min(sizes) and extra not in sizes:
            prepare(tmp, [extra], args.distinct_paths)
            plan.append(("starlette", extra))
        # The --db contenders seed a store of their own first (a million rules: a minute or two,
        # more on a busy machine: 300 s ran out once).
        results.extend(measure_all(plan, tmp, args, start_timeout=900))
    small, large = min(sizes), max(sizes)
    targets = verdicts(results, small, large)
    meta = {
        "duration": args.duration,
        "connections": args.connections,
        "repeat": args.repeat,
        "distinct_paths": args.distinct_paths,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    text = markdown(results, targets, meta)
    print()
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "server.json").write_text(
            json.dumps({"meta": meta, "results": results, "targets": targets}, indent=2) + "\n"
        )
        (RESULTS / "server.md").write_text(text)


if __name__ == "__main__":
    main()
