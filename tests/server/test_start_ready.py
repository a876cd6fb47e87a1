"""The port refuses connections until the rules are loaded, and then answers at once: a TCP
health check (a load balancer's, systemd's, Kubernetes') never passes while requests would hang.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests._servers import free_port


def _ask(port: int) -> bytes | None:
    """The first bytes of the answer to a GET on a new connection; None when the connection is
    refused. An accepted connection must be answered within 2 s."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return None
    with sock:
        sock.sendall(b"GET /old/7 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return sock.recv(64)  # socket.timeout here: accepted, but not answered


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_port_answers_whatever_connection_it_accepts(tmp_path: Path, workers: str) -> None:
    rules = tmp_path / "rules.csv"
    # Enough rules that loading them takes a while (about a second here).
    rules.write_text(
        "from,to,status\n" + "".join(f"/old/{n},/new/{n},301\n" for n in range(200_000)),
        encoding="utf-8",
    )
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "waypost",
                "serve",
                str(rules),
                "--port",
                str(port),
                "--workers",
                workers,
                "--no-access-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            refused = 0
            deadline = time.monotonic() + 60
            while True:
                answer = _ask(port)
                if answer is not None:
                    break
                refused += 1
                assert proc.poll() is None and time.monotonic() < deadline, (
                    log.seek(0) or log.read().decode()
                )
                time.sleep(0.01)
            assert answer.startswith(b"HTTP/1.1 301"), answer
            assert refused > 0  # the load was seen: connections refused, not queued
            for _ in range(20):  # and from then on, every connection is answered
                assert (_ask(port) or b"").startswith(b"HTTP/1.1 301")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
