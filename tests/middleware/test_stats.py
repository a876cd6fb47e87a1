"""Analytics through the middlewares: a real FastAPI app and a real Flask app counting rule hits
and the app's own 404s into a SQLite rule store (StatsRecorder), flushed when serving ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
from fastapi import FastAPI
from fastapi.testclient import TestClient

from waypost import Engine
from waypost.middleware.asgi import WaypostMiddleware as AsgiMiddleware
from waypost.middleware.wsgi import WaypostMiddleware as WsgiMiddleware
from waypost.store import StatsRecorder, open_store

RULES: list[dict[str, Any]] = [
    {"from": "/old-page", "to": "/live"},
    {"from": "/blog/<int:year>/<slug>", "rewrite": "/live"},
    {"from": "/gone-missing", "to": "/live", "only_if_missing": True},
]
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Referer": "https://a.example/",
}


def _store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'stats.db'}"
    store = open_store(url)
    store.upgrade()
    store.close()
    return url


def _counted(url: str) -> tuple[dict[str, int], dict[str, int]]:
    store = open_store(url)
    try:
        hits = {row.rule_key: row.hits for row in store.rule_stats(limit=100).rows}
        missing = {row.path: row.hits for row in store.not_found_stats(status=None, limit=100).rows}
        return hits, missing
    finally:
        store.close()


def _send(get: Any) -> None:
    for _ in range(3):
        assert get("/old-page").status_code in (301, 302, 307, 308)
    for _ in range(2):
        assert get("/blog/2024/hello").status_code == 200
    for _ in range(4):
        assert get("/no/such/page?utm=x").status_code == 404
    assert get("/gone-missing").status_code in (301, 307, 308)
    assert get("/live").status_code == 200


EXPECTED_HITS = {"<rules>#1": 3, "<rules>#2": 2, "<rules>#3": 1}
EXPECTED_MISSING = {"/no/such/page": 4}


def test_fastapi_app_hits_and_its_own_404s_are_counted(tmp_path: Path) -> None:
    url = _store_url(tmp_path)
    app = FastAPI()

    @app.get("/live")
    async def live() -> dict[str, str]:
        return {"page": "live"}

    recorder = StatsRecorder(url, interval=60)
    app.add_middleware(AsgiMiddleware, rules=Engine(RULES), stats=recorder)
    with TestClient(app, headers=BROWSER, follow_redirects=False) as client:
        _send(client.get)
    # The lifespan's shutdown wrote the counts.
    assert _counted(url) == (EXPECTED_HITS, EXPECTED_MISSING)


def test_flask_app_hits_and_its_own_404s_are_counted(tmp_path: Path) -> None:
    url = _store_url(tmp_path)
    app = flask.Flask(__name__)

    @app.get("/live")
    def live() -> str:
        return "live"

    recorder = StatsRecorder(url, interval=60)
    middleware = WsgiMiddleware(app.wsgi_app, Engine(RULES), stats=recorder)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    client = app.test_client()
    _send(lambda path: client.get(path, headers=BROWSER))
    assert _counted(url) == ({}, {}), "nothing is written before the flush"
    middleware.stop_stats()  # what the interpreter's exit does (atexit)
    assert _counted(url) == (EXPECTED_HITS, EXPECTED_MISSING)
    middleware.stop_stats()  # once only


def test_without_a_sink_nothing_is_recorded_and_nothing_is_wrapped() -> None:
    app = flask.Flask(__name__)
    middleware = WsgiMiddleware(app.wsgi_app, Engine(RULES))
    middleware.start_stats()
    middleware.stop_stats()
    assert middleware.stats is None
