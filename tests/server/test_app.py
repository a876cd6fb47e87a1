"""The standalone server, for real: `waypost serve` on loopback, answered over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "WAYPOST_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "waypost", "serve", str(EXAMPLE), "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(base + "/_waypost/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"server did not start: {out}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_health(server: str) -> None:
    response = httpx.get(server + "/_waypost/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "rules": 8}


@pytest.mark.parametrize(
    ("method", "path", "status", "location"),
    [
        ("GET", "/old-page?utm=1", 301, "/new-page?utm=1"),
        ("HEAD", "/old-page", 301, "/new-page"),
        ("GET", "/2024/05/hello", 308, "/articles/hello?year=2024"),
        ("POST", "/second", 307, "/third"),
        ("GET", "/docs/guide/intro", 301, "https://docs.example.com/guide/intro"),
    ],
    ids=["query-kept", "head", "pattern-308", "post-307", "absolute"],
)
def test_redirects(server: str, method: str, path: str, status: int, location: str) -> None:
    response = httpx.request(method, server + path, follow_redirects=False)
    assert response.status_code == status
    assert response.headers["location"] == location
    if method == "HEAD":
        assert response.content == b""
    cache = response.headers["cache-control"]
    assert ("max-age" in cache) if status in (301, 308) else (cache == "no-store")


def test_respond_with_body_and_headers(server: str) -> None:
    response = httpx.get(server + "/maintenance")
    assert response.status_code == 503
    assert response.text == "Back soon"
    assert response.headers["retry-after"] == "3600"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "9"


def test_conditions_read_request_headers(server: str) -> None:
    headers = {"Host": "shop.example.com", "Accept-Language": "de-DE,de;q=0.9"}
    response = httpx.get(server + "/promo", headers=headers)
    assert (response.status_code, response.headers["location"]) == (302, "/de/promo")
    assert httpx.get(server + "/promo").status_code == 404


def test_unmatched_is_404(server: str) -> None:
    assert httpx.get(server + "/nothing-here").status_code == 404


def test_unsafe_target_is_refused_over_http(server: str) -> None:
    # /docs/<path:rest> -> https://docs.example.com/{rest}: '@' would change the host if unencoded.
    response = httpx.get(server + "/docs/@evil.com", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://docs.example.com/")
