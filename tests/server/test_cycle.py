"""The ASGI HTTP cycle (waypost.server.cycle) on a real socket: what the server owns since it no
longer runs on uvicorn. Chunked and fixed-length responses, HEAD, an app that fails before or
after starting its response, a client that goes away, large bodies both ways under flow control,
and pipelined requests answered in order when some take the ASGI path and some the direct one.

The app under test is served by a real :class:`~waypost.server.worker.Worker` in a thread, on
127.0.0.1: every path under ``/asgi/`` goes to the test's ASGI app (as the admin API's paths
do), every other one is answered directly from the example rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from waypost.engine import Engine
from waypost.server.app import WaypostApp
from waypost.server.config import Settings
from waypost.server.core import WaypostServer
from waypost.server.worker import Worker

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"
Handler = Callable[[dict[str, Any], Any, Any], Any]


class _RoutedApp:
    """A WaypostApp whose ``/asgi/...`` paths are answered by the test's handlers (every other
    request that takes the ASGI path, as one behind a request in progress, goes to the app)."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.server = WaypostServer(
            Engine.from_file(EXAMPLE), Settings(access_log=False, graceful_timeout=2)
        )
        self.waypost_app = WaypostApp(self.server)
        self.handlers = handlers
        self.admin = object()  # the connection asks to_admin() only when there is an admin app

    def to_admin(self, path: str, headers: object) -> bool:
        return path.startswith("/asgi/")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"].startswith("/asgi/"):
            await self.handlers[scope["path"]](scope, receive, send)
        else:
            await self.waypost_app(scope, receive, send)


@pytest.fixture(scope="module")
def handlers() -> dict[str, Handler]:
    return {}


@pytest.fixture(scope="module")
def port(handlers: dict[str, Handler]) -> Iterator[int]:
    worker = Worker(_RoutedApp(handlers))  # type: ignore[arg-type]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=worker.run, args=([sock],), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not worker.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the worker did not start"
        time.sleep(0.02)
    yield sock.getsockname()[1]
    worker.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()


def _serve(handlers: dict[str, Handler], path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        handlers[path] = handler
        return handler

    return register


async def _start(send: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": status, "headers": headers or []})


def _exchange(port: int, data: bytes, *, timeout: float = 5) -> bytes:
    """Send ``data``, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def test_the_scope_is_an_asgi_http_scope(port: int, handlers: dict[str, Handler]) -> None:
    seen: list[dict[str, Any]] = []

    @_serve(handlers, "/asgi/scope")
    async def scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        await _start(send, 200, [(b"content-length", b"2")])
        await send({"type": "http.response.body", "body": b"ok"})

    response = httpx.get(f"http://127.0.0.1:{port}/asgi/scope?a=1&b=%20", headers={"X-T": "v"})
    assert response.status_code == 200 and response.text == "ok"
    (got,) = seen
    assert got["type"] == "http"
    assert got["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert (got["http_version"], got["method"], got["scheme"]) == ("1.1", "GET", "http")
    assert (got["path"], got["raw_path"], got["root_path"]) == ("/asgi/scope", b"/asgi/scope", "")
    assert got["query_string"] == b"a=1&b=%20"
    assert (b"x-t", b"v") in got["headers"]
    assert got["client"][0] == "127.0.0.1" and got["server"] == ("127.0.0.1", port)
    assert isinstance(got["state"], dict)


def test_a_response_without_length_is_chunked(port: int, handlers: dict[str, Handler]) -> None:
    @_serve(handlers, "/asgi/chunked")
    async def chunked(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _start(send, 200, [(b"content-type", b"text/plain")])
        for part in (b"one ", b"", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    raw = _exchange(port, b"GET /asgi/chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head and b"content-length" not in head
    assert body == b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n"
    with httpx.Client() as client:  # and kept alive after it
        for _ in range(2):
            assert client.get(f"http://127.0.0.1:{port}/asgi/chunked").text == "one two three"


def test_head_has_no_body(port: int, handlers: dict[str, Handler]) -> None:
    @_serve(handlers, "/asgi/head")
    async def head(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _start(send, 200, [(b"content-length", b"5")])
        await send({"type": "http.response.body", "body": b"hello"})

    @_serve(handlers, "/asgi/head-unsized")
    async def unsized(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _start(send)
        await send({"type": "http.response.body", "body": b"hello"})

    raw = _exchange(
        port,
        b"HEAD /asgi/head HTTP/1.1\r\nHost: a\r\n\r\n"
        b"HEAD /asgi/head-unsized HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /asgi/head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    first, second, third = raw.split(b"HTTP/1.1 ")[1:]
    assert b"content-length: 5\r\n" in first and first.endswith(b"\r\n\r\n")
    assert b"transfer-encoding" not in second and second.endswith(b"\r\n\r\n")
    assert third.endswith(b"\r\n\r\nhello")


def test_an_app_failing_before_its_response_gets_a_500(
    port: int, handlers: dict[str, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    @_serve(handlers, "/asgi/fail-early")
    async def fail_early(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("broken app")

    response = httpx.get(f"http://127.0.0.1:{port}/asgi/fail-early")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert response.headers["connection"] == "close"
    assert "broken app" in caplog.text


def test_an_app_failing_mid_response_closes_the_connection(
    port: int, handlers: dict[str, Handler]
) -> None:
    @_serve(handlers, "/asgi/fail-late")
    async def fail_late(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _start(send, 200, [(b"content-length", b"100")])
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("broken app")

    raw = _exchange(
        port,
        b"GET /asgi/fail-late HTTP/1.1\r\nHost: a\r\n\r\nGET /old-page HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"\r\n\r\npartial")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"http://127.0.0.1:{port}/asgi/fail-late")


def test_receive_sees_the_client_go_away(port: int, handlers: dict[str, Handler]) -> None:
    messages: list[dict[str, Any]] = []
    done = threading.Event()

    @_serve(handlers, "/asgi/wait")
    async def wait(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] == "http.disconnect":
                    return
        finally:
            done.set()

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /asgi/wait HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
        deadline = time.monotonic() + 5
        while not messages:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert done.wait(5), "the app never saw the client go"
    assert messages[0] == {"type": "http.request", "body": b"12345", "more_body": True}
    assert messages[-1] == {"type": "http.disconnect"}


def test_large_bodies_both_ways_under_flow_control(port: int, handlers: dict[str, Handler]) -> None:
    size = 8 * 1024 * 1024
    upload = bytes(range(256)) * (size // 256)
    got: dict[str, Any] = {}

    @_serve(handlers, "/asgi/echo-hash")
    async def echo_hash(scope: dict[str, Any], receive: Any, send: Any) -> None:
        digest, total, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            digest.update(message["body"])
            total += len(message["body"])
            more = message["more_body"]
            await asyncio.sleep(0)  # a slow reader: the connection pauses reading meanwhile
        got.update(total=total, digest=digest.hexdigest())
        await _start(send)  # chunked, streamed in 64 KiB pieces to a slow client
        piece = b"x" * 65536
        for _ in range(size // len(piece)):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def chunks() -> Iterator[bytes]:
        for start in range(0, size, 1 << 20):
            yield upload[start : start + (1 << 20)]

    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"http://127.0.0.1:{port}/asgi/echo-hash", content=chunks()) as r,
    ):
        received = 0
        for piece in r.iter_bytes():
            received += len(piece)
            if received < 1 << 20:
                time.sleep(0.001)
    assert got == {"total": size, "digest": hashlib.sha256(upload).hexdigest()}
    assert received == size


def test_pipelined_requests_are_answered_in_order_across_both_paths(
    port: int, handlers: dict[str, Handler]
) -> None:
    @_serve(handlers, "/asgi/slow")
    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.2)
        await _start(send, 200, [(b"content-length", b"4")])
        await send({"type": "http.response.body", "body": b"slow"})

    @_serve(handlers, "/asgi/fast")
    async def fast(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _start(send, 200, [(b"content-length", b"4")])
        await send({"type": "http.response.body", "body": b"fast"})

    raw = _exchange(
        port,
        b"GET /old-page HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /asgi/slow HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /old-page HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /asgi/fast HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
    assert statuses == [b"301", b"200", b"301", b"200", b"404"]
    assert raw.index(b"\r\n\r\nslow") < raw.index(b"\r\n\r\nfast")
