"""`waypost serve --db` proxies what its rule store says: the store's ``proxy_hosts`` reach the
engine the server starts with (seeded from a rules file, or imported from Netlify's ``_redirects``)
and the engine each later revision is swapped in as; a real origin on loopback answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests._servers import Server
from tests.server.test_proxy_rules import Origin
from waypost.cli import main
from waypost.store import SetRuleSetSettings, UpsertRule, open_store


@pytest.fixture
def origin() -> Iterator[Origin]:
    served = Origin()
    yield served
    served.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    running: list[Server] = []
    yield running
    for server in running:
        server.stop()


def _until(check: Callable[[], bool], limit: float = 5.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


def _echoed(server: Server, path: str) -> str | None:
    """The path the origin saw for GET ``path`` (None when the server did not proxy it)."""
    response = httpx.get(server.base + path, timeout=5, follow_redirects=False)
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return None
    return str(response.json()["target"])


def test_a_seeded_store_proxies_and_a_later_revision_still_does(
    tmp_path: Path, origin: Origin, servers: list[Server]
) -> None:
    seed = tmp_path / "rules.yaml"
    seed.write_text(
        "proxy_hosts: [127.0.0.1]\n"
        "rules:\n"
        "  - from: /api/<path:rest>\n"
        f"    rewrite: http://127.0.0.1:{origin.port}/v1/{{rest}}\n",
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'waypost.db'}"
    server = Server(db, str(seed))
    servers.append(server)
    assert _echoed(server, "/api/items/4?q=1") == "/v1/items/4?q=1"

    # A revision the server swaps in is built with the store's proxy hosts too.
    with open_store(db) as store:
        store.replace_rules(
            [
                {
                    "from": "/api/<path:rest>",
                    "rewrite": f"http://127.0.0.1:{origin.port}/v2/{{rest}}",
                }
            ],
            proxy_hosts=["127.0.0.1"],
        )
    assert _until(lambda: _echoed(server, "/api/x") == "/v2/x"), server.output()


def test_proxy_hosts_given_to_a_serving_store_take_effect(
    tmp_path: Path, origin: Origin, servers: list[Server]
) -> None:
    db = f"sqlite:///{tmp_path / 'waypost.db'}"
    with open_store(db) as store:
        store.upgrade()
        store.create_rule({"from": "/old", "to": "/new"})
    server = Server(db)
    servers.append(server)
    assert _echoed(server, "/api/x") is None
    with open_store(db) as store:
        store.apply(
            [
                SetRuleSetSettings(proxy_hosts=["127.0.0.1"]),
                UpsertRule(
                    {
                        "from": "/api/<path:rest>",
                        "rewrite": f"http://127.0.0.1:{origin.port}/{{rest}}",
                    }
                ),
            ]
        )
    assert _until(lambda: _echoed(server, "/api/x") == "/x"), server.output()


def test_a_netlify_import_then_serve_from_the_store(
    tmp_path: Path, origin: Origin, servers: list[Server]
) -> None:
    redirects = tmp_path / "_redirects"
    redirects.write_text(f"/api/* http://127.0.0.1:{origin.port}/:splat 200\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'waypost.db'}"
    imported = CliRunner().invoke(main, ["import", str(redirects), "--db", db])
    assert imported.exit_code == 0, imported.output
    server = Server(db)
    servers.append(server)
    assert _echoed(server, "/api/users/1?x=2") == "/users/1?x=2"
