"""Slow clients: a request head must arrive within --header-timeout of its first byte, and a body
must keep moving (--body-timeout between two reads), as nginx's client_header_timeout and
client_body_timeout have it. Otherwise the client gets 408 and the connection is closed.

The deadlines here are 1 s; every bound allows several seconds of slack for a loaded machine.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.raw_upstream import RawUpstream
from tests.server.serving import Served, start_server

RULES = """\
rules:
  - from: /form
    methods: [POST]
    to: /thanks
    status: 303
"""
SLACK = 4.0  # seconds past a deadline a connection may take to be closed, on a busy machine


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    with RawUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def served(upstream: RawUpstream, module_tmp: Path) -> Iterator[Served]:
    rules = module_tmp / "slow.yaml"
    rules.write_text(RULES, encoding="utf-8")
    server = start_server(
        rules,
        "--upstream",
        upstream.url,
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--keep-alive-timeout",
        "5",
        tmp=module_tmp,
    )
    yield server
    server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _trickle(sock: socket.socket, pieces: list[bytes], every: float, until: float) -> bytes:
    """Send a piece every ``every`` seconds, reading what comes back, until the server closes
    (then return what it sent) or ``until`` seconds pass (then fail)."""
    sock.settimeout(every)
    received = b""
    started = time.monotonic()
    for piece in pieces:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return received
        try:
            while chunk := sock.recv(65536):
                received += chunk
            return received  # closed
        except TimeoutError:
            pass
        except ConnectionResetError:
            return received
        if time.monotonic() - started > until:
            break
    pytest.fail(f"the connection was still open after {time.monotonic() - started:.1f} s")


def _closed_by(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends until it closes; fails if it has not closed within ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the connection was still open after {seconds} s; got {received!r}")
    except ConnectionResetError:
        pass
    return received


HEAD_LINES = [b"GET /echo/slow HTTP/1.1\r\n", b"Host: example.com\r\n"] + [
    b"X-Trickle-%d: y\r\n" % i for i in range(40)
]


def test_a_head_trickled_line_by_line_is_cut_off_at_the_deadline(served: Served) -> None:
    # One line every 0.3 s: the connection is never idle for the keep-alive timeout (5 s), but
    # the head is not complete within the header timeout (1 s) of its first byte.
    with _connect(served.port) as sock:
        started = time.monotonic()
        received = _trickle(sock, HEAD_LINES, every=0.3, until=1 + SLACK)
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b"connection: close" in received.lower()
    assert 0.9 < elapsed < 1 + SLACK


def test_many_trickled_heads_are_all_cut_off(served: Served) -> None:
    socks = [_connect(served.port) for _ in range(200)]
    try:
        started = time.monotonic()
        for line in HEAD_LINES[:3]:  # the first bytes of each head, then a line now and then
            for sock in socks:
                sock.sendall(line)
            time.sleep(0.3)
        closed = 0
        for sock in socks:
            remaining = max(0.1, 1 + SLACK - (time.monotonic() - started))
            received = _closed_by(sock, remaining)
            closed += received.startswith(b"HTTP/1.1 408 ")
        assert closed == len(socks)
    finally:
        for sock in socks:
            sock.close()


def test_blank_lines_do_not_keep_a_connection_open(served: Served) -> None:
    # The parser skips CRLF between requests: sent every 0.3 s, they are no request coming, and
    # the connection is closed as idle (keep-alive timeout, 5 s here).
    with _connect(served.port) as sock:
        _trickle(sock, [b"\r\n"] * 100, every=0.3, until=5 + SLACK)


def test_a_head_within_the_deadline_is_answered(served: Served) -> None:
    pieces = [b"GET /echo/in-time HTTP/1.1\r\n", b"Host: example.com\r\n", b"\r\n"]
    with _connect(served.port) as sock:
        for piece in pieces:  # three reads over about 0.4 s: well within 1 s
            sock.sendall(piece)
            time.sleep(0.2)
        sock.settimeout(5)
        received = sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 200 "), received


@pytest.mark.parametrize(
    ("path", "status"),
    [("/echo/stalled", 408), ("/form", 408)],
    ids=["to-the-upstream", "answered-by-a-rule"],
)
def test_a_stalled_body_is_cut_off_and_never_reaches_the_upstream_whole(
    served: Served, upstream: RawUpstream, path: str, status: int
) -> None:
    with _connect(served.port) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n".encode()
            + b"x" * 10
        )
        started = time.monotonic()
        received = _closed_by(sock, 1 + SLACK)
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 %d " % status), received
    assert 0.9 < elapsed < 1 + SLACK
    assert path not in [seen.target for seen in upstream.requests]


def test_a_chunked_body_that_stalls_is_cut_off(served: Served, upstream: RawUpstream) -> None:
    with _connect(served.port) as sock:
        sock.sendall(
            b"POST /echo/chunks HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n5\r\nhello\r\n"
        )
        received = _closed_by(sock, 1 + SLACK)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert "/echo/chunks" not in [seen.target for seen in upstream.requests]


def test_a_slow_body_that_keeps_moving_is_not_cut_off(
    served: Served, upstream: RawUpstream
) -> None:
    # A byte every 0.3 s for about 3 s: longer than the body timeout in all, never idle for it.
    body = b"0123456789"
    with _connect(served.port) as sock:
        sock.sendall(
            b"POST /echo/steady HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        )
        for byte in body:
            time.sleep(0.3)
            sock.sendall(bytes([byte]))
        sock.settimeout(5)
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 "), received
    assert json.loads(received.partition(b"\r\n\r\n")[2])["body"] == body.decode()


def test_a_timeout_is_logged_once_with_status_408(served: Served) -> None:
    with _connect(served.port) as sock:
        sock.sendall(b"GET /echo/logged HTTP/1.1\r\nHost: exa")
        _closed_by(sock, 1 + SLACK)
    deadline = time.monotonic() + 5
    while " 408 " not in served.stdout():
        assert time.monotonic() < deadline, served.stdout()
        time.sleep(0.1)
