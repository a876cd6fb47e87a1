"""Request bodies going upstream: a body the client never finished never reaches the upstream as
a complete request (issue #12, items 5 and 11).

Every test talks to a real `waypost serve` over a real socket, in front of a recording upstream
that parses what it receives with h11 and notes whether each request arrived complete. Settings
are given through WAYPOST_* variables, which an older server ignores: the tests then fail on
what it does, not on an unknown flag.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest

from tests._servers import Server
from tests.server.serving import Served, answer_to_whole_request, start_server
from waypost.server.bodies import (
    BodyDirectory,
    BodyIncomplete,
    BodyTooLarge,
    read_body,
    stream_body,
)
from waypost.store import open_store

LIMIT = 65_536
MEMORY = 1_024
RULES = """
rules:
  - from: /legacy/<path:rest>
    rewrite: /v2/{rest}
"""


# -- a recording upstream -------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    complete: bool = False


@dataclass
class RecordingUpstream:
    """An HTTP/1.1 server on loopback that records every request it is sent, complete or not,
    and answers a complete one 200 with its body's length and SHA-256 (then closes)."""

    seen: list[Seen] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            # Started before requests_for() can see it: joining a thread not yet started raises.
            with self.lock:
                thread.start()
                self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        parser = h11.Connection(h11.SERVER)
        current: Seen | None = None
        conn.settimeout(10)
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                parser.receive_data(data)
                while True:
                    try:
                        event = parser.next_event()
                    except h11.RemoteProtocolError:
                        return
                    if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                        break
                    if isinstance(event, h11.Request):
                        headers = {k.decode(): v.decode() for k, v in event.headers}
                        current = Seen(event.method.decode(), event.target.decode(), headers)
                        with self.lock:
                            self.seen.append(current)
                    elif isinstance(event, h11.Data) and current is not None:
                        current.body += event.data
                    elif isinstance(event, h11.EndOfMessage) and current is not None:
                        current.complete = True
                        digest = hashlib.sha256(current.body).hexdigest()
                        payload = json.dumps({"size": len(current.body), "sha256": digest})
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                            % (len(payload), payload.encode())
                        )
                        return
                if not data:
                    return

    def requests_for(self, path: str) -> list[Seen]:
        """What arrived for ``path``, once every connection the upstream accepted has ended."""
        deadline = time.monotonic() + 5
        with self.lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.01))
        with self.lock:
            return [seen for seen in self.seen if seen.target.startswith(path)]

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def recording() -> Iterator[RecordingUpstream]:
    upstream = RecordingUpstream()
    yield upstream
    upstream.close()


def _serve(tmp: Path, upstream: RecordingUpstream, **env: str) -> Served:
    tmp.mkdir(parents=True, exist_ok=True)
    rules = tmp / "bodies.yaml"
    rules.write_text(RULES, encoding="utf-8")
    spool = tmp / "spool"
    spool.mkdir(exist_ok=True)
    environ = {
        "WAYPOST_MAX_BODY_BYTES": str(LIMIT),
        "WAYPOST_BODY_BUFFER_BYTES": str(MEMORY),
        "TMPDIR": str(spool),
        **env,
    }
    return start_server(rules, "--upstream", upstream.url, tmp=tmp, env=environ)


@pytest.fixture(scope="module")
def buffered(module_tmp: Path, recording: RecordingUpstream) -> Iterator[Served]:
    served = _serve(module_tmp / "buffered", recording)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def streaming(module_tmp: Path, recording: RecordingUpstream) -> Iterator[Served]:
    folder = module_tmp / "streaming"
    served = _serve(folder, recording, WAYPOST_REQUEST_BUFFERING="off", WAYPOST_BODY_TIMEOUT="1")
    yield served
    served.stop()


# -- talking to the server ------------------------------------------------------------------


def _exchange(port: int, data: bytes, *, finish: bool = True, timeout: float = 5) -> bytes:
    """Send ``data``; with ``finish``, end the sending side (the client is done, whether or not
    its request is); return what the server sends until it closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if finish:
            sock.shutdown(socket.SHUT_WR)
        return _read_all(sock, timeout)


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            chunks.append(b"<still open>")
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _ask(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send a whole request and return its response (head and Content-Length body), keeping the
    connection open meanwhile: a client that half-closes is one that went away."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_response(sock)


def _read_response(sock: socket.socket) -> bytes:
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(65536)
        if not chunk:
            return response
        response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _status(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])


def _logged(served: Served, target: str) -> None:
    """Wait (<= 5 s) for the access log line of ``target``: the server is done with it."""
    deadline = time.monotonic() + 5
    while f" {target} " not in served.stdout() and time.monotonic() < deadline:
        time.sleep(0.05)


def _head(method: str, target: str, *headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: site.example", *headers, "", ""]
    return "\r\n".join(lines).encode()


CHUNKED = "Transfer-Encoding: chunked"

# (id, method, path, headers, body sent before the client stops, status the client gets)
FAILING_BODIES = [
    ("chunked-aborted", "POST", "/upload", [CHUNKED], b"5\r\nhello\r\n", None),
    ("bad-chunk-size", "POST", "/upload", [CHUNKED], b"5\r\nhello\r\nzz\r\n", 400),
    # 501, as nginx answers a transfer coding it does not know (waypost.server.request_head).
    ("invalid-transfer-encoding", "POST", "/upload", ["Transfer-Encoding: gzip"], b"hello", 501),
    ("content-length-longer-than-sent", "POST", "/upload", ["Content-Length: 100"], b"hello", None),
    # The bytes past the body are not a request: the connection is answered 400 and closed
    # before the request could be answered, so it is not sent on either.
    ("content-length-shorter-than-sent", "PUT", "/upload", ["Content-Length: 3"], b"hello", 400),
    # Framed as chunked, but still gzipped: without the header the upstream would take the
    # gzip bytes for the body.
    (
        "transfer-coding-the-upstream-would-not-see",
        "POST",
        "/upload",
        ["Transfer-Encoding: gzip, chunked"],
        b"5\r\nhello\r\n0\r\n\r\n",
        501,
    ),
    ("rewrite-chunked-aborted", "POST", "/legacy/upload", [CHUNKED], b"5\r\nhello\r\n", None),
    ("get-with-an-aborted-body", "GET", "/upload", [CHUNKED], b"5\r\nhello\r\n", None),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [case[1:] for case in FAILING_BODIES],
    ids=[case[0] for case in FAILING_BODIES],
)
def test_a_body_that_fails_never_reaches_the_upstream(
    buffered: Served,
    recording: RecordingUpstream,
    request: pytest.FixtureRequest,
    method: str,
    path: str,
    headers: list[str],
    body: bytes,
    status: int | None,
) -> None:
    target = f"{path}/{request.node.callspec.id}-buffered"
    response = _exchange(buffered.port, _head(method, target, *headers) + body)
    assert _status(response) == status, response
    _logged(buffered, target)
    upstream_path = target.replace("/legacy/", "/v2/")
    assert recording.requests_for(upstream_path) == [], "the upstream was sent the request"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [case[1:] for case in FAILING_BODIES if "chunk" in case[0] or "longer" in case[0]],
    ids=[case[0] for case in FAILING_BODIES if "chunk" in case[0] or "longer" in case[0]],
)
def test_streaming_a_body_that_fails_aborts_the_upstream_request(
    streaming: Served,
    recording: RecordingUpstream,
    request: pytest.FixtureRequest,
    method: str,
    path: str,
    headers: list[str],
    body: bytes,
    status: int | None,
) -> None:
    target = f"{path}/{request.node.callspec.id}-streaming"
    response = _exchange(streaming.port, _head(method, target, *headers) + body)
    assert _status(response) == status, response
    _logged(streaming, target)
    upstream_path = target.replace("/legacy/", "/v2/")
    seen = recording.requests_for(upstream_path)
    assert not [s for s in seen if s.complete], "the upstream saw a complete request"


def test_streaming_a_body_that_stops_arriving_aborts_the_upstream_request(
    streaming: Served, recording: RecordingUpstream
) -> None:
    """--body-timeout 1: the client sends 5 bytes and then nothing, but stays connected."""
    target = "/upload/stalled-streaming"
    data = _head("POST", target, CHUNKED) + b"5\r\nhello\r\n"
    started = time.monotonic()
    response = _exchange(streaming.port, data, finish=False, timeout=8)
    assert _status(response) == 408, response
    assert time.monotonic() - started < 7
    seen = recording.requests_for(target)
    assert [s.complete for s in seen] == [False]


def test_a_streamed_body_arrives_streamed_and_intact(
    streaming: Served, recording: RecordingUpstream
) -> None:
    body = os.urandom(40_000)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:20_000], body[20_000:]))
    target = "/upload/streamed-intact"
    response = _ask(streaming.port, _head("POST", target, CHUNKED) + chunked + b"0\r\n\r\n")
    assert _status(response) == 200, response
    [seen] = recording.requests_for(target)
    assert (seen.complete, seen.body == body) == (True, True)
    assert seen.headers.get("transfer-encoding") == "chunked"


OVER_LIMIT = [
    ("content-length", [f"Content-Length: {LIMIT + 1}"], b""),
    ("content-length-expect-100", [f"Content-Length: {LIMIT + 1}", "Expect: 100-continue"], b""),
    ("chunked", [CHUNKED], b"".join(b"2710\r\n" + b"x" * 10_000 + b"\r\n" for _ in range(7))),
]


@pytest.mark.parametrize(
    ("headers", "body"), [case[1:] for case in OVER_LIMIT], ids=[case[0] for case in OVER_LIMIT]
)
@pytest.mark.parametrize("mode", ["buffered", "streaming"])
def test_a_body_over_the_limit_gets_413_at_once(
    request: pytest.FixtureRequest,
    recording: RecordingUpstream,
    mode: str,
    headers: list[str],
    body: bytes,
) -> None:
    """Refused as soon as the limit is known to be passed: the client is still connected and
    has not finished (a Content-Length body is not sent at all), and the connection closes."""
    served: Served = request.getfixturevalue(mode)
    target = f"/upload/over-{request.node.callspec.id.replace('-', '_')}"
    response = _exchange(served.port, _head("POST", target, *headers) + body, finish=False)
    assert _status(response) == 413, response  # not 100 Continue first: the body is unwanted
    assert not response.endswith(b"<still open>"), "the connection was not closed"
    seen = recording.requests_for(target)
    assert not [s for s in seen if s.complete]
    if mode == "buffered":
        assert seen == []


@pytest.mark.parametrize("mode", ["buffered", "streaming"])
def test_a_client_that_sends_the_whole_body_before_reading_gets_the_413(
    request: pytest.FixtureRequest, mode: str
) -> None:
    """A client that sends all of a too large body before it reads (as most HTTP libraries
    do) gets the 413 answered at once, not a reset: the connection lingers instead of closing
    with the body unread. Tried many times: a reset is a race that a single try can win."""
    served: Served = request.getfixturevalue(mode)
    body = b"x" * (LIMIT * 40)
    data = _head("POST", "/upload/whole", f"Content-Length: {len(body)}") + body
    for _ in range(15):
        received = answer_to_whole_request(served.port, data)
        assert _status(received) == 413, received[:80]


def test_expect_100_continue_is_answered_by_waypost(
    buffered: Served, recording: RecordingUpstream
) -> None:
    target = "/upload/expect"
    with socket.create_connection(("127.0.0.1", buffered.port), timeout=5) as sock:
        sock.sendall(_head("POST", target, "Content-Length: 5", "Expect: 100-continue"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        response = _read_response(sock)
    assert _status(response) == 200, response
    [seen] = recording.requests_for(target)
    assert (seen.body, "expect" in seen.headers) == (b"hello", False)


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_body_past_the_memory_threshold_is_spooled_and_sent_with_its_length(
    tmp_path: Path, recording: RecordingUpstream, framing: str
) -> None:
    served = _serve(tmp_path, recording)
    try:
        body = os.urandom(50_000)  # past the 1 KiB held in memory, under the 64 KiB limit
        target = f"/upload/spooled-{framing}"
        if framing == "chunked":
            pieces = [body[i : i + 7_000] for i in range(0, len(body), 7_000)]
            framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            data = _head("POST", target, CHUNKED) + framed
        else:
            data = _head("POST", target, f"Content-Length: {len(body)}") + body
        response = _ask(served.port, data)
        assert _status(response) == 200, response
        answer = json.loads(response.partition(b"\r\n\r\n")[2])
        assert answer == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        [seen] = recording.requests_for(target)
        # Like nginx: a buffered body goes upstream with its length, never chunked.
        assert seen.headers.get("content-length") == str(len(body))
        assert "transfer-encoding" not in seen.headers
        # The spool is a private directory, and holds nothing once the request is done.
        [spool] = (tmp_path / "spool").glob("waypost-bodies-*")
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        assert list(spool.iterdir()) == []
    finally:
        served.stop()
    assert list((tmp_path / "spool").glob("waypost-bodies-*")) == []


@pytest.mark.parametrize(
    "head",
    [
        _head("POST", "{}", CHUNKED) + b"5\r\nhello\r\n",
        _head("POST", "{}", "Content-Length: 100") + b"hello",
    ],
    ids=["chunked", "content-length"],
)
def test_an_aborted_upload_is_one_info_line(
    buffered: Served, request: pytest.FixtureRequest, head: bytes
) -> None:
    target = f"/upload/logged-{request.node.callspec.id}"
    _exchange(buffered.port, head.replace(b"{}", target.encode()))
    _logged(buffered, target)
    time.sleep(0.2)  # anything written after the access log line
    stderr = buffered.stderr()
    lines = [line for line in stderr.splitlines() if target in line]
    assert len(lines) == 1, stderr
    assert "[INFO]" in lines[0] and "closed the connection" in lines[0]
    assert "Traceback" not in stderr and "Exception in ASGI" not in stderr


# -- the admin API --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_server(module_tmp: Path) -> Iterator[tuple[Server, str]]:
    db = f"sqlite:///{module_tmp / 'admin.db'}"
    store = open_store(db)
    _, key = store.create_key("write", note="test")
    store.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAYPOST_MAX_BODY_BYTES", "2000")
        server = Server(db)
    yield server, key
    server.stop()


ADMIN_BODIES = [
    ("content-length", [f"Content-Length: {3000}"], b""),
    ("chunked", [CHUNKED], b"".join(b"3e8\r\n" + b" " * 1000 + b"\r\n" for _ in range(3))),
]


@pytest.mark.parametrize(
    ("headers", "body"), [case[1:] for case in ADMIN_BODIES], ids=[case[0] for case in ADMIN_BODIES]
)
def test_admin_api_bodies_are_bounded_before_the_key_is_checked(
    admin_server: tuple[Server, str], headers: list[str], body: bytes
) -> None:
    """FastAPI reads a body whole, into memory, before it checks the caller's key: the server
    bounds it first."""
    server, _ = admin_server
    head = _head("POST", "/_waypost/api/rules", "Content-Type: application/json", *headers)
    response = _exchange(server.port, head + body, finish=False)
    assert _status(response) == 413, response
    assert not response.endswith(b"<still open>"), "the connection was not closed"
    assert json.loads(response.partition(b"\r\n\r\n")[2])["error"] == "too_large"


def test_admin_api_bodies_under_the_limit_still_arrive(admin_server: tuple[Server, str]) -> None:
    server, key = admin_server
    response = httpx.post(
        server.base + "/_waypost/api/rules",
        json={"rule": {"from": "/bounded", "to": "/fine"}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text


# -- the parts, in process ------------------------------------------------------------------


def _receiver(*messages: dict[str, Any]) -> Callable[[], Awaitable[dict[str, Any]]]:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if not queue:
            await asyncio.sleep(3600)  # a client that sends nothing more
        return queue.pop(0)

    return receive


def _piece(body: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


DISCONNECT = {"type": "http.disconnect"}


@pytest.mark.parametrize(
    ("messages", "on_disk"),
    [
        ([_piece(b"a=1", more=False)], False),
        ([_piece(b"a" * 600), _piece(b"b" * 400), _piece(b"", more=False)], False),
        ([_piece(b"a" * 600), _piece(b"b" * 600), _piece(b"c", more=False)], True),
        ([_piece(b"a" * 2000, more=False)], True),
    ],
    ids=["whole", "pieces-in-memory", "pieces-spilled", "whole-spilled"],
)
def test_read_body_holds_up_to_the_threshold_in_memory(
    tmp_path: Path, messages: list[dict[str, Any]], on_disk: bool
) -> None:
    directory = BodyDirectory()

    async def read() -> bytes:
        body = await read_body(_receiver(*messages), limit=LIMIT, memory=1024, directory=directory)
        assert body.on_disk is on_disk
        content = body.content()
        data = content if isinstance(content, bytes) else b"".join([c async for c in content])
        body.close()
        return data

    expected = b"".join(m["body"] for m in messages)
    assert asyncio.run(read()) == expected
    directory.remove()


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([_piece(b"a" * 600), DISCONNECT], BodyIncomplete),
        ([DISCONNECT], BodyIncomplete),
        ([_piece(b"a" * 2000), _piece(b"b" * 2000)], BodyTooLarge),
        ([_piece(b"a" * 3001, more=False)], BodyTooLarge),
    ],
    ids=["closed-midway", "closed-at-once", "grew-past-the-limit", "past-the-limit"],
)
def test_read_body_fails_for_a_body_that_does(
    messages: list[dict[str, Any]], error: type[Exception]
) -> None:
    directory = BodyDirectory()
    receive = _receiver(*messages)
    with pytest.raises(error):
        asyncio.run(read_body(receive, limit=3000, memory=1024, directory=directory))
    directory.remove()


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([_piece(b"hello"), DISCONNECT], BodyIncomplete),
        ([_piece(b"a" * 2000), _piece(b"b" * 2000)], BodyTooLarge),
    ],
    ids=["closed-midway", "grew-past-the-limit"],
)
def test_stream_body_raises_out_of_the_iterator(
    messages: list[dict[str, Any]], error: type[Exception]
) -> None:
    async def drain() -> list[bytes]:
        return [chunk async for chunk in stream_body(_receiver(*messages), limit=3000)]

    with pytest.raises(error):
        asyncio.run(drain())
