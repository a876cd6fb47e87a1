"""The admin sign-in as a person uses it: headless Chromium against a real `waypost serve --db`.

Skips with the reason when Debian's Chromium (/usr/bin/chromium) or Playwright is missing;
Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests._browser import needs_chromium
from tests._servers import Server
from waypost.store import open_store

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    db = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'waypost.db'}"
    server = Server(db, str(EXAMPLE))
    store = open_store(db)
    _, key = store.create_key("read", note="browser test")
    store.close()
    try:
        yield server, key
    finally:
        server.stop()


def test_a_browser_is_sent_to_sign_in_and_back(site: tuple[Server, str], page: Any) -> None:
    server, key = site
    page.goto(server.base + "/_waypost/api/rules")
    assert urlsplit(page.url).path == "/_waypost/login"
    assert page.locator("h1").inner_text() == "Waypost admin"

    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/_waypost/api/rules"
    assert '"from":"/old-page"' in page.content()  # the cookie now signs the requests in


def test_a_wrong_key_shows_why_and_stays_on_the_form(site: tuple[Server, str], page: Any) -> None:
    server, _ = site
    page.goto(server.base + "/_waypost/login?next=/_waypost/api/rules")
    page.fill("#key", "wp_nothere_notasecret")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/_waypost/login"
    assert page.locator(".error").is_visible()
    assert page.context.cookies() == []


@pytest.mark.parametrize(
    "next_value",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
    ids=["protocol-relative", "absolute", "backslash", "script"],
)
def test_next_never_leaves_the_site(site: tuple[Server, str], page: Any, next_value: str) -> None:
    server, key = site
    page.goto(f"{server.base}/_waypost/login?next={quote(next_value, safe='')}")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    landed = urlsplit(page.url)
    assert (landed.scheme, landed.netloc) == ("http", f"127.0.0.1:{server.port}")
