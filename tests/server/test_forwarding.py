"""The client behind load balancers: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests._servers import Server
from waypost.exceptions import SettingsError
from waypost.server.forwarding import TrustedProxies, parse_trusted_proxies

PROXIES = TrustedProxies(parse_trusted_proxies("10.0.0.0/8, 127.0.0.1, fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: its header is ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.9", "198.51.100.1"),  # two proxies deep
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a forged entry stays left
        ("10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),  # the proxy's own entry is bad
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),  # only proxies: the leftmost one
        ("10.0.0.2", None, "10.0.0.2"),
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("fd00::1", "[2001:db8::5]", "[2001:db8::5]"),
        (None, "198.51.100.1", None),
    ],
    ids=[
        "untrusted-peer",
        "one-proxy",
        "two-proxies",
        "forged-left",
        "garbage-left",
        "garbage-right",
        "only-proxies",
        "no-header",
        "mapped-peer",
        "ipv6",
        "no-peer",
    ],
)
def test_the_client_is_the_first_untrusted_hop(
    peer: str | None, forwarded: str | None, client: str | None
) -> None:
    headers = [("X-Forwarded-For", forwarded)] if forwarded else []
    assert PROXIES.client(peer, headers) == client


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("203.0.113.5", "https", "http"),  # not a proxy: a client cannot claim https
        ("10.0.0.2", "https", "https"),
        ("10.0.0.2", "HTTPS", "https"),
        ("10.0.0.2", "http, https", "https"),  # the nearest proxy's entry is the last
        ("10.0.0.2", "javascript", "http"),  # not a scheme: the connection's own
        ("10.0.0.2", None, "http"),
    ],
    ids=["untrusted-peer", "trusted", "upper-case", "the-last-entry", "not-a-scheme", "none"],
)
def test_the_scheme_is_forwarded_only_by_trusted_proxies(
    peer: str, proto: str | None, scheme: str
) -> None:
    headers = [("X-Forwarded-Proto", proto)] if proto else []
    assert PROXIES.scheme(peer, headers, "http") == scheme


def test_a_bad_block_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match=re.escape("'10.0.0.0/33'")):
        parse_trusted_proxies("10.0.0.0/33")


def test_the_server_uses_the_forwarded_client_for_ip_conditions(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - from: /office\n    when: {ip: ['198.51.100.0/24']}\n    respond: 204\n",
        encoding="utf-8",
    )
    forwarded = {"X-Forwarded-For": "198.51.100.20"}
    trusting = Server(None, str(rules), "--trusted-proxies", "127.0.0.1")
    plain = Server(None, str(rules))
    try:
        assert httpx.get(trusting.base + "/office", headers=forwarded).status_code == 204
        assert httpx.get(plain.base + "/office", headers=forwarded).status_code == 404
        assert httpx.get(trusting.base + "/office").status_code == 404
    finally:
        trusting.stop()
        plain.stop()


def test_the_server_uses_the_forwarded_scheme_for_scheme_conditions(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - from: /<path:p>\n    when: {scheme: http}\n    to: https://example.com/{p}\n",
        encoding="utf-8",
    )
    tls = {"X-Forwarded-Proto": "https"}
    trusting = Server(None, str(rules), "--trusted-proxies", "127.0.0.1")
    plain = Server(None, str(rules))
    try:
        # Behind a proxy that ended TLS: the client used https, no redirect (no loop).
        assert httpx.get(trusting.base + "/a", headers=tls).status_code == 404
        assert httpx.get(trusting.base + "/a").status_code == 301
        # Not trusted, the header is the client's word: the connection is http.
        answer = httpx.get(plain.base + "/a", headers=tls)
        assert answer.status_code == 301
        assert answer.headers["location"] == "https://example.com/a"
        assert "X-Forwarded-Proto" in answer.headers["vary"]
    finally:
        trusting.stop()
        plain.stop()
