"""The server's connections, on a real socket: keep-alive, pipelining, closing, bodies, limits.

Most requests are answered by :mod:`waypost.server.protocol` straight from the request head; the
rest (upstream, admin API, ``Expect: 100-continue``, a request behind one still in progress) go
through the ASGI path (:mod:`waypost.server.cycle`). Both must answer the same, byte for byte
apart from the date.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.serving import Served, start_server
from waypost.engine import Engine
from waypost.server.app import WaypostApp
from waypost.server.config import Settings

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"
EXTRA_RULES = """
  - from: /beta
    when: {headers: {X-Beta: "1"}}
    to: /beta-new
    status: 302
  - from: /café
    to: /cafe/ü?q=ä b
  - from: /go/<path:rest>
    to: /{rest}
"""


@pytest.fixture(scope="module")
def rules(module_tmp: Path) -> Path:
    path = module_tmp / "rules.yaml"
    path.write_text(EXAMPLE.read_text() + EXTRA_RULES, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(rules: Path, module_tmp: Path) -> Iterator[Served]:
    served = start_server(
        rules,
        "--keep-alive-timeout",
        "1",
        "--max-header-bytes",
        "4000",
        "--no-access-log",
        tmp=module_tmp,
    )
    yield served
    served.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _read_response(sock: socket.socket, buffer: bytearray, *, head: bool = False) -> bytes:
    """One whole response from ``sock`` (Content-Length framed); what follows stays in buffer."""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in buffer:
        assert time.monotonic() < deadline, "no response head"
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response; got {bytes(buffer)!r}"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    total = end + (0 if head else length)
    while len(buffer) < total:
        assert time.monotonic() < deadline, "response body cut short"
        chunk = sock.recv(65536)
        assert chunk
        buffer += chunk
    response = bytes(buffer[:total])
    del buffer[:total]
    return response


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _header(response: bytes, name: bytes) -> bytes | None:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_keep_alive_answers_request_after_request(server: Served) -> None:
    with _connect(server.port) as sock:
        buffer = bytearray()
        for path, status in [("/old-page", 301), ("/gone", 410), ("/missing", 404)] * 3:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
            assert _status(_read_response(sock, buffer)) == status


def test_pipelined_requests_are_answered_in_order(server: Served) -> None:
    requests = (
        b"GET /old-page HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /maintenance HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /_waypost/health HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nchoice=no"
        b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with _connect(server.port) as sock:
        sock.sendall(requests)
        buffer = bytearray()
        first = _read_response(sock, buffer)
        head = _read_response(sock, buffer, head=True)
        health = _read_response(sock, buffer)
        post = _read_response(sock, buffer)
        missing = _read_response(sock, buffer)
    assert (_status(first), _header(first, b"location")) == (301, b"/new-page")
    assert _status(head) == 503 and head.endswith(b"\r\n\r\n")
    assert _header(head, b"content-length") == b"9"
    assert _status(health) == 200 and b'"status": "ok"' in health
    assert (_status(post), _header(post, b"location")) == (307, b"/third")
    assert _status(missing) == 404


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /old-page HTTP/1.0\r\n\r\n",
        b"GET /old-page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ],
    ids=["http-1.0", "connection-close"],
)
def test_the_connection_closes_when_the_client_asks(server: Served, request_bytes: bytes) -> None:
    with _connect(server.port) as sock:
        sock.sendall(request_bytes)
        response = _read_response(sock, bytearray())
        assert _status(response) == 301
        assert _header(response, b"connection") == b"close"
        assert _closed_within(sock, 3)


def test_http_1_0_keep_alive_is_kept_and_said(server: Served) -> None:
    with _connect(server.port) as sock:
        buffer = bytearray()
        for _ in range(2):
            sock.sendall(b"GET /old-page HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = _read_response(sock, buffer)
            assert _status(response) == 301
            assert _header(response, b"connection") == b"keep-alive"


def test_a_request_body_is_read_and_dropped(server: Served) -> None:
    body = b"choice=yes&" + b"x" * 200_000
    with _connect(server.port) as sock:
        sock.sendall(
            b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        buffer = bytearray()
        assert _status(_read_response(sock, buffer)) == 307
        sock.sendall(b"GET /old-page HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(_read_response(sock, buffer)) == 301


def test_expect_100_continue_is_answered(server: Served) -> None:
    response = httpx.post(
        server.base + "/second", content=b"choice=yes", headers={"Expect": "100-continue"}
    )
    assert (response.status_code, response.headers["location"]) == (307, "/third")


def test_idle_and_stalled_connections_are_closed(server: Served) -> None:
    idle, stalled, silent = (_connect(server.port) for _ in range(3))
    with idle, stalled, silent:
        idle.sendall(b"GET /old-page HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(_read_response(idle, bytearray())) == 301
        stalled.sendall(b"GET /old-page HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        # keep-alive timeout 1 s: each is closed within 2 s (the three wait side by side)
        assert _closed_within(idle, 4)
        assert _closed_within(stalled, 4)
        assert _closed_within(silent, 4)


def test_a_head_that_never_ends_is_refused_before_it_is_buffered(server: Served) -> None:
    """431 as soon as the head passes the limit; what the client goes on sending is read and
    dropped (so that the answer is not lost to a reset), 64 MiB at the most."""
    with _connect(server.port) as sock:
        sock.sendall(b"GET /old-page HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        sent = 0
        answer = b""
        try:
            while sent < 256 * 1024 * 1024:
                sock.sendall(b"h" * 65536)
                sent += 65536
                if not answer:
                    sock.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        answer = sock.recv(65536)
                    sock.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 256 * 1024 * 1024, "the server kept reading a 256 MB header"
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert httpx.get(server.base + "/old-page").status_code == 301


# The same requests through the ASGI app (WaypostApp called as an ASGI app by httpx) and through
# the connection protocol's direct answers: same status, headers (but the date) and body.
SAME = [
    ("GET", "/old-page?utm=1", {}),
    ("HEAD", "/old-page", {}),
    ("GET", "/2024/5/hello", {}),
    ("GET", "/docs/a/b%20c", {}),
    ("GET", "/gone", {}),
    ("GET", "/maintenance", {}),
    ("GET", "/beta", {"X-Beta": "1"}),
    ("GET", "/beta", {}),
    ("GET", "/caf%C3%A9", {}),
    ("GET", "/go/%2F%2Fevil.com", {}),
    ("GET", "/missing/<script>", {}),
    ("POST", "/second", {}),
    ("GET", "/" + "a" * 9000, {}),
    ("GET", "/old-page", {"X-Big": "b" * 5000}),
]


def _comparable(status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[object, ...]:
    kept = sorted((k.lower(), v) for k, v in headers if k.lower() not in ("date", "connection"))
    return status, kept, body


def test_direct_answers_match_the_asgi_app(server: Served, rules: Path) -> None:
    app = WaypostApp(Engine.from_file(rules), Settings(access_log=False, max_header_bytes=4000))

    async def through_asgi() -> list[tuple[object, ...]]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        out = []
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for method, path, headers in SAME:
                response = await client.request(method, path, headers=headers)
                out.append(
                    _comparable(
                        response.status_code, list(response.headers.multi_items()), response.content
                    )
                )
        return out

    direct = []
    with httpx.Client(base_url=server.base) as client:
        for method, path, headers in SAME:
            response = client.request(method, path, headers=headers)
            direct.append(
                _comparable(
                    response.status_code, list(response.headers.multi_items()), response.content
                )
            )
    assert direct == asyncio.run(through_asgi())
