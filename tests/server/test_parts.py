"""The server's parts in process: Location encoding, settings, the access log, the 404 template,
the ASGI adapter, and the CLI's answers to bad settings."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from waypost.cli import main
from waypost.engine import Engine
from waypost.responses import encode_location, safe_header_value
from waypost.server.access_log import AccessLog, escape
from waypost.server.app import WaypostApp
from waypost.server.config import SETTINGS, Settings, SettingsError
from waypost.server.pages import NotFoundPage, TemplateError
from waypost.server.proxy import UpstreamError, UpstreamProxy, check_upstream


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/new-page?x=1", "/new-page?x=1"),
        ("/café", "/caf%C3%A9"),
        ("/a b", "/a%20b"),
        ("/already%20encoded", "/already%20encoded"),
        ("/x\r\nSet-Cookie: a=1", "/x%0D%0ASet-Cookie:%20a=1"),
        ("https://bücher.example/ä?q=ö#frag", "https://xn--bcher-kva.example/%C3%A4?q=%C3%B6#frag"),
    ],
    ids=["plain", "non-ascii", "space", "idempotent", "crlf", "idn"],
)
def test_encode_location(location: str, expected: str) -> None:
    assert encode_location(location) == expected
    assert encode_location(expected) == expected


def test_header_values_never_carry_control_characters() -> None:
    assert safe_header_value("a\r\nb") == ""
    assert safe_header_value("ok") == "ok"
    assert safe_header_value("€").isascii()


def test_settings_parse_environment_values() -> None:
    settings = Settings.from_env(
        {"WAYPOST_WORKERS": "3", "WAYPOST_RELOAD_INTERVAL": "0", "WAYPOST_UPSTREAM": ""},
        redirect_max_age=10,
    )
    assert (settings.workers, settings.reload_interval, settings.upstream) == (3, 0.0, None)
    assert settings.redirect_max_age == 10
    with pytest.raises(SettingsError, match="WAYPOST_PORT='http' is not a valid int"):
        Settings.from_env({"WAYPOST_PORT": "http"})
    with pytest.raises(SettingsError, match="yes/no"):
        Settings.from_env({"WAYPOST_ACCESS_LOG": "maybe"})
    assert all(s.default == getattr(Settings(), s.name) for s in SETTINGS)
    assert Settings.from_env({"WAYPOST_PACK_RULES": "0"}).pack_rules is False
    assert Settings.from_env({}).pack_rules is True


def test_access_log_escapes_client_text() -> None:
    assert escape('a"b\\c\x1b[31m') == r"a\x22b\x5Cc\x1B[31m"
    assert escape("é") == r"\xC3\xA9"
    line = AccessLog().line("::1", "GET", "/x", "HTTP/1.1", 200, 0, None, None)
    assert line.endswith('"GET /x HTTP/1.1" 200 - "-" "-"')


def test_not_found_template_errors_are_for_people(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        NotFoundPage(tmp_path / "missing.html")
    broken = tmp_path / "broken.html"
    broken.write_text("<p>\n{{ path \n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"broken\.html:\d+: 404 template syntax error"):
        NotFoundPage(broken)


def test_not_found_template_escapes_whatever_its_name(tmp_path: Path) -> None:
    template = tmp_path / "page.txt"  # not .html: autoescape must still be on
    template.write_text("{{ path }}", encoding="utf-8")
    response = NotFoundPage(template).render("/<b>&", "GET")
    assert response.body == b"/&lt;b&gt;&amp;"


def test_upstream_url_is_checked() -> None:
    assert check_upstream("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    with pytest.raises(UpstreamError, match="is not an http:// or https:// URL"):
        check_upstream("127.0.0.1:8000")
    proxy = UpstreamProxy("http://up:81/base")
    forward = proxy.forward(
        "GET", "/p", "q=1", [("Host", "h")], client_ip="10.0.0.1", scheme="http"
    )
    assert forward.url == "http://up:81/base/p?q=1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "ftp://x"], "is not an http:// or https:// URL"),
        (["--not-found-template", "/nonexistent/404.html"], "does not exist"),
        (["--workers", "0"], "workers must be at least 1"),
        (["--log-level", "loud"], "log level 'loud'"),
        (["--port", "99999"], "port must be from 0 to 65535, not 99999"),
        (["--header-timeout", "0"], "header_timeout must be more than 0, not 0.0"),
        (["--body-timeout", "-1"], "body_timeout must be more than 0, not -1.0"),
        (["--reload-max-shrink", "50"], "reload_max_shrink is a share of the rules, from 0 to 1"),
        (["--reload-max-shrink", "-0.1"], "(0.5: a reload may drop half of them; 1: any number)"),
        (["--request-buffering", "of"], "request_buffering must be 'on' or 'off', not 'of'"),
        (["--max-body-bytes", "-1"], "max_body_bytes must not be negative, not -1"),
    ],
    ids=[
        "upstream",
        "template",
        "workers",
        "log-level",
        "port",
        "header-timeout",
        "body-timeout",
        "shrink-50",
        "shrink-negative",
        "buffering",
        "body-limit",
    ],
)
def test_serve_refuses_bad_settings(args: list[str], message: str) -> None:
    rules = Path(__file__).parents[2] / "examples" / "rules.yaml"
    result = CliRunner().invoke(main, ["serve", str(rules), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_on_a_busy_port_says_so_before_loading_the_rules() -> None:
    rules = Path(__file__).parents[2] / "examples" / "rules.yaml"
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", str(rules), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; another server is "
        "listening there; stop it or choose another --port\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_serve_on_an_address_of_another_machine_says_so() -> None:
    rules = Path(__file__).parents[2] / "examples" / "rules.yaml"
    result = CliRunner().invoke(main, ["serve", str(rules), "--host", "192.0.2.1", "--port", "0"])
    assert result.exit_code == 1
    assert "cannot listen on 192.0.2.1:0: Cannot assign requested address;" in result.output
    assert "'192.0.2.1' is not an address of this machine; check --host" in result.output


def test_asgi_adapter_answers_the_same() -> None:
    settings = Settings(access_log=False, public_health_details=True)
    app = WaypostApp(Engine([{"from": "/old", "to": "/new"}]), settings)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/old?x=1")
            assert (response.status_code, response.headers["location"]) == (301, "/new?x=1")
            assert response.headers["cache-control"] == "public, max-age=3600"
            missing = await client.get("/missing")
            assert missing.status_code == 404
            assert (await client.get("/_waypost/health")).json()["rules"] == 1

    asyncio.run(run())


def test_batched_metrics_equal_metrics_counted_one_by_one() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from waypost.server.metrics import _DECISION_BUCKETS, ServerMetrics

    metrics = ServerMetrics()
    registry = CollectorRegistry()
    reference = Histogram(
        "waypost_decision_seconds", "x", buckets=_DECISION_BUCKETS, registry=registry
    )
    times = [0.0, 1e-6, 1.5e-6, 5e-6, 7e-6, 2e-4, 0.5, 3.0, 1e-6] * 7
    for seconds in times:
        metrics.observe_decision(seconds)
        reference.observe(seconds)
        metrics.count("redirect", 301)
    metrics.count("pass", 404)
    text = metrics.render().decode()  # render() flushes first
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("waypost_decision_seconds_") and "_created" not in line:
            assert line in text
    assert f'waypost_requests_total{{action="redirect",status="301"}} {len(times)}.0' in text
    assert 'waypost_requests_total{action="pass",status="404"} 1.0' in text
    metrics.count("redirect", 301)
    metrics.flush()
    metrics.flush()  # nothing pending: nothing changes
    assert f'status="301"}} {len(times) + 1}.0' in metrics.render().decode()


def test_buffered_access_log_writes_whole_lines_in_small_batches() -> None:
    import os

    from waypost.server.access_log import BufferedAccessLog

    read_end, write_end = os.pipe()
    try:
        log = BufferedAccessLog(write_end)
        log.write("10.0.0.1", "GET", "/a", "HTTP/1.1", 301, 20, None, "ua")
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):  # held back until flush()
            os.read(read_end, 65536)
        for i in range(299):  # the 256th line writes the batch
            log.write("10.0.0.1", "GET", f"/p/{i}?" + "q" * 40, "HTTP/1.1", 301, 20, None, "ua")
        chunks = []
        while True:
            try:
                chunks.append(os.read(read_end, 4096))
            except BlockingIOError:
                break
        written = b"".join(chunks)
        assert written.count(b"\n") == 256 and written.endswith(b"\n")
        log.flush()
        rest = os.read(read_end, 65536)
        assert rest.count(b"\n") == 44
        lines = (written + rest).decode().splitlines()
        assert lines[0].startswith("10.0.0.1 - - [") and '"GET /a HTTP/1.1" 301 20' in lines[0]
        assert all(line.count('"') == 6 for line in lines)
    finally:
        os.close(read_end)
        os.close(write_end)
