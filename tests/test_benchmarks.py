"""The benchmarks run, at tiny sizes and without timing anything, so that they cannot rot
between the runs that measure (``make bench``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, *args],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WAYPOST_BENCH_NO_WRITE": "1"},  # results/ keeps the real runs'
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_engine_runs() -> None:
    out = _run("bench_engine.py", "--tiny")
    assert "faster than Werkzeug" in out and "dict.get" in out


def test_bench_guards_runs() -> None:
    out = _run("bench_guards.py", "--tiny")
    assert "session" in out and "api_key" in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install -y wrk)")
def test_bench_reload_runs() -> None:
    out = _run("bench_reload.py", "--sizes", "200", "--rounds", "1", "--workers", "1")
    assert "| 200 | this |" in out


@pytest.mark.skipif(
    shutil.which("wrk") is None or shutil.which("nginx") is None,
    reason="needs wrk and nginx (apt-get install -y wrk nginx-light)",
)
def test_bench_nginx_export_runs() -> None:
    out = _run("bench_nginx_export.py", "--rules", "200", "--seconds", "1")
    assert "export / baseline" in out


def test_bench_middleware_runs() -> None:
    out = _run("bench_middleware.py", "--rounds", "1", "--count", "20", "--no-write")
    assert "| flask |" in out and "| fastapi |" in out


@pytest.mark.skipif(
    shutil.which("wrk") is None or shutil.which("nginx") is None or shutil.which("taskset") is None,
    reason="needs wrk, nginx and taskset (apt-get install -y wrk nginx-light)",
)
def test_bench_server_runs_and_reports_both_sides_cpu() -> None:
    out = _run(
        "bench_server.py",
        "--servers",
        "waypost,nginx",
        "--sizes",
        "100",
        "--duration",
        "1",
        "--repeat",
        "1",
        "--distinct-paths",
        "1000",
        "--no-write",
    )
    assert "| waypost |" in out and "| nginx |" in out
    assert "CPU" in out and "wrk" in out


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="needs nginx (apt-get install -y nginx-light)"
)
def test_bench_start_runs() -> None:
    out = _run("bench_start.py", "--sizes", "100", "--rounds", "1", "--no-write")
    assert "| 100 |" in out


def test_bench_check_runs() -> None:
    out = _run("bench_check.py", "--sizes", "200", "--no-write")
    assert "| 200 | literal |" in out and "| 200 | mixed |" in out


@pytest.mark.parametrize(
    "args",
    [
        ["bench_import.py", "--sizes", "300"],
        ["bench_load.py", "--sizes", "300", "--pure-max", "300"],
        ["bench_admin.py", "--sizes", "300", "--rounds", "1"],
    ],
    ids=["import", "load", "admin"],
)
def test_the_size_by_size_benchmarks_run(args: list[str]) -> None:
    assert "| 300 |" in _run(*args)
