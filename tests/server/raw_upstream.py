"""An upstream on loopback that parses what it is sent as HTTP/1.1 and records every request.

Unlike :class:`serving.Upstream`, it keeps parsing a connection as HTTP whatever it answered (even
after a ``101``), like a keep-alive upstream that a request smuggled through the proxy would
reach; and it answers with exactly the bytes a test gives it. Every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools


@dataclass
class Seen:
    """One complete request as the upstream parsed it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def echo(seen: Seen) -> bytes:
    """A 200 whose JSON body says what request arrived (method, target, headers, body)."""
    payload = json.dumps(
        {
            "method": seen.method,
            "target": seen.target,
            "headers": [[k.lower(), v] for k, v in seen.headers],
            "body": seen.body.decode("latin-1"),
        }
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}"
    return head.encode() + b"\r\n\r\n" + payload


@dataclass
class _Parsing:
    url: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


class RawUpstream:
    """Answers each complete request with ``respond(request)`` (raw bytes), after ``delay``."""

    def __init__(self, respond: Callable[[Seen], bytes] = echo, *, delay: float = 0) -> None:
        self.respond = respond
        self.delay = delay
        self.requests: list[Seen] = []
        self.received: list[bytes] = []  # everything each connection sent, once it ended
        self.ended = threading.Semaphore(0)  # released when a connection ends
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def targets(self) -> list[str]:
        return [seen.target for seen in self.requests]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        state = _Parsing()
        upstream = self
        done: list[Seen] = []

        class Callbacks:
            def on_message_begin(self) -> None:
                state.url, state.headers, state.body = b"", [], bytearray()

            def on_url(self, url: bytes) -> None:
                state.url += url

            def on_header(self, name: bytes, value: bytes) -> None:
                state.headers.append((name.decode("latin-1"), value.decode("latin-1")))

            def on_body(self, body: bytes) -> None:
                state.body += body

            def on_message_complete(self) -> None:
                method = parser.get_method().decode("latin-1")
                seen = Seen(method, state.url.decode("latin-1"), state.headers, bytes(state.body))
                upstream.requests.append(seen)
                done.append(seen)

        parser = httptools.HttpRequestParser(Callbacks())
        everything = bytearray()
        conn.settimeout(0.2)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline and not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                everything += data
                while data:
                    try:
                        parser.feed_data(data)
                        data = b""
                    except httptools.HttpParserUpgrade as exc:
                        # An upstream fooled into reading on: what follows is parsed as HTTP.
                        data = data[exc.args[0] :]
                    except httptools.HttpParserError:
                        data = b""
                while done:
                    seen = done.pop(0)
                    time.sleep(self.delay)
                    conn.sendall(self.respond(seen))
        finally:
            conn.close()
            self.received.append(bytes(everything))
            self.ended.release()
