"""kill -9 loses no acknowledged write: real servers, real stores (SQLite, PostgreSQL).

Writers create rules through the admin API of `waypost serve --db` as fast as it answers; once
enough have been acknowledged (201) the server is killed with SIGKILL, mid-stream. A server
started again on the same database must list every acknowledged rule: the API answers only after
its transaction has committed. (A write cut off before its answer may or may not be there; that
is what a client that got no answer must assume.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._servers import Server
from waypost.store import open_store

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
WRITERS = 4
#: Acknowledged writes before the kill; the writers keep going while it happens.
ACKNOWLEDGED = 60


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, upgraded store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rules.db'}"
    else:
        schema = request.getfixturevalue("postgres_schema")  # skips without the variable
        assert POSTGRES_URL is not None
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    store = open_store(url)
    store.upgrade()
    store.close()
    yield url


def _write_until_cut(
    base: str, key: str, name: str, acked: list[str], stop: threading.Event
) -> None:
    """Create rules one after another; record each one acknowledged; stop at the first failure
    (the server is gone) or when told."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        number = 0
        while not stop.is_set():
            path = f"/durable/{name}/{number}"
            try:
                answer = client.post(
                    "/_waypost/api/rules", json={"rule": {"from": path, "to": "/kept"}}
                )
            except httpx.TransportError:
                return
            if answer.status_code != 201:
                return  # not acknowledged: no promise was made
            acked.append(path)
            number += 1


def _stored_paths(server: Server, key: str) -> set[str]:
    """Every rule's 'from', through the admin API, page by page."""
    paths: set[str] = set()
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as client:
        while True:
            params: dict[str, str | int] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/_waypost/api/rules", params=params)
            assert page.status_code == 200, page.text
            data = page.json()
            paths.update(rule["rule"]["from"] for rule in data["rules"])
            cursor = data.get("next_cursor")
            if not cursor:
                return paths


def test_kill_9_loses_no_acknowledged_write(db: str) -> None:
    store = open_store(db)
    _, key = store.create_key("write", note="durability")
    store.close()
    server = Server(db)
    acked: list[str] = []
    stop = threading.Event()
    writers = [
        threading.Thread(target=_write_until_cut, args=(server.base, key, f"w{n}", acked, stop))
        for n in range(WRITERS)
    ]
    try:
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 60
        while len(acked) < ACKNOWLEDGED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acked) >= ACKNOWLEDGED, f"only {len(acked)} writes answered in 60 s"
        os.kill(server.proc.pid, signal.SIGKILL)  # mid-stream: writers are still sending
        server.proc.wait(timeout=10)
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=15)
        server.stop()
    promised = set(acked)  # taken after every writer stopped: no answer arrives any more
    restarted = Server(db)
    try:
        stored = _stored_paths(restarted, key)
        lost = promised - stored
        assert not lost, (
            f"{len(lost)} of {len(promised)} acknowledged writes lost: {sorted(lost)[:5]}"
        )
        # Each one also serves, from the restarted server's engine.
        for path in sorted(promised)[:: max(1, len(promised) // 10)]:
            assert restarted.location(path) == "/kept", path
    finally:
        restarted.stop()
