"""Benchmark of the nginx export: a real nginx serving 100,000 exported exact redirects.

Run it with ``python benchmarks/bench_nginx_export.py [--rules N] [--seconds S]`` (about half a
minute). It needs ``nginx`` and ``wrk`` on the PATH (or nginx in /usr/sbin) and two CPUs: nginx
(one worker) is pinned to CPU 0 and wrk to CPU 1 with ``taskset``, on loopback only.

Two configurations are served in the same run, so that the ratio says more than the figures on a
noisy machine: the export as Waypost writes it now (plain map keys, a hash lookup, checked for case
by ``if ($waypost_exact_301_path = $uri)``), and the baseline, the export as it was written before
(one map with an anchored regex key per path, ``~^/path/?$``, which nginx tries one by one).
Requests are random exact paths drawn across the whole rule set. Figures measured on 2 shared
cores (nginx 1.22, 100,000 rules, 3 s runs): about 190 requests/s for the baseline against
28,000-32,000 for the export (150-170x); with 1,000 rules, 8,600 against 30,800 (3.6x).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

from waypost.tools.formats import export_nginx

_CONFIG = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    map_hash_max_size 262144;
    map_hash_bucket_size 128;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{http}
    server {{
        listen 127.0.0.1:{port};
        absolute_redirect off;
{server}
        location / {{ return 200 "app"; }}
    }}
}}
"""

_WRK_SCRIPT = """\
local paths = {{{paths}}}
math.randomseed(7)
request = function()
    return wrk.format("GET", paths[math.random(#paths)])
end
"""


def _rules(count: int) -> list[dict[str, str]]:
    return [{"from": f"/old/section-{i % 97}/page-{i}", "to": f"/new/{i}"} for i in range(count)]


def _baseline(rules: list[dict[str, str]]) -> str:
    """The export as it was: one anchored, case-sensitive regex map key per exact path."""
    keys = "\n".join(f"    ~^{re.escape(r['from'])}/?$ {r['to']}$is_args$args;" for r in rules)
    return (
        f'map $uri $waypost_redirect_301 {{\n    default "";\n{keys}\n}}\n'
        "# -- in the server {} block --\n"
        "if ($waypost_redirect_301) {\n    return 301 $waypost_redirect_301;\n}\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_and_measure(
    name: str, export: str, paths: list[str], seconds: int, workdir: Path
) -> float:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = workdir / name
    tmp.mkdir()
    http, _, server = export.partition("# -- in the server {} block --")
    port = _free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(_CONFIG.format(tmp=tmp, port=port, http=http, server=server))
    started = time.monotonic()
    process = subprocess.Popen(
        ["taskset", "-c", "0", nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "e.log")],
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise SystemExit(f"nginx did not start: {stderr}") from None
                time.sleep(0.05)
        load = time.monotonic() - started
        check = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
             f"http://127.0.0.1:{port}{paths[0]}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        script = tmp / "paths.lua"
        script.write_text(_WRK_SCRIPT.format(paths=", ".join(f'"{p}"' for p in paths)))
        run = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(script),
             f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", run.stdout).group(1))  # type: ignore[union-attr]
        latency = re.search(r"Latency\s+(\S+)", run.stdout).group(1)  # type: ignore[union-attr]
        print(
            f"{name:<9} {rate:>12,.0f} req/s  latency {latency:>8}  nginx start {load:5.1f} s  "
            f"check {paths[0]} -> {check.stdout}"
        )
        return rate
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two CPUs: nginx on one, wrk on the other")
    rules = _rules(args.rules)
    started = time.monotonic()
    exported = export_nginx(rules)
    print(f"{args.rules:,} exact rules exported in {time.monotonic() - started:.1f} s")
    rng = random.Random(1)
    paths = [rules[rng.randrange(len(rules))]["from"] for _ in range(2000)]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        base = _serve_and_measure("baseline", _baseline(rules), paths, args.seconds, workdir)
        new = _serve_and_measure("export", exported.text, paths, args.seconds, workdir)
    print(f"export / baseline: {new / base:.1f}x")


if __name__ == "__main__":
    main()
