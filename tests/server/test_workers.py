"""Several workers: one socket shared by forked workers, a dead worker replaced, a clean stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from serving import start_server

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"


def _pids(base: str, tries: int = 40) -> set[int]:
    pids = set()
    with httpx.Client(base_url=base, timeout=2) as client:
        for _ in range(tries):
            # A new connection each time, so that the kernel may hand it to either worker.
            response = client.get("/_waypost/health", headers={"Connection": "close"})
            pids.add(response.json()["pid"])
    return pids


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(module_tmp: Path) -> None:
    served = start_server(
        EXAMPLE, "--workers", "2", "--no-access-log", "--public-health-details", tmp=module_tmp
    )
    try:
        deadline = time.monotonic() + 10
        pids = _pids(served.base)
        while len(pids) < 2 and time.monotonic() < deadline:
            pids |= _pids(served.base)
        assert len(pids) == 2, pids
        assert served.proc.pid not in pids  # the main process supervises, workers serve
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            seen = _pids(served.base, tries=10)
            assert httpx.get(served.base + "/old-page").status_code == 301
            if victim not in seen and len(seen | (pids - {victim})) > 1 and seen - pids:
                break
            assert time.monotonic() < deadline, f"no worker replaced {victim}: {seen}"
            time.sleep(0.1)
        assert "starting another" in served.stderr()
    finally:
        code = served.stop()
    assert code == 0, served.stderr()
