"""Hostile requests against a real `waypost serve --upstream`, with a recording upstream behind it.

Each case is sent on one raw connection. What is checked, every time:

- the answer: the status Waypost gives (or that it closes the connection);
- the upstream: it received only complete requests, only the ones the client really sent (no
  request smuggled in a body or after a refused one), and never a header name with ``_``.

The cases: request smuggling shapes (written here, sent both to a path that goes upstream and to
one Waypost answers itself, so both of the server's paths are held to the same rules), Host and
request-target rules, trailers, pipelining and size limits, and the two public corpora of strict
HTTP/1.1 parsers in tests/data/http-corpus (see its SOURCES.md): gunicorn's invalid requests and
llhttp's request tests. A corpus case that cannot apply is filtered below with its reason.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import h11
import httptools
import pytest
from _servers import Server
from serving import Served, start_server

from waypost.store import open_store

CORPUS = Path(__file__).parents[1] / "data" / "http-corpus"
BODY_BUFFERING = "body buffering: issue #12 item 5"

RULES = """
rules:
  - from: /go
    to: /gone
  - from: /where
    when: {host: other.example}
    to: /other
"""

# -- the recording upstream -------------------------------------------------------------------


class Received(NamedTuple):
    """One request as the upstream read it (with h11, a strict parser)."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool


class RecordingUpstream:
    """An HTTP/1.1 server on loopback that records every request (complete or not) and answers
    200 with ``x-upstream: yes``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def take(self) -> list[Received]:
        with self._lock:
            got, self.received = self.received, []
        return got

    def _record(self, request: h11.Request, body: list[bytes], complete: bool) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        got = Received(
            request.method.decode(), request.target.decode("latin-1"), headers, b"".join(body),
            complete,
        )  # fmt: skip
        with self._lock:
            self.received.append(got)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        h = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body: list[bytes] = []
        conn.settimeout(10)
        with conn:
            try:
                while True:
                    event = h.next_event()
                    if event is h11.NEED_DATA:
                        data = conn.recv(65536)
                        h.receive_data(data)
                        if not data and request is not None:
                            raise h11.RemoteProtocolError("closed mid-request")
                    elif isinstance(event, h11.Request):
                        request, body = event, []
                    elif isinstance(event, h11.Data):
                        body.append(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        assert request is not None
                        self._record(request, body, complete=True)
                        payload = b"upstream saw " + request.target
                        answer = h11.Response(
                            status_code=200,
                            headers=[("content-length", str(len(payload))), ("x-upstream", "yes")],
                        )
                        conn.sendall(h.send(answer) + h.send(h11.Data(data=payload)))
                        conn.sendall(h.send(h11.EndOfMessage()))
                        request = None
                        h.start_next_cycle()
                    else:  # ConnectionClosed, or PAUSED after a close
                        return
            except (h11.ProtocolError, OSError):
                if request is not None:
                    self._record(request, body, complete=False)


# -- the client side --------------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    answers: list[Answer] = field(default_factory=list)
    closed: bool = False
    rest: bytes = b""

    @property
    def statuses(self) -> list[int]:
        return [answer.status for answer in self.answers]


def _parse_answers(data: bytes) -> tuple[list[Answer], bytes]:
    """The complete responses at the start of ``data`` (1xx skipped), and what is left."""
    answers: list[Answer] = []
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            return answers, data
        lines = data[:head_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        end = head_end + 4 + length
        if len(data) < end:
            return answers, data
        if status >= 200:
            answers.append(Answer(status, headers, data[head_end + 4 : end]))
        data = data[end:]


def exchange(
    port: int, data: bytes, *, answers: int | None, half_close: bool = False, timeout: float = 5
) -> Exchange:
    """Send ``data`` on a new connection; read until the server closes, or (with ``answers``)
    until that many responses came and nothing more for a moment. Bounded by ``timeout``."""
    result = Exchange()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server refused and closed before reading it all
            pass
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            parsed, _ = _parse_answers(received)
            if answers is not None and len(parsed) >= answers:
                # Enough: wait a little for anything more (a smuggled second answer).
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.3:
                    break
                sock.settimeout(0.1)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset: the server closed with our data unread
                result.closed = True
                break
            if not chunk:
                result.closed = True
                break
            received += chunk
            quiet_since = None
    result.answers, result.rest = _parse_answers(received)
    return result


# -- the servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorder() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def waypost(module_tmp: Path, recorder: RecordingUpstream) -> Iterator[Served]:
    rules = module_tmp / "hostile.yaml"
    rules.write_text(RULES, encoding="utf-8")
    served = start_server(
        rules,
        "--upstream",
        recorder.url,
        "--no-access-log",
        "--max-request-line",
        "2048",
        "--max-header-bytes",
        "8192",
        tmp=module_tmp,
    )
    yield served
    served.stop()


@pytest.fixture
def upstream(recorder: RecordingUpstream) -> RecordingUpstream:
    recorder.take()  # what an earlier case left behind is not this case's
    return recorder


def settled(upstream: RecordingUpstream) -> list[Received]:
    """What the upstream received, once a request Waypost was still sending has had time to
    arrive (a refused request must not arrive, even late)."""
    time.sleep(0.2)
    return upstream.take()


def check_upstream(got: list[Received], targets: list[str]) -> None:
    """The upstream saw complete requests only, in order, each one the client sent."""
    assert all(request.complete for request in got), got
    assert [request.target for request in got] == targets[: len(got)], got
    for request in got:
        assert not any("_" in name for name, _ in request.headers), request.headers


# -- request smuggling shapes, and what nginx refuses ----------------------------------------

H = "Host: site.example\r\n"


class Shape(NamedTuple):
    """A request (``{path}`` is filled in) and the status Waypost answers it with when it is
    refused (None: it is accepted)."""

    id: str
    data: str
    refused: int | None


SHAPES = [
    Shape("cl-and-te", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    Shape("te-and-cl", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400),
    Shape("cl-twice-same", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    Shape("cl-twice-differing", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 3\r\n\r\nhello", 400),
    Shape("cl-list", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 5, 5\r\n\r\nhello", 400),
    Shape("cl-plus", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\nhello", 400),
    Shape("cl-negative", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\nhello", 400),
    Shape("cl-hex", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 0x5\r\n\r\nhello", 400),
    Shape("cl-two-numbers", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 3 2\r\n\r\nhello", 400),
    Shape("cl-overflow", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length: 99999999999999999999\r\n\r\nhello", 400),
    Shape("chunk-size-negative", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
    Shape("chunk-size-0x", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    Shape("chunk-size-space-before", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400),
    Shape("chunk-size-overflow", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400),
    Shape("chunk-size-missing", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400),
    Shape("chunk-bare-lf", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
    Shape("chunk-too-long", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400),
    Shape("obs-fold", f"GET {{path}} HTTP/1.1\r\n{H}X-Long: one\r\n two\r\n\r\n", 400),
    Shape("obs-fold-te", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello", 400),
    Shape("bare-lf-header", f"GET {{path}} HTTP/1.1\r\n{H}X-A: 1\nX-B: 2\r\n\r\n", 400),
    Shape("bare-lf-request-line", f"GET {{path}} HTTP/1.1\n{H}\r\n", 400),
    Shape("bare-cr-header", f"GET {{path}} HTTP/1.1\r\n{H}X-A: 1\rX-B: 2\r\n\r\n", 400),
    Shape("nul-in-value", f"GET {{path}} HTTP/1.1\r\n{H}X-A: a\x00b\r\n\r\n", 400),
    Shape("nul-in-name", f"GET {{path}} HTTP/1.1\r\n{H}X\x00A: a\r\n\r\n", 400),
    Shape("space-before-colon", f"POST {{path}} HTTP/1.1\r\n{H}Content-Length : 5\r\n\r\nhello", 400),
    Shape("te-chunked-identity", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    Shape("te-identity", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: identity\r\n\r\n", 501),
    Shape("te-gzip-chunked", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    Shape("te-twice", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    Shape("te-xchunked", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
    Shape("te-vertical-tab", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", 400),
    Shape("te-in-http-1-0", f"POST {{path}} HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    Shape("no-host", "GET {path} HTTP/1.1\r\n\r\n", 400),
    Shape("two-hosts", f"GET {{path}} HTTP/1.1\r\n{H}Host: evil.example\r\n\r\n", 400),
    Shape("empty-host", "GET {path} HTTP/1.1\r\nHost:\r\n\r\n", 400),
    Shape("host-with-path", "GET {path} HTTP/1.1\r\nHost: site.example/evil\r\n\r\n", 400),
    Shape("host-with-userinfo", "GET {path} HTTP/1.1\r\nHost: user@site.example\r\n\r\n", 400),
    Shape("host-with-space", "GET {path} HTTP/1.1\r\nHost: site .example\r\n\r\n", 400),
    Shape("host-dot-dot", "GET {path} HTTP/1.1\r\nHost: site..example\r\n\r\n", 400),
    Shape("host-bad-port", "GET {path} HTTP/1.1\r\nHost: site.example:80x\r\n\r\n", 400),
    Shape("host-unclosed-ipv6", "GET {path} HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    Shape("asterisk-not-options", f"GET * HTTP/1.1\r\n{H}\r\n", 400),
    Shape("authority-form-not-connect", f"GET site.example:80 HTTP/1.1\r\n{H}\r\n", 400),
    Shape("relative-target", f"GET go HTTP/1.1\r\n{H}\r\n", 400),
    Shape("absolute-other-scheme", f"GET ftp://site.example{{path}} HTTP/1.1\r\n{H}\r\n", 400),
    Shape("absolute-with-userinfo", f"GET http://user@site.example{{path}} HTTP/1.1\r\n{H}\r\n", 400),
    Shape("absolute-bad-host", f"GET http://site..example{{path}} HTTP/1.1\r\n{H}\r\n", 400),
    Shape("connect", f"CONNECT site.example:443 HTTP/1.1\r\n{H}\r\n", 405),
    Shape("http-2-0", f"GET {{path}} HTTP/2.0\r\n{H}\r\n", 505),
    Shape("http-0-9", f"GET {{path}} HTTP/0.9\r\n{H}\r\n", 505),
    Shape("http-1-2", f"GET {{path}} HTTP/1.2\r\n{H}\r\n", 400),
    Shape("http-2-prior-knowledge", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    Shape("expect-100-without-host", "POST {path} HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400),
    # Accepted (each still checked: what reached the upstream, and that no '_' name did).
    Shape("plain", f"GET {{path}} HTTP/1.1\r\n{H}\r\n", None),
    Shape("http-1-0-without-host", "GET {path} HTTP/1.0\r\n\r\n", None),
    Shape("host-with-port", "GET {path} HTTP/1.1\r\nHost: site.example:8080\r\n\r\n", None),
    Shape("host-ipv6", "GET {path} HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", None),
    Shape("options-asterisk", f"OPTIONS * HTTP/1.1\r\n{H}\r\n", None),
    Shape("chunked", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", None),
    Shape("chunked-uppercase", f"POST {{path}} HTTP/1.1\r\n{H}Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", None),
    Shape("underscore-te-dropped", f"POST {{path}} HTTP/1.1\r\n{H}Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", None),
    Shape("underscore-cl-dropped", f"POST {{path}} HTTP/1.1\r\n{H}Content_Length: 99\r\nContent-Length: 5\r\n\r\nhello", None),
    Shape("expect-100", f"POST {{path}} HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", None),
]  # fmt: skip

# A malformed body found once the head has gone upstream: until request bodies are buffered,
# what Waypost had read of it goes upstream as a (shorter) complete request.
BAD_BODIES = {
    "chunk-size-negative",
    "chunk-size-0x",
    "chunk-size-space-before",
    "chunk-size-overflow",
    "chunk-size-missing",
    "chunk-bare-lf",
    "chunk-too-long",
}

PATHS = {
    "/up": "goes upstream (uvicorn's ASGI path)",
    "/go": "answered by Waypost itself (the direct path)",
}


@pytest.mark.parametrize("path", list(PATHS), ids=["upstream", "direct"])
@pytest.mark.parametrize("shape", SHAPES, ids=[shape.id for shape in SHAPES])
def test_request_shapes(
    waypost: Served,
    upstream: RecordingUpstream,
    shape: Shape,
    path: str,
    request: pytest.FixtureRequest,
) -> None:
    if shape.id in BAD_BODIES and path == "/up":
        request.applymarker(pytest.mark.xfail(strict=True, reason=BODY_BUFFERING))
    data = shape.data.format(path=path).encode("latin-1")
    if shape.refused is not None:
        got = exchange(waypost.port, data, answers=None)
        assert got.statuses == [shape.refused], got
        assert got.answers[0].headers.get("connection") == "close"
        assert got.closed
        assert settled(upstream) == []
        return
    got = exchange(waypost.port, data, answers=1)
    received = settled(upstream)
    if "* HTTP" in shape.data:
        assert got.statuses and got.statuses[0] < 400, got
        return
    if path == "/go":
        assert got.statuses == [301], got
        assert received == []
        return
    assert got.statuses == [200], got
    assert got.answers[0].headers.get("x-upstream") == "yes"
    check_upstream(received, [path])
    assert len(received) == 1
    if shape.data.startswith("POST"):
        assert received[0].body == b"hello"
    assert not any(name in ("transfer_encoding", "content_length") for name, _ in received[0].headers)
