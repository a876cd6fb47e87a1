"""The standalone server, for real: `waypost serve` on loopback, answered over HTTP.

Redirects, HEAD, Cache-Control, Vary, respond bodies, the 404 page, health, metrics, the access
log, and the limits on the request line and headers.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.serving import Served, answer_to_whole_request, raw_request, start_server

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"
EXTRA_RULES = """
  - from: /cached
    to: /elsewhere
    max_age: 60
  - from: /beta
    when: {headers: {X-Beta: "1"}}
    to: /beta-new
    status: 302
  - from: /json
    respond: {status: 200, body: '{"ok": true}', headers: {Content-Type: application/json}}
  - from: /unicode
    respond: {status: 200, body: "héllo wörld"}
  - from: /café
    to: /cafe/ü?q=ä b
"""
TEMPLATE = "<h1>Lost: {{ path }}</h1><p>{{ method }} {{ status }}</p>\n"
COMBINED = re.compile(
    r"^(?P<ip>\S+) - - \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$'
)


@pytest.fixture(scope="module")
def server(module_tmp: Path) -> Iterator[Served]:
    rules = module_tmp / "rules.yaml"
    rules.write_text(EXAMPLE.read_text() + EXTRA_RULES, encoding="utf-8")
    template = module_tmp / "404.html"
    template.write_text(TEMPLATE, encoding="utf-8")
    served = start_server(
        rules,
        "--not-found-template",
        str(template),
        "--max-request-line",
        "2000",
        "--max-header-bytes",
        "4000",
        tmp=module_tmp,
        env={"WAYPOST_REDIRECT_MAX_AGE": "1234"},
    )
    yield served
    served.stop()


def test_health_without_a_key_says_only_ok(server: Served) -> None:
    response = httpx.get(server.base + "/_waypost/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}  # details: tests/server/test_internal.py


@pytest.mark.parametrize(
    ("method", "path", "status", "location"),
    [
        ("GET", "/old-page?utm=1", 301, "/new-page?utm=1"),
        ("HEAD", "/old-page", 301, "/new-page"),
        ("GET", "/2024/05/hello", 308, "/articles/hello?year=2024"),
        ("POST", "/second", 307, "/third"),
        ("GET", "/docs/guide/intro", 301, "https://docs.example.com/guide/intro"),
        ("GET", "/caf%C3%A9", 301, "/cafe/%C3%BC?q=%C3%A4%20b"),
    ],
    ids=["query-kept", "head", "pattern-308", "post-307", "absolute", "encoded-location"],
)
def test_redirects(server: Served, method: str, path: str, status: int, location: str) -> None:
    response = httpx.request(method, server.base + path, follow_redirects=False)
    assert response.status_code == status
    assert response.headers["location"] == location
    if method == "HEAD":
        assert response.content == b""
        get = httpx.get(server.base + path, follow_redirects=False)
        assert response.headers["content-length"] == get.headers["content-length"] != "0"
    cache = response.headers["cache-control"]
    assert cache == ("public, max-age=1234" if status in (301, 308) else "no-store")


def test_rule_max_age_overrides_the_default(server: Served) -> None:
    response = httpx.get(server.base + "/cached", follow_redirects=False)
    assert response.headers["cache-control"] == "public, max-age=60"


def test_temporary_redirects_are_not_stored_and_vary_names_what_was_read(server: Served) -> None:
    response = httpx.get(server.base + "/beta", headers={"X-Beta": "1"}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/beta-new")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"].lower() == "x-beta"
    miss = httpx.get(server.base + "/beta")
    assert miss.status_code == 404
    assert miss.headers["vary"].lower() == "x-beta"


@pytest.mark.parametrize(
    ("path", "status", "body", "content_type"),
    [
        ("/maintenance", 503, "Back soon", "text/plain; charset=utf-8"),
        ("/json", 200, '{"ok": true}', "application/json"),
        ("/unicode", 200, "héllo wörld", "text/plain; charset=utf-8"),
        ("/gone", 410, "", "text/plain; charset=utf-8"),
    ],
    ids=["with-headers", "json", "utf8", "empty"],
)
def test_respond(server: Served, path: str, status: int, body: str, content_type: str) -> None:
    response = httpx.get(server.base + path)
    assert response.status_code == status
    assert response.content.decode("utf-8") == body
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(len(body.encode("utf-8")))
    head = httpx.head(server.base + path)
    assert (head.status_code, head.content) == (status, b"")
    assert head.headers["content-length"] == str(len(body.encode("utf-8")))


def test_respond_keeps_the_rules_headers(server: Served) -> None:
    assert httpx.get(server.base + "/maintenance").headers["retry-after"] == "3600"


def test_conditions_read_request_headers(server: Served) -> None:
    headers = {"Host": "shop.example.com", "Accept-Language": "de-DE,de;q=0.9"}
    response = httpx.get(server.base + "/promo", headers=headers)
    assert (response.status_code, response.headers["location"]) == (302, "/de/promo")
    assert httpx.get(server.base + "/promo").status_code == 404


def test_not_found_page_uses_the_template_and_escapes_the_path(server: Served) -> None:
    response = httpx.get(server.base + "/nothing/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<script>" not in response.text
    assert "Lost: /nothing/&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "GET 404" in response.text
    head = httpx.head(server.base + "/nothing")
    assert (head.status_code, head.content) == (404, b"")


def test_unsafe_target_is_refused_over_http(server: Served) -> None:
    # /docs/<path:rest> -> https://docs.example.com/{rest}: '@' would change the host if unencoded.
    response = httpx.get(server.base + "/docs/@evil.com", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://docs.example.com/")


@pytest.mark.parametrize(
    "target",
    ["/old-page%0d%0aSet-Cookie:%20x=1", "/docs/a%0d%0aX-Injected:%201", "/2024/5/x%00y%0a"],
    ids=["crlf-exact", "crlf-pattern", "nul"],
)
def test_no_header_carries_a_control_character(server: Served, target: str) -> None:
    raw = raw_request(
        server.port,
        f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    )
    head = raw.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 ")
    for line in lines[1:]:
        assert b":" in line
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", line), line
        assert not line.lower().startswith((b"set-cookie", b"x-injected"))


def test_long_request_line_is_414(server: Served) -> None:
    response = httpx.get(server.base + "/a" * 1500)
    assert response.status_code == 414
    assert "longer than 2000 bytes" in response.text
    huge = raw_request(
        server.port,
        b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert huge.startswith((b"HTTP/1.1 414", b"HTTP/1.1 431"))


def test_large_headers_are_431(server: Served) -> None:
    response = httpx.get(server.base + "/old-page", headers={"X-Big": "b" * 5000})
    assert response.status_code == 431
    huge = raw_request(
        server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * 1_000_000 + b"\r\n\r\n",
    )
    assert huge.startswith(b"HTTP/1.1 431")
    # ... and the server is still there.
    assert httpx.get(server.base + "/old-page").status_code == 301


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * 2_000_000 + b"\r\n\r\n", b"431"),
        (b"GET /" + b"p" * 2_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n" + b"Y: y\r\n" * 200_000, b"400"),
    ],
    ids=["head-too-large", "target-too-long", "malformed-head"],
)
def test_a_refused_request_still_being_sent_gets_its_answer(
    server: Served, data: bytes, status: bytes
) -> None:
    """The client is still sending when the answer comes: the server reads and drops the rest
    (nginx's lingering close) instead of closing with data unread, which resets the connection
    and can destroy the answer before the client reads it. Tried many times: a reset is a
    race that a single try often wins."""
    for _ in range(15):
        received = answer_to_whole_request(server.port, data)
        assert received.startswith(b"HTTP/1.1 " + status), received[:80]


def test_a_refused_connection_is_not_read_for_ever(server: Served) -> None:
    """What the client sends after a refusal is dropped for at most 5 s (nginx's
    lingering_timeout), then the connection is closed: a client cannot keep it by sending."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400"), answer
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 12:
            try:
                sock.sendall(b"x" * 4096)
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.05)
    assert closed_after is not None, "the server still read the connection after 12 s"
    assert 4 < closed_after < 9, closed_after


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_prometheus_text_and_counters_move(server: Served) -> None:
    before = _samples(httpx.get(server.base + "/_waypost/metrics").text)
    for _ in range(3):
        httpx.get(server.base + "/old-page")
    response = httpx.get(server.base + "/_waypost/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = _samples(response.text)
    key = ("waypost_requests_total", (("action", "redirect"), ("status", "301")))
    assert after[key] - before.get(key, 0) == 3
    assert after[("waypost_rules_loaded", ())] == 13
    count = ("waypost_decision_seconds_count", ())
    assert after[count] - before[count] >= 3
    assert ("waypost_reloads_total", ()) in after
    assert ("waypost_reload_failures_total", ()) in after


def test_access_log_is_in_combined_format(server: Served) -> None:
    httpx.get(
        server.base + '/old-page?x="1"',
        headers={"Referer": "https://ref.example/", "User-Agent": 'agent "quoted"'},
    )
    # The server writes its access log in batches, at most half a second late.
    deadline = time.monotonic() + 5
    while not (lines := [ln for ln in server.stdout().splitlines() if "/old-page?x=" in ln]):
        assert time.monotonic() < deadline, server.stdout()
        time.sleep(0.05)
    match = COMBINED.match(lines[-1])
    assert match, lines[-1]
    assert match["ip"] == "127.0.0.1"
    assert match["request"] == "GET /old-page?x=%221%22 HTTP/1.1"
    assert (match["status"], match["referer"]) == ("301", "https://ref.example/")
    assert match["ua"] == r"agent \x22quoted\x22"
    assert int(match["size"]) > 0


def test_no_access_log_is_quiet(module_tmp: Path) -> None:
    served = start_server(EXAMPLE, "--no-access-log", tmp=module_tmp)
    try:
        assert httpx.get(served.base + "/old-page").status_code == 301
    finally:
        served.stop()
    assert "/old-page" not in served.stdout()
