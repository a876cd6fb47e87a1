"""WebSockets through `waypost serve --upstream`: tunneled to a real WebSocket server on loopback.

The upstream is a `websockets` server that first tells the client what request it got (path and
headers) and then echoes every message; the client is `websockets`' own client, so the handshake
and the frames are checked by a real implementation on both sides.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from tests.server.raw_upstream import RawUpstream, Seen
from tests.server.serving import Served, free_port, raw_request, start_server

RULES = """\
rules:
  - from: /old-chat/<path:rest>
    rewrite: /chat/{rest}
    set_headers: {x-rerouted: "yes"}
  - from: /moved
    to: /elsewhere
"""


class EchoUpstream:
    """A WebSocket server: says what request it got, then echoes; counts closed connections."""

    def __init__(self) -> None:
        self.closed = threading.Semaphore(0)
        self.server: Server = serve(self._handle, "127.0.0.1", 0, max_size=None)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws: ServerConnection) -> None:
        try:
            request = ws.request
            assert request is not None
            ws.send(
                json.dumps(
                    {
                        "path": request.path,
                        "headers": [[k.lower(), v] for k, v in request.headers.raw_items()],
                    }
                )
            )
            for message in ws:
                ws.send(message)
        finally:
            self.closed.release()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    upstream = EchoUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def served(echo: EchoUpstream, module_tmp: Path) -> Iterator[Served]:
    rules = module_tmp / "ws.yaml"
    rules.write_text(RULES, encoding="utf-8")
    server = start_server(
        rules, "--upstream", echo.url, "--keep-alive-timeout", "0.5", tmp=module_tmp
    )
    yield server
    server.stop()


def _ws(served: Served, path: str) -> str:
    return f"ws://127.0.0.1:{served.port}{path}"


def _hello(ws: Any) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=5)))


def test_a_websocket_is_tunneled_to_the_upstream_with_forwarded_headers(
    served: Served, echo: EchoUpstream
) -> None:
    with connect(_ws(served, "/chat/room?x=1"), open_timeout=5, max_size=None) as ws:
        hello = _hello(ws)
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=5) == b"\x00\x01\xff"
        big = bytes(range(256)) * 8192  # 2 MiB each way: both directions keep flowing
        ws.send(big)
        assert ws.recv(timeout=10) == big
    headers = dict(hello["headers"])
    assert hello["path"] == "/chat/room?x=1"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{served.port}"
    assert headers["host"] == f"127.0.0.1:{echo.port}"
    assert headers["upgrade"].lower() == "websocket"


def test_a_rewrite_rule_changes_the_path_the_upstream_sees(served: Served) -> None:
    with connect(_ws(served, "/old-chat/lobby"), open_timeout=5) as ws:
        hello = _hello(ws)
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"
    assert hello["path"] == "/chat/lobby"
    assert dict(hello["headers"])["x-rerouted"] == "yes"


def test_a_redirect_rule_answers_the_handshake_itself(served: Served) -> None:
    # A raw handshake: websockets' client would follow the redirect.
    answer = raw_request(
        served.port,
        b"GET /moved HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    head = answer.split(b"\r\n\r\n", 1)[0].decode().lower().split("\r\n")
    assert head[0] == "http/1.1 301 moved permanently"
    assert "location: /elsewhere" in head
    assert "connection: close" in head  # raw_request() returned: the server closed it


def test_a_quiet_websocket_outlives_the_keep_alive_timeout(served: Served) -> None:
    with connect(_ws(served, "/chat/quiet"), open_timeout=5, ping_interval=None) as ws:
        _hello(ws)
        time.sleep(1.5)  # three keep-alive timeouts (0.5 s) without a byte either way
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_closing_the_client_closes_the_upstream_side(served: Served, echo: EchoUpstream) -> None:
    while echo.closed.acquire(blocking=False):  # what earlier tests left
        pass
    with connect(_ws(served, "/chat/bye"), open_timeout=5) as ws:
        _hello(ws)
    assert echo.closed.acquire(timeout=5)


def test_the_access_log_has_the_websocket_with_status_101(served: Served) -> None:
    with connect(_ws(served, "/chat/logged"), open_timeout=5) as ws:
        _hello(ws)
    deadline = time.monotonic() + 5
    while '"GET /chat/logged HTTP/1.1" 101' not in served.stdout():
        assert time.monotonic() < deadline, served.stdout()
        time.sleep(0.1)


def test_an_upstream_that_is_down_is_a_502(module_tmp: Path) -> None:
    rules = module_tmp / "down.yaml"
    rules.write_text("rules: []\n", encoding="utf-8")
    server = start_server(rules, "--upstream", f"http://127.0.0.1:{free_port()}", tmp=module_tmp)
    try:
        with pytest.raises(InvalidStatus) as caught:
            connect(_ws(server, "/chat"), open_timeout=5)
        assert caught.value.response.status_code == 502
    finally:
        server.stop()


def test_without_an_upstream_a_websocket_request_gets_the_404_page(module_tmp: Path) -> None:
    rules = module_tmp / "alone.yaml"
    rules.write_text(RULES, encoding="utf-8")
    server = start_server(rules, tmp=module_tmp)
    try:
        with pytest.raises(InvalidStatus) as caught:
            connect(_ws(server, "/chat"), open_timeout=5)
        assert caught.value.response.status_code == 404
    finally:
        server.stop()


def test_sigterm_ends_open_websockets_and_the_server_exits_promptly(
    echo: EchoUpstream, module_tmp: Path
) -> None:
    rules = module_tmp / "term.yaml"
    rules.write_text("rules: []\n", encoding="utf-8")
    server = start_server(rules, "--upstream", echo.url, tmp=module_tmp)
    with connect(_ws(server, "/chat/open"), open_timeout=5) as ws:
        _hello(ws)
        started = time.monotonic()
        code = server.stop(timeout=10)
        assert code == 0
        assert time.monotonic() - started < 5
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_an_upgrade_request_with_a_body_is_not_tunneled(served: Served) -> None:
    # A WebSocket handshake has no body (RFC 6455): one that has is sent on as a plain request,
    # its body streamed like any other, never buffered whole for a tunnel.
    answer = raw_request(
        served.port,
        b"GET /chat/body HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Content-Length: 5\r\n\r\nhello",
    )
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 ") and b" 101 " not in status, answer[:200]
    with connect(_ws(served, "/chat/after"), open_timeout=5) as ws:  # and the server is fine
        assert _hello(ws)["path"] == "/chat/after"


# -- an upstream that does not switch protocols ---------------------------------------------------
# A tunnel opens only on the upstream's 101 with `Upgrade: websocket` and `Connection: upgrade`,
# as nginx's does. Anything else is answered as a plain response and the connection closed: what
# the client sends after its handshake must never reach the upstream raw, where a keep-alive
# upstream would read it as a second request that skipped the rules and carried a forged
# X-Forwarded-For.

HANDSHAKE = (
    b"GET /chat/room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)
NOT_SWITCHING = {
    "200": (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n\r\nnot a socket",
        200,
        b"not a socket",
    ),
    "200-chunked": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"4\r\nnot \r\n8\r\na socket\r\n0\r\n\r\n",
        200,
        b"not a socket",
    ),
    "400": (
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\nbad request",
        400,
        b"bad request",
    ),
    "101-wrong-upgrade": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        502,
        None,
    ),
    "101-no-connection-upgrade": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        502,
        None,
    ),
    "101-no-upgrade": (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 502, None),
}


def _exchange(port: int, first: bytes, later: bytes, when: str) -> bytes:
    """Send ``first``, then ``later`` (``when``: with the head, before the answer, or after it);
    return what the server sent until it closed (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(first + later if when == "with-head" else first)
        if when == "before-answer":
            sock.sendall(later)
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
            if when == "after-answer" and b"\r\n\r\n" in received:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(later)
                when = "sent"
        else:
            pytest.fail(f"the server did not close the connection; got {received!r}")
    return received


def _body(lines: list[str], rest: bytes) -> bytes:
    """A response body, chunked or not."""
    if "transfer-encoding: chunked" not in lines:
        return rest
    out = b""
    while True:
        size, _, rest = rest.partition(b"\r\n")
        if int(size, 16) == 0:
            return out
        out, rest = out + rest[: int(size, 16)], rest[int(size, 16) + 2 :]


def _answer(seen: Seen) -> bytes:
    """The answer named by the handshake's last path segment (``/chat/<answer>/<when>``)."""
    name = seen.target.split("/")[2]
    return SWITCH if name == "switch" else NOT_SWITCHING[name][0]


@pytest.fixture(scope="module")
def fooled(module_tmp: Path) -> Iterator[tuple[Served, RawUpstream]]:
    """A server in front of an upstream that keeps reading HTTP whatever it answered. It waits
    before answering, so "before-answer" bytes arrive while it thinks."""
    rules = module_tmp / "fooled.yaml"
    rules.write_text("rules: []\n", encoding="utf-8")
    with RawUpstream(_answer, delay=0.3) as upstream:
        server = start_server(rules, "--upstream", upstream.url, tmp=module_tmp)
        yield server, upstream
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()


def _handshake(path: str) -> bytes:
    return HANDSHAKE.replace(b"/chat/room", path.encode())


def _nothing_smuggled(upstream: RawUpstream, path: str) -> None:
    assert upstream.ended.acquire(timeout=5), "the upstream connection was left open"
    assert path in upstream.targets()
    assert "/admin" not in upstream.targets()
    assert b"/admin" not in b"".join(upstream.received)
    assert b"10.0.0.1" not in b"".join(upstream.received)


@pytest.mark.parametrize("when", ["with-head", "before-answer", "after-answer"])
@pytest.mark.parametrize("answer", list(NOT_SWITCHING), ids=list(NOT_SWITCHING))
def test_no_tunnel_without_the_upstreams_101(
    fooled: tuple[Served, RawUpstream], answer: str, when: str
) -> None:
    server, upstream = fooled
    _, status, body = NOT_SWITCHING[answer]
    path = f"/chat/{answer}/{when}"
    received = _exchange(server.port, _handshake(path), SMUGGLED, when)
    head, _, rest = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").lower().split("\r\n")
    assert lines[0].startswith(f"http/1.1 {status} "), received
    assert "connection: close" in lines
    assert not any(line.startswith("upgrade:") for line in lines)
    if body is not None:
        assert _body(lines, rest) == body
    _nothing_smuggled(upstream, path)
    logged = f'"GET {path} HTTP/1.1" {status} '  # with the status the client got
    deadline = time.monotonic() + 5
    while logged not in server.stdout():
        assert time.monotonic() < deadline, server.stdout()
        time.sleep(0.1)


@pytest.mark.parametrize("when", ["with-head", "before-answer"])
def test_bytes_sent_before_the_101_are_not_passed_on_as_frames(
    fooled: tuple[Served, RawUpstream], when: str
) -> None:
    # RFC 6455 §4.1: a client waits for the 101 before it sends anything more. Bytes that came
    # before it are not frames of the upgraded connection: the handshake is refused (400).
    server, upstream = fooled
    path = f"/chat/switch/{when}"
    received = _exchange(server.port, _handshake(path), SMUGGLED, when)
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert b" 101 " not in received
    _nothing_smuggled(upstream, path)
