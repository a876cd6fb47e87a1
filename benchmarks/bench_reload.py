"""How long a hot reload takes under load: `waypost serve` with wrk on loopback, file rewritten.

    python benchmarks/bench_reload.py [--sizes 2000,10000] [--workers 2] [--rounds 6] [--pin]
                                      [--baseline-src DIR]

For each size, a YAML rules file of that many rules (nine in ten exact redirects, one in ten a
pattern, one in twenty-five with a condition) is served by ``waypost serve --workers W``, wrk keeps
``--connections`` connections busy on an exact redirect, and the file is rewritten every two
seconds with new targets. Two figures per rewrite:

- ``load``: what each worker logs as the time its reload took (reading, parsing, compiling, the
  guard), while it serves, and the CPU time of it (the rest is waiting for the CPU and the GIL);
- ``live``: from the write until every worker's ``/_waypost/health`` reports the new revision
  (asked every 20 ms on a keep-alive connection to each worker): the poll, the wait until the
  file stops changing, the load, and the probing.

The machine is assumed to be shared and noisy: figures are the median and the worst of the
rounds, and wrk's own count of errors and non-3xx answers is printed (it must be 0). With
``--baseline-src`` the same rounds are first run on another source tree (the code before a
change), in the same run. ``--pin`` runs the server on CPU 0 and wrk on CPU 1. Needs ``wrk``.
The figures go to the README by hand ("Reload under load").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _baseline import add_baseline_argument, checked_baseline_src, tree_env

from waypost.follow.reloading import file_revision

ROOT = Path(__file__).resolve().parents[1]
_LOAD_LOG = re.compile(
    r"reloaded .*?: (\d+) rules, revision (\w+) \((\d+) ms(?:, (\d+) ms of CPU)?\)"
)


def rules_yaml(count: int, tag: str) -> str:
    """A rules file of ``count`` rules whose targets carry ``tag`` (so every version differs)."""
    lines = ["defaults:", "  status: 301", "rules:"]
    for i in range(count):
        if i % 10 == 9:
            lines += [
                f"  - from: /p{i}/<int:year>/<slug>",
                f"    to: /n{i}/{{year}}/{{slug}}?v={tag}",
            ]
        elif i % 25 == 7:
            lines += [
                f"  - from: /c{i}",
                "    when: {language: [de]}",
                f"    to: /de/c{i}?v={tag}",
                "    status: 302",
            ]
        else:
            lines += [f"  - from: /old/{i}/some-page-{i}", f"    to: /new/{i}/page?v={tag}"]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker_clients(base: str, workers: int) -> dict[int, httpx.Client]:
    """One keep-alive connection to each worker (the kernel hands each new connection to one of
    them): a probe is then one request per worker, not a series of fresh connections."""
    clients: dict[int, httpx.Client] = {}
    for _ in range(workers * 50):
        client = httpx.Client(base_url=base, limits=httpx.Limits(max_connections=1), timeout=5)
        pid = int(client.get("/_waypost/health").json()["pid"])
        if pid in clients:
            client.close()
            continue
        clients[pid] = client
        if len(clients) == workers:
            return clients
    raise SystemExit(f"could not reach all {workers} workers")


def _revisions(clients: dict[int, httpx.Client]) -> dict[int, str]:
    return {
        pid: str(client.get("/_waypost/health").json()["revision"])
        for pid, client in clients.items()
    }


def measure(
    size: int,
    workers: int,
    rounds: int,
    connections: int,
    *,
    pin: bool = False,
    tree: Path | None = None,
) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="waypost-bench-reload-"))
    rules = tmp / "rules.yaml"
    rules.write_text(rules_yaml(size, "0"), encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    err = (tmp / "serve.err").open("wb")
    pin_server = ["taskset", "-c", "0"] if pin else []
    pin_wrk = ["taskset", "-c", "1"] if pin else []
    server = subprocess.Popen(
        [
            *pin_server,
            sys.executable,
            "-m",
            "waypost",
            "serve",
            str(rules),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--public-health-details",
        ],
        stdout=subprocess.DEVNULL,
        stderr=err,
        env=tree_env(tree),
    )
    wrk: subprocess.Popen[bytes] | None = None
    clients: dict[int, httpx.Client] = {}
    live: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/_waypost/health", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((tmp / "serve.err").read_text()) from None
                time.sleep(0.1)
        duration = 3600  # stopped with SIGINT once the rounds are done (wrk then reports)
        if connections:
            wrk = subprocess.Popen(
                [
                    *pin_wrk,
                    "wrk",
                    "-t1",
                    f"-c{connections}",
                    f"-d{duration}s",
                    f"{base}/old/1/some-page-1",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        time.sleep(1.5)
        clients = _worker_clients(base, workers)
        for number in range(1, rounds + 1):
            text = rules_yaml(size, str(number))
            started = time.monotonic()
            rules.write_text(text, encoding="utf-8")
            want = file_revision(rules)
            while True:
                seen = _revisions(clients)
                if len(seen) == workers and set(seen.values()) == {want}:
                    live.append(time.monotonic() - started)
                    break
                if time.monotonic() - started > 120:
                    raise SystemExit(f"round {number}: not every worker reloaded: {seen}")
                time.sleep(0.02)
            time.sleep(max(0.0, 2 - (time.monotonic() - started)))
        if wrk is not None:
            wrk.send_signal(signal.SIGINT)
            out, _ = wrk.communicate(timeout=30)
            wrk = None
            report = out.decode()
            errors = re.search(r"Socket errors: (.*)", report)
            non3xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
            rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
            print(
                f"  wrk: {rate.group(1) if rate else '?'} requests/s, "
                f"socket errors: {errors.group(1) if errors else 'none'}, "
                f"non-2xx/3xx: {non3xx.group(1) if non3xx else 0}"
            )
    finally:
        for client in clients.values():
            client.close()
        if wrk is not None:
            wrk.kill()
            wrk.wait()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        err.close()
    log = (tmp / "serve.err").read_text()
    shutil.rmtree(tmp, ignore_errors=True)
    found = list(_LOAD_LOG.finditer(log))
    loads = [float(m.group(3)) / 1000 for m in found]
    cpu = [float(m.group(4)) / 1000 for m in found if m.group(4)]
    return {"load": loads, "cpu": cpu, "live": live}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--connections", type=int, default=50, help="wrk's connections; 0: no load (idle figures)"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="server on CPU 0, wrk on CPU 1 (taskset), as in bench_server.py",
    )
    add_baseline_argument(parser)
    args = parser.parse_args()
    baseline_src = checked_baseline_src(args.baseline_src)
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk on PATH (Debian: apt-get install -y wrk)")
    os.chdir(ROOT)
    print(f"{args.workers} worker(s), wrk -c{args.connections}, {os.cpu_count()} CPUs, shared")
    print(
        "| rules | code | reload in a worker (median / worst) | of which CPU (median) "
        "| live in every worker (median / worst) |"
    )
    print("| ---: | --- | ---: | ---: | ---: |")
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if baseline_src is not None:
        codes.insert(0, ("baseline", baseline_src))
    for size in (int(s) for s in args.sizes.split(",")):
        for label, tree in codes:
            figures = measure(
                size, args.workers, args.rounds, args.connections, pin=args.pin, tree=tree
            )
            load, live = (
                f"{statistics.median(v):.2f} s / {max(v):.2f} s" if v else "n/a"
                for v in (figures["load"], figures["live"])
            )
            cpu = f"{statistics.median(figures['cpu']):.2f} s" if figures["cpu"] else "n/a"
            print(f"| {size:,} | {label} | {load} | {cpu} | {live} |", flush=True)


if __name__ == "__main__":
    main()
