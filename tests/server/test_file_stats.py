"""``waypost serve rules.yaml --stats`` without ``--db``: the counts are kept for as long as the
server runs (a temporary store the workers share, deleted at exit) and read through the same
analytics API, opened by the keys of ``--keys``."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._servers import Server
from waypost.store import open_store

RULES = """\
rules:
  - from: /old-page
    to: /new-page
  - from: /blog/<int:year>/<slug>
    to: /articles/{slug}
"""
PERSON = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}


def _eventually(read: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = read()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@dataclass(frozen=True)
class KeysDb:
    """A store holding API keys: its URL, a read key and a write key."""

    url: str
    read: str
    write: str


@pytest.fixture
def keys_db(tmp_path: Path) -> KeysDb:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    store = open_store(url)
    try:
        _, read = store.create_key("read", note="stats reader")
        _, write = store.create_key("write", note="stats writer")
    finally:
        store.close()
    return KeysDb(url, read, write)


def _serve(tmp_path: Path, *flags: str) -> Server:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return Server(None, str(rules), "--stats", "--stats-interval", "0.3", *flags)


def test_a_served_files_counts_are_read_through_the_api(tmp_path: Path, keys_db: KeysDb) -> None:
    server = _serve(tmp_path, "--keys", keys_db.url, "--workers", "2")
    bearer = {"Authorization": f"Bearer {keys_db.read}"}
    try:
        with httpx.Client(base_url=server.base, headers=PERSON) as client:
            for _ in range(5):
                assert client.get("/old-page").status_code == 301
            for _ in range(3):
                assert client.get("/blog/2024/hello").status_code == 301
                assert client.get("/no/such/page").status_code == 404

        def rules() -> dict[str, int]:
            answer = httpx.get(f"{server.base}/_waypost/api/stats/rules", headers=bearer)
            assert answer.status_code == 200, answer.text
            found = {row["rule_key"]: row["hits"] for row in answer.json()["rules"]}
            return found if sum(found.values()) == 8 else {}

        counted = _eventually(rules)
        file = tmp_path / "rules.yaml"
        assert counted == {f"{file}:2": 5, f"{file}:4": 3}  # file:line, over both workers

        def missing() -> list[Any]:
            answer = httpx.get(f"{server.base}/_waypost/api/stats/not-found", headers=bearer)
            rows = answer.json()["not_found"]
            return rows if rows and rows[0]["hits"] == 3 else []

        rows = _eventually(missing)
        assert [(r["path"], r["hits"]) for r in rows] == [("/no/such/page", 3)]
        # a redirect for it belongs in the file: refused, saying so
        made = httpx.post(
            f"{server.base}/_waypost/api/stats/not-found/{rows[0]['id']}/rule",
            headers={"Authorization": f"Bearer {keys_db.write}"},
            json={"to": "/elsewhere"},
        )
        assert made.status_code == 409 and made.json()["error"] == "rules_in_file"
        assert str(tmp_path / "rules.yaml") in made.json()["message"]
        # the rules API is not there: the rules are the file's
        assert httpx.get(f"{server.base}/_waypost/api/rules", headers=bearer).status_code == 404
        assert httpx.get(f"{server.base}/_waypost/api/stats/rules").status_code == 401
        kept = re.search(r"are kept in (\S+) until the server stops", server.output())
        assert kept is not None, server.output()
        assert (Path(kept[1]) / "stats.db").exists()
    finally:
        server.stop()
    assert not Path(kept[1]).exists()  # deleted at exit


def test_without_keys_the_log_says_how_to_read_them(tmp_path: Path) -> None:
    server = _serve(tmp_path)
    try:
        assert httpx.get(f"{server.base}/old-page").status_code == 301
        refused = httpx.get(
            f"{server.base}/_waypost/api/stats/rules",
            headers={"Authorization": "Bearer wp_nothere_secret"},
        )
        assert refused.status_code == 401
        assert "give --keys URL" in server.output()
    finally:
        server.stop()


def test_the_counts_do_not_outlive_the_server(tmp_path: Path, keys_db: KeysDb) -> None:
    bearer = {"Authorization": f"Bearer {keys_db.read}"}
    first = _serve(tmp_path, "--keys", keys_db.url)
    try:
        httpx.get(f"{first.base}/old-page", headers=PERSON)
        assert _eventually(
            lambda: httpx.get(f"{first.base}/_waypost/api/stats/rules", headers=bearer).json()[
                "rules"
            ]
        )
    finally:
        first.stop()
    second = _serve(tmp_path, "--keys", keys_db.url)
    try:
        rows = httpx.get(f"{second.base}/_waypost/api/stats/rules", headers=bearer).json()
        assert rows["rules"] == []
    finally:
        second.stop()
