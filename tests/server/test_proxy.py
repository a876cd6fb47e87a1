"""`--upstream`: requests that pass or are rewritten go to a real upstream on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.serving import Served, Upstream, free_port, start_server

RULES = """
rules:
  - from: /old
    to: /new
  - from: /legacy/<path:rest>
    rewrite: /v2/{rest}?from=legacy
    set_headers: {X-Rerouted: "yes", X-Forwarded-Host: "spoofed"}
  - from: /lang
    when: {language: [de]}
    to: /de
    status: 302
"""


@pytest.fixture(scope="module")
def proxied(module_tmp: Path, upstream: Upstream) -> Iterator[Served]:
    rules = module_tmp / "proxy.yaml"
    rules.write_text(RULES, encoding="utf-8")
    served = start_server(rules, "--upstream", upstream.url, "--no-access-log", tmp=module_tmp)
    yield served
    served.stop()


def _headers(data: dict[str, Any]) -> dict[str, str]:
    return {name: value for name, value in data["headers"]}


def test_redirects_are_still_answered_by_waypost(proxied: Served) -> None:
    response = httpx.get(proxied.base + "/old", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (301, "/new")


def test_pass_is_proxied_with_forwarded_headers(proxied: Served) -> None:
    response = httpx.get(
        proxied.base + "/some/page%2Fx?q=1&q=2",
        headers={"Host": "site.example", "X-Forwarded-For": "203.0.113.9", "Connection": "TE"},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["method"] == "GET"
    assert data["path"].startswith("/some/page")
    assert data["query"] == {"q": ["1", "2"]}
    headers = _headers(data)
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "site.example"
    assert headers["host"].startswith("127.0.0.1:")
    assert "te" not in headers
    # Hop-by-hop response headers (and what Connection names) stay between upstream and Waypost.
    assert "x-hop" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"


def test_rewrite_goes_upstream_with_new_path_query_and_headers(proxied: Served) -> None:
    response = httpx.get(proxied.base + "/legacy/a/b?keep=1", follow_redirects=False)
    assert response.status_code == 200
    data = response.json()
    assert data["path"] == "/v2/a/b"
    assert data["query"] == {"from": ["legacy"], "keep": ["1"]}
    headers = _headers(data)
    assert headers["x-rerouted"] == "yes"


def test_request_body_is_forwarded(proxied: Served) -> None:
    response = httpx.post(proxied.base + "/form", content=b"a=1&b=2")
    data = response.json()
    assert (data["method"], data["body"]) == ("POST", "a=1&b=2")


def test_head_is_proxied_without_a_body(proxied: Served) -> None:
    response = httpx.head(proxied.base + "/anything")
    assert (response.status_code, response.content) == (200, b"")


def test_vary_of_the_decision_is_added(proxied: Served) -> None:
    response = httpx.get(proxied.base + "/lang")  # the condition failed: passed upstream
    assert response.status_code == 200
    assert response.headers.get_list("vary") == ["Accept-Encoding", "Accept-Language"] or (
        response.headers["vary"] == "Accept-Encoding, Accept-Language"
    )


def test_response_body_is_streamed(proxied: Served, upstream: Upstream) -> None:
    upstream.release.clear()
    upstream.first_chunk_sent.clear()
    with httpx.stream("GET", proxied.base + "/stream", timeout=10) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        # The first chunk arrived while the upstream still holds back the rest: streamed.
        assert first == b"first\n"
        assert not upstream.release.is_set()
        upstream.release.set()
        assert b"".join(chunks) == b"rest\n"


def test_unreachable_upstream_is_502(module_tmp: Path) -> None:
    rules = module_tmp / "empty.yaml"
    rules.write_text("rules: []\n", encoding="utf-8")
    dead = f"http://127.0.0.1:{free_port()}"
    served = start_server(rules, "--upstream", dead, "--no-access-log", tmp=module_tmp)
    try:
        response = httpx.get(served.base + "/x")
        assert response.status_code == 502
    finally:
        served.stop()


def test_sigterm_lets_a_slow_in_flight_request_finish(tmp_path: Path, upstream: Upstream) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n", encoding="utf-8")
    served = start_server(rules, "--upstream", upstream.url, "--no-access-log", tmp=tmp_path)
    result: dict[str, Any] = {}

    def slow() -> None:
        try:
            response = httpx.get(served.base + "/slow?seconds=1.5", timeout=10)
            result["status"], result["body"] = response.status_code, response.text
        except httpx.HTTPError as exc:  # pragma: no cover - reported below
            result["error"] = repr(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)  # the request is now waiting on the upstream
    started = time.monotonic()
    code = served.stop(timeout=10)
    thread.join(timeout=10)
    assert result == {"status": 200, "body": "slow done"}, served.stderr()
    assert time.monotonic() - started < 8
    assert code == 0
    # Once stopped, nothing listens any more.
    with pytest.raises(httpx.TransportError):
        httpx.get(served.base + "/x", timeout=1)
