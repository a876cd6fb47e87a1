"""Requests that ask to upgrade to something other than a tunneled WebSocket are plain requests.

HTTP/1.1 lets a server ignore ``Upgrade`` (RFC 9110 §7.8), and Waypost tunnels only a WebSocket
handshake (a GET without a body) to an upstream. Everything else that asks to upgrade (h2c, a
POST with a body, a WebSocket with a body, no upstream, a rule that answers) is answered as the
request it is: its body is read by its own framing and reaches the upstream whole, and nothing in
that body is ever read as a request of its own. httptools stops at the end of such a head as if
the rest of the connection spoke another protocol; these tests pin that the server does not.
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
  - from: /moved
    to: /elsewhere
  - from: /form
    methods: [POST]
    to: /thanks
    status: 303
  - from: /maintenance
    respond: {status: 503, body: "Back soon"}
"""

H2C = b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
WEBSOCKET = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)
# A body that is itself a request: it must reach the upstream as the body, never as a request.
INNER = b"GET /admin HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"


def _request(
    method: str, path: str, upgrade: bytes, body: bytes, *, chunked: bool = False
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: example.com\r\n".encode() + upgrade
    if chunked:
        framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` Content-Length-framed responses from ``sock`` (bounded)."""
    buffer = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    deadline = time.monotonic() + 5
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            assert time.monotonic() < deadline, f"no response; got {buffer!r}, {out!r}"
            chunk = sock.recv(65536)
            assert chunk, f"closed before a response; got {buffer!r} after {out!r}"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            assert time.monotonic() < deadline, "body cut short"
            chunk = sock.recv(65536)
            assert chunk, "closed in a body"
            buffer += chunk
        out.append((int(lines[0].split(" ")[1]), headers, buffer[:length]))
        buffer = buffer[length:]
    return out


def _send(port: int, pieces: list[bytes], count: int) -> list[tuple[int, dict[str, str], bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.05)  # separate reads: the body does not come with the head
        return _responses(sock, count)


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    with RawUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def proxied(upstream: RawUpstream, module_tmp: Path) -> Iterator[Served]:
    rules = module_tmp / "upgrade.yaml"
    rules.write_text(RULES, encoding="utf-8")
    server = start_server(rules, "--upstream", upstream.url, tmp=module_tmp)
    yield server
    server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()


@pytest.fixture(scope="module")
def alone(module_tmp: Path) -> Iterator[Served]:
    rules = module_tmp / "alone.yaml"
    rules.write_text(RULES, encoding="utf-8")
    server = start_server(rules, tmp=module_tmp)
    yield server
    server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()


PLAIN = {
    "post-h2c": ("POST", H2C, b"hello=world", False),
    "post-h2c-chunked": ("POST", H2C, b"hello=chunked world", True),
    "put-tls": ("PUT", b"Upgrade: TLS/1.0\r\nConnection: Upgrade\r\n", b"payload", False),
    "post-h2c-inner-request": ("POST", H2C, INNER, False),
    "get-websocket-with-body": ("GET", WEBSOCKET, b"not a handshake", False),
    "get-h2c-with-body": ("GET", H2C, INNER, True),
}


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "body-later"])
@pytest.mark.parametrize("case", list(PLAIN), ids=list(PLAIN))
def test_an_upgrade_that_is_not_tunneled_is_a_plain_request_with_its_body(
    proxied: Served, upstream: RawUpstream, case: str, split: bool
) -> None:
    method, upgrade, body, chunked = PLAIN[case]
    request = _request(method, f"/echo/{case}", upgrade, body, chunked=chunked)
    head, _, rest = request.partition(b"\r\n\r\n")
    pieces = [head + b"\r\n\r\n", rest] if split else [request]
    after = b"GET /echo/after HTTP/1.1\r\nHost: example.com\r\n\r\n"
    first, second = _send(proxied.port, [*pieces, after], 2)
    assert first[0] == 200, first
    echoed = json.loads(first[2])
    assert (echoed["method"], echoed["target"], echoed["body"]) == (
        method,
        f"/echo/{case}",
        body.decode(),
    )
    assert "upgrade" not in dict(echoed["headers"])  # hop-by-hop: not passed on
    assert (second[0], json.loads(second[2])["target"]) == (200, "/echo/after")
    assert "/admin" not in [seen.target for seen in upstream.requests]


def test_an_upgrade_pipelined_behind_another_request_is_a_plain_request(
    proxied: Served, upstream: RawUpstream
) -> None:
    # The second request arrives while the first is still with the upstream: it takes the ASGI
    # path, queued behind it.
    requests = (
        b"GET /echo/first HTTP/1.1\r\nHost: example.com\r\n\r\n"
        + _request("POST", "/echo/queued", H2C, INNER)
        + _request("GET", "/echo/queued-ws", WEBSOCKET, b"")
        + b"GET /echo/last HTTP/1.1\r\nHost: example.com\r\n\r\n"
    )
    answers = _send(proxied.port, [requests], 4)
    echoed = [json.loads(body) for _, _, body in answers]
    assert [e["target"] for e in echoed] == [
        "/echo/first",
        "/echo/queued",
        "/echo/queued-ws",
        "/echo/last",
    ]
    assert echoed[1]["body"] == INNER.decode()
    assert "/admin" not in [seen.target for seen in upstream.requests]


ANSWERED = {
    "redirect": ("GET", "/moved", 301, b""),
    "post-redirect": ("POST", "/form", 303, b""),
    "respond": ("POST", "/maintenance", 503, b"Back soon"),
}


@pytest.mark.parametrize("upgrade", [H2C, WEBSOCKET], ids=["h2c", "websocket"])
@pytest.mark.parametrize("case", list(ANSWERED), ids=list(ANSWERED))
@pytest.mark.parametrize("where", ["proxied", "alone"])
def test_an_upgrade_answered_by_a_rule_gets_the_rules_answer(
    request: pytest.FixtureRequest, where: str, case: str, upgrade: bytes
) -> None:
    served: Served = request.getfixturevalue(where)
    method, path, status, text = ANSWERED[case]
    (answer,) = _send(served.port, [_request(method, path, upgrade, INNER)], 1)
    assert answer[0] == status
    assert text in answer[2]


@pytest.mark.parametrize("upgrade", [H2C, WEBSOCKET], ids=["h2c", "websocket"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_an_upstream_an_upgrade_gets_the_404_page(
    alone: Served, method: str, upgrade: bytes
) -> None:
    body = b"" if method == "GET" else INNER
    (answer,) = _send(alone.port, [_request(method, "/nowhere", upgrade, body)], 1)
    assert answer[0] == 404
