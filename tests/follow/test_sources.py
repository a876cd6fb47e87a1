"""Where the server's rules come from: a FileSource is watched, a StoreSource followed, and the
ASGI app serves from the WaypostServer it is given."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from waypost.engine import Engine
from waypost.follow.reloading import file_signature
from waypost.follow.sources import FileSource, StoreSource
from waypost.server.app import WaypostApp
from waypost.server.config import Settings
from waypost.server.core import WaypostServer

RULES = "- from: /old\n  to: /new\n"


def test_a_file_source_is_watched_from_the_signature_and_revision_it_was_loaded_at(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    source = FileSource(path, file_signature(path), "loaded", tmp_path / "decisions")
    server = WaypostServer(Engine.from_file(path), Settings(reload_interval=3), source=source)
    watcher = server.watcher
    assert watcher is not None and server.store_sync is None
    assert (watcher.path, watcher.interval, watcher.decisions) == (path, 3, tmp_path / "decisions")
    assert watcher.loaded.revision == "loaded"
    assert server.source is source


def test_a_store_source_is_followed_from_its_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rules.db'}"
    server = WaypostServer(Engine([]), Settings(), source=StoreSource(url, 7))
    assert server.watcher is None and server.store_sync is not None
    assert (server.store_sync.url, server.store_sync.revision) == (url, 7)


def test_without_a_source_the_rules_stay_as_they_are() -> None:
    server = WaypostServer(Engine([]))
    assert (server.source, server.watcher, server.store_sync) == (None, None, None)


def test_a_store_source_shows_no_password() -> None:
    source = StoreSource("postgresql://waypost:s3cret@db.internal/rules", 4)
    assert repr(source) == "StoreSource('postgresql://waypost:***@db.internal/rules', revision=4)"
    assert source.url == "postgresql://waypost:s3cret@db.internal/rules"


def test_the_asgi_app_serves_from_the_server_it_is_given() -> None:
    settings = Settings(access_log=False, public_health_details=True)
    server = WaypostServer(Engine([{"from": "/old", "to": "/new"}]), settings)
    app = WaypostApp(server)
    assert app.server is server

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/old")
            assert (response.status_code, response.headers["location"]) == (301, "/new")

    asyncio.run(run())


def test_a_server_brings_its_own_settings() -> None:
    server = WaypostServer(Engine([]))
    with pytest.raises(TypeError, match="the server's own settings"):
        WaypostApp(server, Settings())
