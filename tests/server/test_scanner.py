"""A scanner against a real server counting 404s: wrk sends a million distinct random paths while
a browser follows one real broken link now and then. The not-found log stays within its bound,
the real broken URL stays on top, and every 404 is accounted for (a row or ``other``).

Needs ``wrk`` (Debian: ``apt-get install -y wrk``); skipped with that reason without it.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests._servers import Server, stored_rules
from waypost.store import open_store
from waypost.store.stats import MAX_NOT_FOUND_PATHS

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="needs wrk on PATH (apt-get install -y wrk)"
)

SCANNED = 1_000_000
# Each request a new random path; the thread stops itself once it has sent its share.
SCANNER = """
local sent = 0
local share = tonumber(os.getenv("SCAN_REQUESTS")) / tonumber(os.getenv("SCAN_THREADS"))
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  sent = sent + 1
  return wrk.format("GET", string.format("/scan/%08x%08x", math.random(0, 2147483647),
                                         math.random(0, 2147483647)))
end
response = function(status, headers, body)
  if sent >= share then wrk.thread:stop() end
end
"""


def _not_found_count(metrics: str) -> int:
    found = re.findall(r'waypost_requests_total\{action="pass",status="404"\} ([0-9.e+]+)', metrics)
    return int(float(found[0])) if found else 0


def test_a_million_random_paths_leave_the_real_broken_url_on_top(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    stored_rules(url, [{"from": "/old-page", "to": "/new-page"}])
    server = Server(url, "--stats", "--stats-interval", "1")
    script = tmp_path / "scan.lua"
    script.write_text(SCANNER, encoding="utf-8")
    browser_hits = 0
    statuses: set[int] = set()
    stop = threading.Event()

    def follow_the_broken_link() -> None:
        nonlocal browser_hits
        with httpx.Client(headers={"User-Agent": "Mozilla/5.0 Firefox/128.0"}) as client:
            while not stop.is_set():
                statuses.add(client.get(server.base + "/docs/old-guide", timeout=10).status_code)
                browser_hits += 1
                time.sleep(0.05)

    browser = threading.Thread(target=follow_the_broken_link)
    browser.start()
    # wrk waits out its whole duration even when its threads stop: it is interrupted (and
    # prints its summary) once the server has answered the million.
    scan = subprocess.Popen(
        ["wrk", "-t2", "-c8", "-d300s", "-s", str(script), server.base + "/"],
        env={"SCAN_REQUESTS": str(SCANNED + 10_000), "SCAN_THREADS": "2", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and scan.poll() is None:
            time.sleep(1)
            metrics = httpx.get(server.base + "/_waypost/metrics", timeout=10).text
            if _not_found_count(metrics) >= SCANNED + browser_hits:
                break
        scan.send_signal(signal.SIGINT)
        output, _ = scan.communicate(timeout=30)
    finally:
        stop.set()
        browser.join()
        if scan.poll() is None:
            scan.kill()
    sent = int(re.findall(r"(\d+) requests in", output)[0])
    assert sent >= SCANNED, output
    assert statuses == {404} and browser_hits > 100
    time.sleep(1)  # the worker moves its counts into the metrics twice a second
    answered_404 = _not_found_count(httpx.get(server.base + "/_waypost/metrics").text)
    assert answered_404 >= SCANNED + browser_hits
    server.stop()  # the last flush
    store = open_store(url)
    try:
        rows = store.not_found_stats(status="open", include_bots=True, limit=1000).rows
        assert rows[0].path == "/docs/old-guide"
        # Space-Saving keeps what a path certainly had: the real link's hits are a lower bound
        # (one in a thousand of the requests, it is evicted now and then), the rest in 'other'.
        assert 1 <= rows[0].hits <= browser_hits
        assert rows[1].hits < rows[0].hits
        open_rows = store._read("SELECT count(*) FROM waypost_not_found WHERE status = 'open'")
        assert open_rows[0][0] <= MAX_NOT_FOUND_PATHS * 11 // 10
        # Every 404 is in a row or in 'other': none lost, none counted twice.
        everything = store.not_found_stats(status=None, include_bots=True, limit=1000)
        stored = sum(row.hits for row in everything.rows)
        cursor = everything.next_cursor
        while cursor is not None:
            page = store.not_found_stats(status=None, include_bots=True, limit=1000, cursor=cursor)
            stored += sum(row.hits for row in page.rows)
            cursor = page.next_cursor
        assert stored + store.stats_other() == answered_404
    finally:
        store.close()
