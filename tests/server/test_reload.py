"""Hot reload with two workers: new rules reach every worker; a broken file keeps the old ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.serving import Served, start_server

RULES_V1 = "rules:\n  - from: /a\n    to: /one\n"
RULES_V2 = "rules:\n  - from: /a\n    to: /two\n  - from: /b\n    to: /bee\n"
BROKEN = "rules:\n  - from: /a\n    to: /three\n  - from: /<itn:id>\n    to: /x\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_V1, encoding="utf-8")
    served = start_server(
        rules, "--workers", "2", "--no-access-log", "--public-health-details", tmp=tmp_path
    )
    yield served, rules
    served.stop()


def _workers(base: str, want: int = 2, seconds: float = 5) -> dict[int, dict[str, object]]:
    """Health of each worker, by pid: fresh connections until ``want`` workers answered."""
    seen: dict[int, dict[str, object]] = {}
    deadline = time.monotonic() + seconds
    while len(seen) < want and time.monotonic() < deadline:
        data = httpx.get(base + "/_waypost/health", headers={"Connection": "close"}).json()
        seen[int(data["pid"])] = data
    return seen


def _wait_all(base: str, predicate: str, seconds: float = 5) -> dict[int, dict[str, object]]:
    deadline = time.monotonic() + seconds
    while True:
        workers = _workers(base)
        if len(workers) == 2 and all(w["revision"] == predicate for w in workers.values()):
            return workers
        if time.monotonic() > deadline:
            pytest.fail(f"not every worker reached revision {predicate}: {workers}")
        time.sleep(0.05)


def test_new_rules_reach_every_worker_and_no_request_fails(served: tuple[Served, Path]) -> None:
    server, rules = served
    before = _workers(server.base)
    assert len(before) == 2, "two workers should answer"
    old_revision = next(iter(before.values()))["revision"]

    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.base) as client:
            while not stop.is_set():
                response = client.get("/a", follow_redirects=False)
                if response.status_code != 301 or response.headers["location"] not in (
                    "/one",
                    "/two",
                ):
                    failures.append(f"{response.status_code} {response.headers}")

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        started = time.monotonic()
        rules.write_text(RULES_V2, encoding="utf-8")
        from waypost.follow.reloading import file_revision

        workers = _wait_all(server.base, file_revision(rules))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=5)
    assert failures == []
    # ~1 s: a 0.25 s poll, another to see the file unchanged, the load, and the health probes.
    assert elapsed < 3.0
    assert all(w["rules"] == 2 for w in workers.values())
    assert old_revision != file_revision(rules)
    for _ in range(6):
        response = httpx.get(server.base + "/b", headers={"Connection": "close"})
        assert (response.status_code, response.headers["location"]) == (301, "/bee")


def test_broken_file_keeps_the_old_rules_and_logs_file_line(served: tuple[Served, Path]) -> None:
    server, rules = served
    rules.write_text(BROKEN, encoding="utf-8")
    deadline = time.monotonic() + 6
    while server.stderr().count("unknown converter 'itn'") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.stderr()
    # Every worker logs every error, with file:line:col.
    assert log.count(f"{rules}:4:") >= 2, log
    assert "still serving the previous rules" in log
    for _ in range(6):
        response = httpx.get(server.base + "/a", headers={"Connection": "close"})
        assert (response.status_code, response.headers["location"]) == (301, "/one")
    metrics = httpx.get(server.base + "/_waypost/metrics").text
    assert "waypost_reload_failures_total 2.0" in metrics  # one per worker, added up
    # Fixing the file brings the new rules in.
    rules.write_text(RULES_V2, encoding="utf-8")
    from waypost.follow.reloading import file_revision

    _wait_all(server.base, file_revision(rules))
