"""HTTPS served by Waypost itself (``--tls-cert``/``--tls-key``), on a real socket.

The certificate is a self-signed one made by ``openssl`` for 127.0.0.1; the client trusts it and
nothing else, so the tests also show that the server presents the certificate it was given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.server.serving import (
    Upstream,
    answer_to_whole_request,
    free_port,
    raw_request,
    start_server,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

RULES = """\
rules:
  - from: /old
    to: /new
  - from: /gone
    respond: 410
"""


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
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
def tls(module_tmp: Path) -> tuple[Path, Path]:
    return _certificate(module_tmp, "server")


@pytest.fixture(scope="module")
def rules(module_tmp: Path) -> Path:
    path = module_tmp / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


def test_redirects_and_responses_are_served_over_https_on_one_connection(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path
) -> None:
    cert, key = tls
    served = start_server(
        rules, "--tls-cert", str(cert), "--tls-key", str(key), tmp=module_tmp, ca=cert
    )
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=served.base, verify=context) as client:
            first = client.get("/old?x=1")
            second = client.head("/gone")
            health = client.get("/_waypost/health").json()
        assert (first.status_code, first.headers["location"]) == (301, "/new?x=1")
        assert second.status_code == 410
        assert health["status"] == "ok"
        # A client that does not trust the certificate is refused by its own TLS check.
        with pytest.raises(httpx.ConnectError):
            httpx.get(served.base + "/old", timeout=5)
        # Plain HTTP on the HTTPS port gets no HTTP answer.
        with pytest.raises(httpx.TransportError):
            httpx.get(served.base.replace("https:", "http:") + "/old", timeout=5)
    finally:
        served.stop()
    assert f"serving on https://127.0.0.1:{served.port}" in served.stderr()


def test_the_upstream_is_told_the_request_came_over_https(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path, upstream: Upstream
) -> None:
    cert, key = tls
    served = start_server(
        rules,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--upstream",
        upstream.url,
        tmp=module_tmp,
        ca=cert,
    )
    try:
        context = ssl.create_default_context(cafile=str(cert))
        echo = httpx.get(served.base + "/page?a=1", verify=context, timeout=5).json()
    finally:
        served.stop()
    headers = dict(echo["headers"])
    assert echo["target"] == "/page?a=1"
    assert headers["x-forwarded-proto"] == "https"


def _serve_error(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waypost", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_tls_settings_are_refused_before_serving_with_a_clear_error(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path
) -> None:
    cert, key = tls
    _, other_key = _certificate(module_tmp, "other")
    cases = [
        (["--tls-cert", str(cert)], "tls_cert is set but tls_key is not"),
        (["--tls-key", str(key)], "tls_key is set but tls_cert is not"),
        (
            ["--tls-cert", str(module_tmp / "missing.pem"), "--tls-key", str(key)],
            f"tls_cert: cannot read {str(module_tmp / 'missing.pem')!r}: No such file",
        ),
        (
            ["--tls-cert", str(cert), "--tls-key", str(other_key)],
            "the private key does not belong to the certificate",
        ),
        (
            ["--tls-cert", str(rules), "--tls-key", str(key)],
            "not a PEM certificate and private key",
        ),
    ]
    for args, message in cases:
        done = _serve_error(str(rules), "--port", "1", *args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def _presented(port: int) -> bytes:
    """The certificate the server presents right now (DER)."""
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port), timeout=5))


def _der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))


def _wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not(
    rules: Path, module_tmp: Path
) -> None:
    folder = module_tmp / "renewal"
    folder.mkdir()
    first_cert, first_key = _certificate(folder, "first")
    second_cert, second_key = _certificate(folder, "second")
    cert, key = folder / "live.pem", folder / "live.key"
    shutil.copy(first_cert, cert)
    shutil.copy(first_key, key)
    served = start_server(
        rules, "--tls-cert", str(cert), "--tls-key", str(key), tmp=module_tmp, ca=first_cert
    )
    try:
        assert _presented(served.port) == _der(first_cert)
        # A renewal replaces both files, as certbot's symlinks do.
        for source, target in ((second_key, key), (second_cert, cert)):
            shutil.copy(source, folder / "incoming")
            os.replace(folder / "incoming", target)
        assert _wait_for(lambda: _presented(served.port) == _der(second_cert), 12)
        context = ssl.create_default_context(cafile=str(second_cert))
        assert httpx.get(served.base + "/old", verify=context, timeout=5).status_code == 301
        # A broken file is refused and the renewed certificate keeps serving.
        cert.write_text("not a certificate\n", encoding="ascii")
        assert _wait_for(lambda: "renewed certificate was not loaded" in served.stderr(), 12)
        assert _presented(served.port) == _der(second_cert)
    finally:
        served.stop()


def test_plain_http_on_the_redirect_port_is_sent_to_https(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path
) -> None:
    cert, key = tls
    redirect_port = free_port()
    served = start_server(
        rules,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--http-redirect-port",
        str(redirect_port),
        tmp=module_tmp,
        ca=cert,
    )
    plain = f"http://127.0.0.1:{redirect_port}"
    https = f"https://127.0.0.1:{served.port}"
    try:
        with httpx.Client(timeout=5) as client:  # one keep-alive connection
            get = client.get(plain + "/old?x=1")
            post = client.post(plain + "/form", content=b"a=1")
            named = client.get(plain + "/caf%C3%A9", headers={"Host": "Shop.Example.COM:80"})
            head = client.head(plain + "/old")
        assert (get.status_code, get.headers["location"]) == (308, f"{https}/old?x=1")
        assert get.headers["date"]
        assert (post.status_code, post.headers["location"]) == (308, f"{https}/form")
        assert named.headers["location"] == f"https://shop.example.com:{served.port}/caf%C3%A9"
        assert head.status_code == 308 and head.content == b""
        # Followed by a client that trusts the certificate, it ends where HTTPS sends it.
        context = ssl.create_default_context(cafile=str(cert))
        final = httpx.get(plain + "/old", verify=context, follow_redirects=True, timeout=5)
        assert [r.status_code for r in final.history] == [308, 301]
        # A Host that is not a host name, or none at all, is refused.
        for host in ("evil.com/x", "a b", "evil.com@x", ""):
            bad = raw_request(redirect_port, f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert bad.startswith(b"HTTP/1.1 400 "), (host, bad)
        bare = raw_request(redirect_port, b"GET / HTTP/1.0\r\n\r\n")
        assert bare.startswith(b"HTTP/1.1 400 ")
    finally:
        served.stop()
    assert '"GET /old?x=1 HTTP/1.1" 308' in served.stdout()


def test_with_https_redirect_hosts_only_the_sites_hosts_are_sent_to_https(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path
) -> None:
    cert, key = tls
    redirect_port = free_port()
    served = start_server(
        rules, "--tls-cert", str(cert), "--tls-key", str(key),
        "--http-redirect-port", str(redirect_port),
        "--https-redirect-hosts", "example.com, *.example.org",
        tmp=module_tmp, ca=cert,
    )  # fmt: skip
    try:
        for host, location in [
            ("example.com", f"https://example.com:{served.port}/x"),
            ("Shop.Example.ORG:80", f"https://shop.example.org:{served.port}/x"),
            ("evil.example.com", None),
            ("example.org", None),  # '*.example.org' is its subdomains
            ("example.com.evil.net", None),
            ("127.0.0.1", None),
        ]:
            answer = raw_request(
                redirect_port,
                f"GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
            )
            if location is None:
                assert answer.startswith(b"HTTP/1.1 400 "), (host, answer)
                assert b"location:" not in answer.lower()
            else:
                assert answer.startswith(b"HTTP/1.1 308 "), (host, answer)
                assert f"location: {location}\r\n".encode() in answer, answer
    finally:
        served.stop()


def test_https_redirect_hosts_are_checked_at_start(rules: Path, tls: tuple[Path, Path]) -> None:
    cert, key = tls
    tls_args = ("--tls-cert", str(cert), "--tls-key", str(key), "--port", "8443")
    done = _serve_error(str(rules), *tls_args, "--https-redirect-hosts", "example.com")
    assert done.returncode == 2
    assert "give --http-redirect-port too" in done.stderr
    done = _serve_error(
        str(rules), *tls_args, "--http-redirect-port", "8081",
        "--https-redirect-hosts", "example.com,evil.com/x",
    )  # fmt: skip
    assert done.returncode == 2
    assert "'evil.com/x' is not a host name" in done.stderr


def test_the_redirect_port_needs_tls_and_a_port_of_its_own(
    rules: Path, tls: tuple[Path, Path]
) -> None:
    cert, key = tls
    done = _serve_error(str(rules), "--port", "1", "--http-redirect-port", "8081")
    assert done.returncode == 2
    assert "http_redirect_port redirects plain HTTP to this server's HTTPS" in done.stderr
    done = _serve_error(
        str(rules), "--port", "8443", "--tls-cert", str(cert), "--tls-key", str(key),
        "--http-redirect-port", "8443",
    )  # fmt: skip
    assert done.returncode == 2
    assert "not the HTTPS port 8443" in done.stderr


def test_the_redirect_port_cuts_off_slow_heads_and_reads_no_body_as_a_request(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path
) -> None:
    cert, key = tls
    redirect_port = free_port()
    served = start_server(
        rules,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--http-redirect-port",
        str(redirect_port),
        "--header-timeout",
        "1",
        tmp=module_tmp,
        ca=cert,
    )
    try:
        # A head trickled a line every 0.3 s: never idle, but not complete within 1 s.
        with socket.create_connection(("127.0.0.1", redirect_port), timeout=0.3) as sock:
            started, received = time.monotonic(), b""
            for i in range(40):
                sock.sendall(b"GET / HTTP/1.1\r\n" if i == 0 else b"X-%d: y\r\n" % i)
                try:
                    received += sock.recv(65536)
                    break
                except TimeoutError:
                    pass
            assert received.startswith(b"HTTP/1.1 408 "), received
            assert time.monotonic() - started < 5
        # An upgrade request's body is not another request.
        with socket.create_connection(("127.0.0.1", redirect_port), timeout=5) as sock:
            inner = b"GET /inner HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            sock.sendall(
                b"POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\n"
                b"Connection: Upgrade\r\nContent-Length: %d\r\n\r\n" % len(inner)
            )
            time.sleep(0.1)
            with contextlib.suppress(ConnectionError):
                sock.sendall(inner)
            received = b""
            with contextlib.suppress(ConnectionError):
                while chunk := sock.recv(65536):
                    received += chunk
        assert received.count(b"HTTP/1.1 308 ") == 1, received
        assert b"/inner" not in received
    finally:
        served.stop()


def test_the_redirect_port_answers_a_refused_request_still_being_sent(
    rules: Path, tls: tuple[Path, Path], module_tmp: Path
) -> None:
    """A head too large is answered 431 while the client is still sending it, and the rest is
    read and dropped (nginx's lingering close), so the answer is not lost to a reset."""
    cert, key = tls
    redirect_port = free_port()
    served = start_server(
        rules, "--tls-cert", str(cert), "--tls-key", str(key),
        "--http-redirect-port", str(redirect_port), tmp=module_tmp, ca=cert,
    )  # fmt: skip
    # Many header lines: refused at the limit, with two megabytes still to come.
    data = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"Y: y\r\n" * 400_000 + b"\r\n"
    try:
        for _ in range(15):
            received = answer_to_whole_request(redirect_port, data)
            assert received.startswith(b"HTTP/1.1 431 "), received[:80]
    finally:
        served.stop()
