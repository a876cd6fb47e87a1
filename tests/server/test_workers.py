"""Several workers: one socket shared by forked workers, a dead worker replaced, a clean stop, and
no orphan left serving when the supervisor itself is killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._servers import running
from tests.server.serving import start_server
from waypost.engine import Engine
from waypost.server.app import WaypostApp
from waypost.server.worker import PARENT_EVERY, Worker

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


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (an exited process nobody has reaped yet does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_workers_exit_when_the_supervisor_is_killed(module_tmp: Path) -> None:
    """Issue #12: kill -9 of the supervisor left the workers serving and holding the port, so a
    restarted server failed with 'Address already in use'."""
    served = start_server(
        EXAMPLE, "--workers", "2", "--no-access-log", "--public-health-details", tmp=module_tmp
    )
    pids: set[int] = set()
    try:
        pids = _pids(served.base)
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            pids |= _pids(served.base)
        assert len(pids) == 2, pids
        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids), "the workers outlived their supervisor"
    finally:
        for pid in pids:  # never leave a worker behind, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        served.stop()
    # The port is free: a new server starts on it and answers.
    log = module_tmp / "restarted.err"
    with log.open("wb") as err:
        again = subprocess.Popen(
            [sys.executable, "-m", "waypost", "serve", str(EXAMPLE), "--port", str(served.port),
             "--workers", "2", "--no-access-log"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
        with running(again, served.port, name="the restarted server", log=log.read_text):
            answer = httpx.get(served.base + "/old-page", timeout=5)
            assert (answer.status_code, answer.headers["location"]) == (301, "/new-page")


@pytest.mark.parametrize(
    ("parent", "stops"),
    [(os.getppid, False), (lambda: os.getppid() + 1_000_000, True)],
    ids=["supervisor-alive", "supervisor-gone"],
)
def test_without_prctl_a_worker_finds_its_supervisor_gone_on_a_tick(
    parent: Callable[[], int], stops: bool
) -> None:
    """The portable fallback (other platforms than Linux, or a prctl that failed): the worker
    compares its parent with the supervisor every half second and stops gracefully."""
    worker = Worker(WaypostApp(Engine.from_file(EXAMPLE)), supervisor=parent())
    assert worker.tick(PARENT_EVERY) is stops
    assert worker.should_exit is stops


def test_a_stop_asked_for_during_start_up_still_runs_the_shutdown() -> None:
    """SIGTERM right after a worker forks lands while the worker starts up; the worker must not
    return without the lifespan's shutdown (the last stats unwritten, the store left open, the
    lifespan task cancelled and logged as a traceback). The shutdown runs."""
    seen: list[str] = []
    worker: Worker

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "lifespan.startup":
                worker.should_exit = True  # as the signal handler does
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    worker = Worker(WaypostApp(Engine.from_file(EXAMPLE)))
    worker.app = app  # type: ignore[assignment]  # the lifespan seen by this test's app
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        # Bounded: before the fix the shutdown never came and the run hung.
        asyncio.run(asyncio.wait_for(worker.serve([sock]), 10))
    assert worker.started
    assert seen == ["lifespan.startup", "lifespan.shutdown"]
