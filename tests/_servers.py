"""A real `waypost serve` in a subprocess on a free loopback port, for tests about serving."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_rules(url: str, rules: list[dict[str, Any]]) -> tuple[str, ...]:
    """Make the store at ``url`` (upgraded) hold ``rules``; their store ids, in order."""
    from waypost.store import open_store

    store = open_store(url)
    try:
        store.upgrade()
        store.replace_rules(rules, message="rules")
        return store.load_snapshot().rule_ids
    finally:
        store.close()


class Server:
    """`waypost serve --db URL` in a subprocess on a free loopback port."""

    def __init__(self, db: str | None, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "WAYPOST_PORT": str(self.port)}
        if db is not None:
            env["WAYPOST_DB"] = db
        # A file, not a pipe: a pipe nobody reads would block a chatty server once it fills.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "waypost", "serve", *args, "--no-access-log"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.base + "/_waypost/health", timeout=1)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    output = self.output()
                    self.stop()
                    pytest.fail(f"server did not start: {output}")
                time.sleep(0.05)

    def output(self) -> str:
        """What the server wrote to standard error so far."""
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.base + "/_waypost/health", timeout=2).json())

    def location(self, path: str) -> str | None:
        response = httpx.get(self.base + path, timeout=2, follow_redirects=False)
        return response.headers.get("location")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@contextlib.contextmanager
def running(
    process: subprocess.Popen[bytes],
    port: int,
    *,
    name: str,
    log: Callable[[], str],
    timeout: float = 10,
) -> Iterator[None]:
    """Wait (<= ``timeout`` s) until ``process`` accepts connections on ``port`` of 127.0.0.1,
    failing the test with ``log()`` if it exits or never does; stop it on the way out."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} did not start: {log()}")
                time.sleep(0.02)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that ignores SIGTERM
            process.kill()
            process.wait()
