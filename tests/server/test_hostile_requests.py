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
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import h11
import pytest

from tests._servers import Server
from tests.server.http_corpus import CorpusCase, gunicorn_cases, llhttp_cases
from tests.server.serving import Served, start_server
from waypost.store import open_store

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
        #: When a byte last arrived (see quiet()).
        self._last_activity = time.monotonic()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def quiet(self, seconds: float, *, at_most: float = 3) -> None:
        """Wait until nothing has arrived for ``seconds`` (a request Waypost was still sending,
        refused or not, is then recorded here and not in the next case)."""
        deadline = time.monotonic() + at_most
        while time.monotonic() < deadline:
            idle = time.monotonic() - self._last_activity
            if idle >= seconds:
                return
            time.sleep(seconds - idle)

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
                        self._last_activity = time.monotonic()
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
                        out = h.send(answer) or b""
                        if request.method != b"HEAD":
                            out += h.send(h11.Data(data=payload)) or b""
                        conn.sendall(out + (h.send(h11.EndOfMessage()) or b""))
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


def _parse_answers(data: bytes, *, head: bool = False) -> tuple[list[Answer], bytes]:
    """The complete responses at the start of ``data`` (1xx skipped), and what is left. With
    ``head`` they answer HEAD requests: no body, whatever Content-Length says."""
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
        length = 0 if head else int(headers.get("content-length", "0"))
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
            parsed, _ = _parse_answers(received, head=data.startswith(b"HEAD "))
            if answers is not None and len(parsed) >= answers:
                # Enough: wait a little for anything more (a smuggled second answer).
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.15:
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
    result.answers, result.rest = _parse_answers(received, head=data.startswith(b"HEAD "))
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
    recorder.quiet(0.1)
    recorder.take()  # what an earlier case left behind is not this case's
    return recorder


def settled(upstream: RecordingUpstream, expected: int = 0) -> list[Received]:
    """What the upstream received, once a request Waypost was still sending has had time to
    arrive (a refused request must not arrive, even late). ``expected``: how many requests may
    arrive (the complete ones before a refused one in a pipeline); they are waited for, up to a
    few seconds, so that on a loaded machine one arriving late is not taken for the next case's."""
    time.sleep(0.05)
    deadline = time.monotonic() + 3
    while len(upstream.received) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    upstream.quiet(0.15)
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


CHUNKED = "Transfer-Encoding: chunked\r\n"
CL5 = "Content-Length: 5\r\n"
HELLO = "5\r\nhello\r\n0\r\n\r\n"
END = "0\r\n\r\n"
UPGRADE = "Connection: upgrade\r\nUpgrade: h2c\r\n"


def post(headers: str, body: str, *, version: str = "1.1") -> str:
    return f"POST {{path}} HTTP/{version}\r\n{H}{headers}\r\n{body}"


def get(headers: str = "", *, host: str = H, target: str = "{path}", version: str = "1.1") -> str:
    return f"GET {target} HTTP/{version}\r\n{host}{headers}\r\n"


def host(value: str) -> str:
    return get(host=f"Host: {value}\r\n")


SHAPES = [
    Shape("cl-and-te", post("Content-Length: 4\r\n" + CHUNKED, "0\r\n\r\n"), 400),
    Shape("te-and-cl", post(CHUNKED + "Content-Length: 4\r\n", "0\r\n\r\n"), 400),
    Shape("cl-twice-same", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), 400),
    Shape("cl-twice-differing", post("Content-Length: 5\r\nContent-Length: 3\r\n", "hello"), 400),
    Shape("cl-list", post("Content-Length: 5, 5\r\n", "hello"), 400),
    Shape("cl-plus", post("Content-Length: +5\r\n", "hello"), 400),
    Shape("cl-negative", post("Content-Length: -1\r\n", "hello"), 400),
    Shape("cl-hex", post("Content-Length: 0x5\r\n", "hello"), 400),
    Shape("cl-two-numbers", post("Content-Length: 3 2\r\n", "hello"), 400),
    Shape("cl-overflow", post("Content-Length: 99999999999999999999\r\n", "hello"), 400),
    Shape("chunk-size-negative", post(CHUNKED, "-5\r\nhello\r\n0\r\n\r\n"), 400),
    Shape("chunk-size-0x", post(CHUNKED, "0x5\r\nhello\r\n0\r\n\r\n"), 400),
    Shape("chunk-size-space-before", post(CHUNKED, " 5\r\nhello\r\n0\r\n\r\n"), 400),
    Shape("chunk-size-overflow", post(CHUNKED, "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n"), 400),
    Shape("chunk-size-missing", post(CHUNKED, "\r\nhello\r\n0\r\n\r\n"), 400),
    Shape("chunk-bare-lf", post(CHUNKED, "5\nhello\r\n0\r\n\r\n"), 400),
    Shape("chunk-too-long", post(CHUNKED, "3\r\nhello\r\n0\r\n\r\n"), 400),
    Shape("obs-fold", get("X-Long: one\r\n two\r\n"), 400),
    Shape("obs-fold-te", post("Transfer-Encoding:\r\n chunked\r\n" + CL5, "hello"), 400),
    Shape("bare-lf-header", get("X-A: 1\nX-B: 2\r\n"), 400),
    Shape("bare-lf-request-line", f"GET {{path}} HTTP/1.1\n{H}\r\n", 400),
    Shape("bare-cr-header", get("X-A: 1\rX-B: 2\r\n"), 400),
    Shape("nul-in-value", get("X-A: a\x00b\r\n"), 400),
    Shape("nul-in-name", get("X\x00A: a\r\n"), 400),
    Shape("space-before-colon", post("Content-Length : 5\r\n", "hello"), 400),
    Shape("te-chunked-identity", post("Transfer-Encoding: chunked, identity\r\n", END), 400),
    Shape("te-identity", post("Transfer-Encoding: identity\r\n", ""), 501),
    Shape("te-gzip-chunked", post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), 501),
    Shape("te-twice", post(CHUNKED + CHUNKED, "0\r\n\r\n"), 400),
    Shape("te-xchunked", post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), 501),
    Shape("te-vertical-tab", post("Transfer-Encoding: \x0bchunked\r\n", "0\r\n\r\n"), 400),
    Shape("te-in-http-1-0", post(CHUNKED, "0\r\n\r\n", version="1.0"), 400),
    Shape("no-host", get(host=""), 400),
    Shape("two-hosts", get("Host: evil.example\r\n"), 400),
    Shape("empty-host", get(host="Host:\r\n"), 400),
    Shape("host-with-path", host("site.example/evil"), 400),
    Shape("host-with-userinfo", host("user@site.example"), 400),
    Shape("host-with-space", host("site .example"), 400),
    Shape("host-dot-dot", host("site..example"), 400),
    Shape("host-bad-port", host("site.example:80x"), 400),
    Shape("host-unclosed-ipv6", host("[::1"), 400),
    Shape("asterisk-not-options", get(target="*"), 400),
    Shape("authority-form-not-connect", get(target="site.example:80"), 400),
    Shape("relative-target", get(target="go"), 400),
    Shape("absolute-other-scheme", get(target="ftp://site.example{path}"), 400),
    Shape("absolute-with-userinfo", get(target="http://user@site.example{path}"), 400),
    Shape("absolute-bad-host", get(target="http://site..example{path}"), 400),
    Shape("connect", get(target="site.example:443").replace("GET", "CONNECT"), 405),
    Shape("http-2-0", get(version="2.0"), 505),
    Shape("http-0-9", get(version="0.9"), 505),
    Shape("http-1-2", get(version="1.2"), 400),
    Shape("http-2-prior-knowledge", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    Shape("expect-100-without-host", post("Expect: 100-continue\r\nContent-Length: 5\r\n", "")
          .replace(H, ""), 400),
    # Accepted (each still checked: what reached the upstream, and that no '_' name did).
    Shape("plain", get(), None),
    Shape("http-1-0-without-host", get(host="", version="1.0"), None),
    Shape("host-with-port", host("site.example:8080"), None),
    Shape("host-ipv6", host("[::1]:8080"), None),
    Shape("options-asterisk", get(target="*").replace("GET", "OPTIONS"), None),
    Shape("chunked", post(CHUNKED, "5\r\nhello\r\n0\r\n\r\n"), None),
    Shape("chunked-uppercase", post("Transfer-Encoding: CHUNKED\r\n", HELLO), None),
    Shape("underscore-te-dropped", post("Transfer_Encoding: chunked\r\n" + CL5, "hello"), None),
    Shape("underscore-cl-dropped", post("Content_Length: 99\r\n" + CL5, "hello"), None),
    Shape("expect-100", post("Expect: 100-continue\r\n" + CL5, "hello"), None),
    Shape("upgrade-with-body", post(UPGRADE + CL5, "hello"), None),
]  # fmt: skip

PATHS = {
    "/up": "goes upstream (the ASGI path)",
    "/go": "answered by Waypost itself (the direct path)",
}


@pytest.mark.parametrize("path", list(PATHS), ids=["upstream", "direct"])
@pytest.mark.parametrize("shape", SHAPES, ids=[shape.id for shape in SHAPES])
def test_request_shapes(
    waypost: Served,
    upstream: RecordingUpstream,
    shape: Shape,
    path: str,
) -> None:
    data = shape.data.format(path=path).encode("latin-1")
    if shape.refused is not None:
        got = exchange(waypost.port, data, answers=None)
        assert got.statuses == [shape.refused], got
        assert got.answers[0].headers.get("connection") == "close"
        # The status line, then a sentence saying what is wrong.
        assert got.answers[0].body.strip().count(b"\n") == 1, got.answers[0].body
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
    assert not any(
        name in ("transfer_encoding", "content_length") for name, _ in received[0].headers
    )


REFUSED = [shape for shape in SHAPES if shape.refused is not None]


@pytest.mark.parametrize("shape", REFUSED, ids=[shape.id for shape in REFUSED])
def test_refused_shapes_behind_a_good_request(
    waypost: Served, upstream: RecordingUpstream, shape: Shape
) -> None:
    """The same shapes on a connection that has already sent a good request with the same Host:
    the protocol lets a head it has seen before through without the full check (the fast path
    of on_headers_complete), which must never let one of these through."""
    first = get().format(path="/go")
    data = (first + shape.data.format(path="/go")).encode("latin-1")
    got = exchange(waypost.port, data, answers=None)
    assert got.statuses == [301, shape.refused], got
    assert got.closed
    assert settled(upstream) == []


# -- trailers, the absolute form, pipelining, limits ------------------------------------------


def test_trailer_fields_never_become_request_headers(
    waypost: Served, upstream: RecordingUpstream
) -> None:
    # (llhttp refuses Content-Length and Transfer-Encoding in trailers: see the gunicorn corpus.)
    trailers = b"Host: evil.example\r\nX-Forwarded-Host: evil.example\r\nX-Trailer: yes\r\n"
    data = (
        b"POST /up HTTP/1.1\r\nHost: site.example\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n"
    )
    got = exchange(waypost.port, data, answers=1)
    assert got.statuses == [200], got
    [received] = settled(upstream)
    check_upstream([received], ["/up"])
    headers = dict(received.headers)
    assert headers["x-forwarded-host"] == "site.example"
    assert "x-trailer" not in headers
    assert received.body == b"hello"


@pytest.mark.parametrize(
    ("target", "sent_upstream"),
    [
        ("http://other.example/up?x=1", "/up?x=1"),
        ("HTTP://other.example:8080/up", "/up"),
        ("http://other.example", "/"),
        ("http://other.example?x=1", "/?x=1"),
    ],
    ids=["path-and-query", "port-and-upper-case-scheme", "no-path", "query-only"],
)
def test_an_absolute_target_names_the_host_upstream(
    waypost: Served, upstream: RecordingUpstream, target: str, sent_upstream: str
) -> None:
    data = f"GET {target} HTTP/1.1\r\nHost: site.example\r\n\r\n".encode()
    got = exchange(waypost.port, data, answers=1)
    assert got.statuses == [200], got
    [received] = settled(upstream)
    check_upstream([received], [sent_upstream])
    assert (
        dict(received.headers)["x-forwarded-host"]
        == target.split("//")[1].split("/")[0].split("?")[0]
    )


ABSOLUTE = "GET http://other.example/where HTTP/1.1\r\nHost: site.example\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "statuses"),
    [
        (ABSOLUTE, [301]),
        ("GET /where HTTP/1.1\r\nHost: other.example\r\n\r\n", [301]),
        ("GET /where HTTP/1.1\r\nHost: site.example\r\n\r\n", [200]),
        (
            "POST http://other.example/where HTTP/1.1\r\nHost: site.example\r\n"
            "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            [301],
        ),
        ("GET /up HTTP/1.1\r\nHost: site.example\r\n\r\n" + ABSOLUTE, [200, 301]),
    ],
    ids=["direct", "host-header", "other-host", "expect-100-continue", "pipelined"],
)
def test_rules_see_the_host_of_an_absolute_target(
    waypost: Served, upstream: RecordingUpstream, data: str, statuses: list[int]
) -> None:
    got = exchange(waypost.port, data.encode(), answers=len(statuses))
    assert got.statuses == statuses, got
    if 301 in statuses:
        assert got.answers[statuses.index(301)].headers["location"] == "/other"


GOOD = "GET /up?{n} HTTP/1.1\r\nHost: site.example\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "statuses", "targets", "closes"),
    [
        (GOOD.format(n=1) + "GET /go HTTP/1.1\r\nHost: a\r\n\r\n" + GOOD.format(n=2),
         [200, 301, 200], ["/up?1", "/up?2"], False),
        (GOOD.format(n=1).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n") + GOOD.format(n=2),
         [200], ["/up?1"], True),
        ("GET /go HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + GOOD.format(n=2),
         [301], [], True),
        (GOOD.format(n=1).replace("HTTP/1.1", "HTTP/1.0") + GOOD.format(n=2),
         [200], ["/up?1"], True),
        (GOOD.format(n=1) + "GET /up?2 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + GOOD.format(n=3),
         [200], ["/up?1"], True),
    ],
    ids=[
        "three-in-order",
        "connection-close-upstream",
        "connection-close-direct",
        "http-1-0",
        "refused-second",
    ],
)  # fmt: skip
def test_pipelined_requests(
    waypost: Served,
    upstream: RecordingUpstream,
    data: str,
    statuses: list[int],
    targets: list[str],
    closes: bool,
) -> None:
    """Requests after one that closes the connection, or after a refused one, are never read:
    the client gets the answers before it (never a 400 in the middle of one), then a close."""
    got = exchange(waypost.port, data.encode("latin-1"), answers=None if closes else len(statuses))
    received = settled(upstream)
    assert got.statuses[: len(statuses)] == statuses, got
    assert all(status >= 400 for status in got.statuses[len(statuses) :]), got
    assert got.closed == closes
    check_upstream(received, targets)
    assert len(received) == len(targets)


@pytest.mark.parametrize("path", ["/go", "/up?1"], ids=["answered-here", "upstream"])
@pytest.mark.parametrize(
    "connection",
    ["close\t", "keep-alive, close", "Keep-Alive ,\tCLOSE \t", "upgrade,close"],
)
def test_connection_close_in_any_spelling_closes(
    waypost: Served, upstream: RecordingUpstream, path: str, connection: str
) -> None:
    """A request whose Connection header holds "close" among its tokens, with any case or
    whitespace around it, gets its answer and then a closed connection (not only where llhttp
    reads the header so: httptools 0.8 missed "close" followed by a tab). What follows it on
    the connection is never read."""
    data = (
        f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: {connection}\r\n\r\n"
        "GET /up?2 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    got = exchange(waypost.port, data.encode("latin-1"), answers=None)
    received = settled(upstream, 1 if path == "/up?1" else 0)
    assert got.closed, got
    assert len(got.statuses) == 1, got
    assert [r.target for r in received] == (["/up?1"] if path == "/up?1" else [])


@pytest.mark.parametrize(
    "data",
    [
        GOOD.format(n=1) + "GET /up?2 HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n" + GOOD.format(n=3),
        "POST /up?1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /up?2 HTTP/1.1\r\n"
        "Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "PUT /up?1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nhello",
    ],
    ids=["nul-in-second", "cl-and-te-in-second", "body-longer-than-its-length"],
)
def test_malformed_bytes_behind_a_request(
    waypost: Served, upstream: RecordingUpstream, data: str
) -> None:
    """Bytes the parser refuses, right behind a good request: that request is answered (when
    its answer had begun) or refused in its place with 400, never both, and the connection
    closes. Only that request, complete, may reach the upstream; nothing after it."""
    got = exchange(waypost.port, data.encode("latin-1"), answers=None)
    received = settled(upstream)
    assert got.statuses in ([200], [400]), got
    assert got.closed
    check_upstream(received, ["/up?1"])
    if data.startswith("PUT"):  # its body is not what it said: never sent on
        assert received == []


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (f"GET /up?{'x' * 3000} HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (f"GET /up HTTP/1.1\r\nHost: a\r\nX-Big: {'x' * 9000}\r\n\r\n", 431),
        ("GET /up HTTP/1.1\r\nHost: a\r\n" + "X-Many: x\r\n" * 1000 + "\r\n", 431),
        (f"GET /go?{'x' * 3000} HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ],
    ids=["long-target", "long-header", "many-headers", "long-target-direct"],
)
def test_size_limits(waypost: Served, upstream: RecordingUpstream, data: str, status: int) -> None:
    got = exchange(waypost.port, data.encode(), answers=1)
    assert got.statuses == [status], got
    assert settled(upstream) == []


# -- the admin API reads the Host the rules and the upstream read -------------------------


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    db = f"sqlite:///{tmp_path_factory.mktemp('hostile-admin') / 'waypost.db'}"
    rules = tmp_path_factory.mktemp("hostile-admin-rules") / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    server = Server(db, str(rules))
    store = open_store(db)
    _, key = store.create_key("read", host="admin.example")
    store.close()
    try:
        yield server, key
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("target", "hosts", "status"),
    [
        ("/_waypost/api/me", ["admin.example"], 200),
        ("/_waypost/api/me", ["evil.example"], 401),
        ("http://admin.example/_waypost/api/me", ["evil.example"], 200),
        ("http://evil.example/_waypost/api/me", ["admin.example"], 401),
        ("/_waypost/api/me", ["admin.example", "evil.example"], 400),
        ("/_waypost/api/me", ["evil.example", "admin.example"], 400),
        ("/_waypost/api/me", [], 400),
        ("/_waypost/api/me", ["admin.example/x"], 400),
    ],
    ids=[
        "bound-host",
        "other-host",
        "absolute-target-names-bound-host",
        "absolute-target-names-other-host",
        "two-hosts",
        "two-hosts-reversed",
        "no-host",
        "malformed-host",
    ],
)
def test_the_admin_host_binding_reads_the_same_host(
    admin_site: tuple[Server, str], target: str, hosts: list[str], status: int
) -> None:
    server, key = admin_site
    lines = "".join(f"Host: {host}\r\n" for host in hosts)
    data = f"GET {target} HTTP/1.1\r\n{lines}Authorization: Bearer {key}\r\n\r\n".encode()
    got = exchange(server.port, data, answers=1)
    assert got.statuses == [status], got
    if status == 401:
        assert json.loads(got.answers[0].body)["reason"] == "wrong_host"


# -- the corpora --------------------------------------------------------------------------

# gunicorn refuses these only because of a setting of its own; what Waypost does instead.
GUNICORN_ACCEPTED = {
    "gunicorn/019": "gunicorn (told to trust every proxy) refuses X-Forwarded-Proto and "
    "X-Forwarded-Ssl that disagree; Waypost trusts no proxy here and sets X-Forwarded-Proto itself",
    "gunicorn/040": "gunicorn is set to refuse '_' in header names; Waypost drops those headers, "
    "as nginx does (underscores_in_headers off): the body is framed by Content-Length alone",
    "gunicorn/chunked_07": "gunicorn is set to refuse '_' in header names; Waypost drops "
    "Transfer_Encoding, as nginx does, and reads the chunked body",
    "gunicorn/041": "two Content-Type lines are not framing and not Host: nginx passes them on, "
    "and so does Waypost",
    "gunicorn/rfc9110_trailer_forbidden_host_01": "trailer fields are dropped, never merged "
    "into the headers (RFC 9110 §6.5.1): the upstream sees the Host of the header section",
    "gunicorn/009": "gunicorn's default limit of 100 header lines: nginx does not count them, "
    "nor does Waypost; both bound the size of the head (--max-header-bytes)",
    "gunicorn/limit_header_default_01": "gunicorn's default limit of 8190 bytes per header line: "
    "Waypost bounds all header lines together (8192 bytes here), and this head fits",
}
GUNICORN_SKIPPED = {
    name: "a gunicorn limit per header line or on the number of lines (limit_request_field_size, "
    "limit_request_fields): Waypost bounds the whole head instead, see test_size_limits"
    for name in ("gunicorn/010", "gunicorn/011", "gunicorn/012", "gunicorn/013")
}


def _corpus_params(cases: list[CorpusCase]) -> list[Any]:
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.skip(reason=case.skip)] * bool(case.skip))
        for case in cases
    ]


def check_case(port: int, upstream: RecordingUpstream, case: CorpusCase, *, refused: bool) -> None:
    """Refused: the requests before the refused one may be answered (and reach the upstream),
    then at most one error answer, then the connection closes. Accepted: every request is
    answered by the upstream, which saw each one complete."""
    targets = list(case.targets)
    got = exchange(
        port,
        case.data,
        answers=None if refused else len(targets),
        half_close=refused and case.incomplete,
    )
    received = settled(upstream, len(targets))
    check_upstream(received, targets)
    if refused:
        assert got.closed, got
        answered = [status for status in got.statuses if status < 400]
        assert got.statuses[: len(answered)] == answered, got
        assert len(got.statuses) <= len(answered) + 1, got
        assert len(answered) <= len(targets) and len(received) <= len(targets), got
    else:
        assert got.statuses == [200] * len(targets), got
        assert len(received) == len(targets), received


@pytest.mark.parametrize(
    "case",
    _corpus_params(
        [
            CorpusCase(**{**case.__dict__, "skip": GUNICORN_SKIPPED.get(case.id)})
            for case in gunicorn_cases()
        ],
    ),
)
def test_gunicorn_invalid_requests(
    waypost: Served, upstream: RecordingUpstream, case: CorpusCase
) -> None:
    if case.id in GUNICORN_ACCEPTED:
        check_case(waypost.port, upstream, case, refused=False)
    else:  # gunicorn refuses the first request: nothing may reach the upstream
        check_case(
            waypost.port, upstream, CorpusCase(**{**case.__dict__, "targets": ()}), refused=True
        )


LLHTTP_XFAIL: set[str] = set()
# Requests strict llhttp accepts and Waypost refuses, as nginx does (or for the reason given).
LLHTTP_REFUSED = {
    "llhttp/method/m-search-request": "'*' is a target for OPTIONS only (RFC 9112 §3.2.4)",
    "llhttp/sample/no-http-version": "a request line without a version is HTTP/0.9: 505",
    "llhttp/transfer-encoding/post-with-chunked-as-last-transfer-encoding": "a transfer coding "
    "other than chunked: 501, as nginx answers (Waypost would forward it undecoded)",
    "llhttp/transfer-encoding/post-with-chunked-as-last-transfer-encoding-multiple-headers": "a "
    "transfer coding other than chunked: 501, as nginx answers",
    "llhttp/uri/host-port-and-basic-auth": "userinfo in the target's authority: nginx refuses "
    "it, RFC 9110 §4.2.4 says to treat it as an error",
    **{
        f"llhttp/{name}": "CONNECT: Waypost is not a forward proxy, and answers 405 as nginx does"
        for name in (
            "method/connect-request",
            "method/connect-request-with-caps",
            "method/connect-with-body",
            "uri/underscore-in-hostname",
        )
    },
}
# An upgrade Waypost answers as a plain request, followed at once by bytes of the protocol asked
# for: llhttp stops there (code 22); Waypost reads on as HTTP/1.1, refuses those bytes, and
# answers the request or refuses it in its place (see test_malformed_bytes_behind_a_request).
LLHTTP_AFTER_PLAIN_UPGRADE = {
    "llhttp/connection/emitting-part-of-body-and-pausing",
    "llhttp/connection/upgrade-post-request",
}
# What Waypost sends upstream, when it is not the target as the client wrote it.
LLHTTP_TARGETS = {
    "llhttp/uri/quotes-in-uri": (
        ("/with_%22lovely%22_quotes?foo=\\%22bar\\%22",),
        "httpx percent-encodes '\"' in a target: an equivalent URI (RFC 3986 §2.1)",
    ),
}


@pytest.mark.parametrize("case", _corpus_params(list(llhttp_cases())))
def test_llhttp_requests(waypost: Served, upstream: RecordingUpstream, case: CorpusCase) -> None:
    if case.id in LLHTTP_REFUSED:
        case = CorpusCase(**{**case.__dict__, "targets": ()})
        check_case(waypost.port, upstream, case, refused=True)
        return
    if case.id in LLHTTP_AFTER_PLAIN_UPGRADE:
        check_case(waypost.port, upstream, case, refused=True)
        return
    if case.id in LLHTTP_TARGETS:
        case = CorpusCase(**{**case.__dict__, "targets": LLHTTP_TARGETS[case.id][0]})
    check_case(waypost.port, upstream, case, refused=case.refused)
