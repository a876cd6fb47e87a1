"""Helpers for the server tests: `waypost serve` in a subprocess, raw requests, an upstream.

Every server binds 127.0.0.1 on a free port and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A running `waypost serve`: its base URL, process, and where its output goes."""

    base: str
    port: int
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    _files: list[IO[bytes]] = field(default_factory=list)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for handle in self._files:
            handle.close()
        return self.proc.returncode


def start_server(
    rules: Path,
    *args: str,
    tmp: Path,
    env: dict[str, str] | None = None,
    ca: Path | None = None,
) -> Served:
    """Start `waypost serve RULES ARGS` on a free port and wait (<= 15 s) until it answers.

    With ``ca`` (the certificate a ``--tls-cert`` server presents) it is reached over HTTPS."""
    port = free_port()
    scheme = "https" if ca is not None else "http"
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca)) if ca is not None else True
    )
    stdout_path, stderr_path = tmp / f"serve-{port}.out", tmp / f"serve-{port}.err"
    out, err = stdout_path.open("wb"), stderr_path.open("wb")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WAYPOST_")}
    environ.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "waypost", "serve", str(rules), "--port", str(port), *args],
        env=environ,
        stdout=out,
        stderr=err,
    )
    served = Served(
        f"{scheme}://127.0.0.1:{port}", port, proc, stdout_path, stderr_path, [out, err]
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(served.base + "/_waypost/health", timeout=1, verify=verify)
            return served
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                served.stop()
                pytest.fail(f"server did not start:\n{served.stderr()}")
            time.sleep(0.05)


def raw_request(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, return everything the server sends back until it closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def answer_to_whole_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send all of ``data`` before reading (as most HTTP libraries do), then read the answer
    until the server closes. A reset, while sending or reading, fails the test: the server
    closed with the request unread instead of lingering (see waypost.server._linger)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        except OSError as exc:  # reset, or no longer connected
            pytest.fail(f"the connection was reset instead of answered: {exc}")
    return received


# -- an upstream site on loopback -----------------------------------------------------------


class Upstream:
    """A threaded HTTP/1.1 server standing in for the site behind Waypost.

    - ``/slow?seconds=S``: answers after S seconds;
    - ``/stream``: sends a first chunk, waits for :attr:`release` (<= 5 s), sends the rest;
    - anything else: a JSON echo of the method, raw target, headers and body.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self.first_chunk_sent = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                data = {
                    "method": self.command,
                    "target": self.path,
                    "path": parts.path,
                    "query": parse_qs(parts.query),
                    "headers": [[k.lower(), v] for k, v in self.headers.items()],
                    "body": body.decode("utf-8", "replace"),
                }
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close, X-Hop")
                self.send_header("X-Hop", "must not pass")
                self.send_header("Vary", "Accept-Encoding")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.startswith("/slow"):
                    seconds = float(parse_qs(urlsplit(self.path).query).get("seconds", ["1"])[0])
                    time.sleep(seconds)
                    body = b"slow done"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path.startswith("/stream"):
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"6\r\nfirst\n\r\n")
                    self.wfile.flush()
                    upstream.first_chunk_sent.set()
                    upstream.release.wait(5)
                    self.wfile.write(b"5\r\nrest\n\r\n0\r\n\r\n")
                else:
                    self._echo()

            do_HEAD = do_POST = do_PUT = do_DELETE = _echo

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
