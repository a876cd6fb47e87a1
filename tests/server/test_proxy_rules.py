"""Proxy rules: a ``rewrite`` to an absolute URL sends the request to that origin, through the
standalone server's proxy (the one ``--upstream`` uses), to real origins on loopback.

The origins here keep their connections alive and echo the client port they saw, so that the
reuse of a connection shows; the https one presents a certificate made by ``openssl`` for
127.0.0.1, which the server trusts only when told to (``SSL_CERT_FILE``).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.server.serving import Served, Upstream, free_port, raw_request, start_server
from waypost.engine import Engine
from waypost.rules.model import Rewrite, Rule, RuleSet
from waypost.server.core import WaypostServer
from waypost.server.proxy import proxy_refusal


class Origin:
    """An HTTP/1.1 origin that keeps connections alive and echoes what it got (JSON), with the
    client's port; ``/slow`` answers after 3 s. With ``tls`` (cert, key) it speaks HTTPS."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _echo(self) -> None:
                if self.path.startswith("/slow"):
                    threading.Event().wait(3)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                payload = json.dumps(
                    {
                        "method": self.command,
                        "target": self.path,
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "headers": [[k.lower(), v] for k, v in self.headers.items()],
                        "body": body.decode("utf-8", "replace"),
                        "port": self.client_address[1],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Keep-Alive", "timeout=5")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _echo

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "origin.pem", folder / "origin.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


def _rules(folder: Path, port: int, *, scheme: str = "http", extra: str = "") -> Path:
    path = folder / f"proxy-{scheme}-{port}.yaml"
    path.write_text(
        f"""\
proxy_hosts: ["127.0.0.1"]
rules:
  - from: /api/<path:rest>
    rewrite: {scheme}://127.0.0.1:{port}/v1/{{rest}}?via=waypost
    set_headers: {{X-Api-Key: "k1", X-Forwarded-Host: "spoofed"}}
  - from: /slow
    rewrite: {scheme}://127.0.0.1:{port}/slow
  - from: /old
    to: /new
{extra}""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def served(module_tmp: Path, origin: Origin) -> Iterator[Served]:
    rules = _rules(module_tmp, origin.port)
    server = start_server(
        rules,
        "--no-access-log",
        "--max-body-bytes",
        "1000",
        "--upstream-timeout",
        "1",
        tmp=module_tmp,
    )
    yield server
    server.stop()


def _headers(data: dict[str, Any]) -> dict[str, str]:
    return {name: value for name, value in data["headers"]}


def test_a_proxy_rule_reaches_its_origin_without_an_upstream(
    served: Served, origin: Origin
) -> None:
    response = httpx.get(
        served.base + "/api/items/4?q=1&via=client",
        headers={
            "Host": "site.example",
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",  # forged by the client: replaced
            "X-Forwarded-Host": "forged.example",
            "Connection": "X-Secret",
            "X-Secret": "hop-by-hop",
            "TE": "trailers",
        },
    )
    assert response.status_code == 200, served.stderr()
    data = response.json()
    assert data["path"] == "/v1/items/4"
    # The target's own parameter wins; the request's others are carried over.
    assert data["query"] == {"via": ["waypost"], "q": ["1"]}
    headers = _headers(data)
    assert headers["host"] == f"127.0.0.1:{origin.port}"
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "site.example"
    assert headers["x-api-key"] == "k1"
    assert "x-secret" not in headers and "te" not in headers
    # The origin's Keep-Alive is hop-by-hop: it stays between the origin and Waypost.
    assert "keep-alive" not in response.headers


def test_redirects_still_answered_by_waypost(served: Served) -> None:
    response = httpx.get(served.base + "/old", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (301, "/new")


def test_a_path_no_rule_proxies_gets_the_404_page(served: Served) -> None:
    assert httpx.get(served.base + "/elsewhere").status_code == 404


def test_the_connection_to_the_origin_is_reused(served: Served) -> None:
    ports = {httpx.get(served.base + f"/api/n/{n}").json()["port"] for n in range(4)}
    assert len(ports) == 1


def test_the_body_goes_to_the_origin_within_the_limit(served: Served) -> None:
    response = httpx.post(served.base + "/api/form", content=b"a=1&b=2")
    data = response.json()
    assert (data["method"], data["body"]) == ("POST", "a=1&b=2")
    assert httpx.post(served.base + "/api/form", content=b"x" * 2000).status_code == 413


def test_a_dot_segment_does_not_reach_the_origin(served: Served) -> None:
    # Sent to its normal form first (outside /api/, so never proxied)...
    answer = raw_request(
        served.port, b"GET /api/%2e%2e/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 308 ") and b"\r\nlocation: /admin\r\n" in answer.lower()
    # ...and a backslash spelling, which is no dot segment to the rules, is refused.
    answer = raw_request(
        served.port, b"GET /api/a%5C..%5Cb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_a_header_with_a_line_break_never_reaches_the_origin(served: Served) -> None:
    answer = raw_request(
        served.port,
        b"GET /api/x HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Injected: 1\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_a_slow_origin_is_504(served: Served) -> None:
    response = httpx.get(served.base + "/slow", timeout=10)
    assert response.status_code == 504
    assert "upstream timed out: GET http://127.0.0.1:" in served.stderr()


def test_an_unreachable_origin_is_502(module_tmp: Path) -> None:
    rules = _rules(module_tmp, free_port())
    server = start_server(rules, "--no-access-log", tmp=module_tmp)
    try:
        assert httpx.get(server.base + "/api/x").status_code == 502
    finally:
        server.stop()


def test_with_an_upstream_pass_goes_there_and_proxy_to_the_origin(
    module_tmp: Path, origin: Origin, upstream: Upstream
) -> None:
    rules = _rules(module_tmp, origin.port)
    server = start_server(rules, "--upstream", upstream.url, "--no-access-log", tmp=module_tmp)
    try:
        passed = httpx.get(server.base + "/page").json()
        assert _headers(passed)["host"] == upstream.url.removeprefix("http://")
        proxied = httpx.get(server.base + "/api/x").json()
        assert _headers(proxied)["host"] == f"127.0.0.1:{origin.port}"
        assert proxied["path"] == "/v1/x"
    finally:
        server.stop()


# -- https origins --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_origin(module_tmp: Path) -> Iterator[tuple[Origin, Path]]:
    cert, key = _certificate(module_tmp)
    server = Origin((cert, key))
    yield server, cert
    server.close()


def test_an_https_origin_is_verified_and_reached(
    module_tmp: Path, tls_origin: tuple[Origin, Path]
) -> None:
    origin, cert = tls_origin
    rules = _rules(module_tmp, origin.port, scheme="https")
    server = start_server(
        rules, "--no-access-log", tmp=module_tmp, env={"SSL_CERT_FILE": str(cert)}
    )
    try:
        response = httpx.get(server.base + "/api/secure?x=1")
        assert response.status_code == 200, server.stderr()
        data = response.json()
        assert (data["path"], data["query"]) == ("/v1/secure", {"via": ["waypost"], "x": ["1"]})
        assert _headers(data)["host"] == f"127.0.0.1:{origin.port}"
    finally:
        server.stop()


def test_an_https_origin_with_a_certificate_not_trusted_is_502(
    module_tmp: Path, tls_origin: tuple[Origin, Path]
) -> None:
    origin, _ = tls_origin
    rules = _rules(module_tmp, origin.port, scheme="https")
    server = start_server(rules, "--no-access-log", tmp=module_tmp)
    try:
        assert httpx.get(server.base + "/api/x").status_code == 502
        assert "CERTIFICATE_VERIFY_FAILED" in server.stderr()
    finally:
        server.stop()


# -- the second lock: what the server checks before it connects -----------------------------


@pytest.mark.parametrize(
    ("url", "hosts", "words"),
    [
        ("https://api.example.com/v1/x?q=1", ("api.example.com",), None),
        ("https://a.b.example.org/x", ("*.example.org",), None),
        ("https://evil.example.net/x", ("api.example.com",), "not in the rules' proxy_hosts"),
        ("https://api.example.com/x\r\nX-A: 1", ("api.example.com",), "control character"),
        ("https://api.example.com/x\x00", ("api.example.com",), "control character"),
        ("https://api.example.com/a b", ("api.example.com",), "space"),
        ("https://u@api.example.com/", ("api.example.com",), "not an http(s) URL"),
        ("ftp://api.example.com/", ("api.example.com",), "not an http(s) URL"),
        ("https://api.example.com:x/", ("api.example.com",), "no valid host and port"),
    ],
    ids=["listed", "wildcard", "unlisted", "crlf", "nul", "space", "userinfo", "ftp", "port"],
)
def test_proxy_refusal(url: str, hosts: tuple[str, ...], words: str | None) -> None:
    refusal = proxy_refusal(url, hosts)
    if words is None:
        assert refusal is None
    else:
        assert refusal is not None and words in refusal


def test_a_proxy_rule_built_around_the_loader_is_not_followed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A Rule made in Python never met the loader's proxy_hosts check: the server refuses it.
    rule = Rule("/a", Rewrite("https://evil.example.net/x"), 0)
    server = WaypostServer(Engine(RuleSet((rule,))))
    request = server.request("GET", "/a", "", [("host", "site.example")], "127.0.0.1")
    with caplog.at_level("ERROR", logger="waypost.server"):
        answer = server.answer(request, "127.0.0.1")
    assert answer.forward is None and answer.response is not None
    assert answer.response.status == 502
    assert "not in the rules' proxy_hosts" in caplog.text
