"""waypost.responses: the one reason-phrase table, and the responses every mode answers with."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from waypost import Decision
from waypost.responses import (
    Response,
    decision_response,
    error_response,
    html_response,
    plain_response,
    reason,
)


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (200, "OK"),
        (301, "Moved Permanently"),
        (308, "Permanent Redirect"),
        (404, "Not Found"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (416, "Range Not Satisfiable"),
        (422, "Unprocessable Content"),
        (431, "Request Header Fields Too Large"),
        (599, ""),
    ],
    ids=lambda value: str(value),
)
def test_reason_phrases_are_rfc_9110s(status: int, phrase: str) -> None:
    assert reason(status) == phrase


@pytest.mark.parametrize(
    ("status", "detail", "body"),
    [
        (404, "", b"404 Not Found\n"),
        (431, "Too many headers.", b"431 Request Header Fields Too Large\nToo many headers.\n"),
        (599, "", b"599 \n"),
    ],
    ids=["no detail", "with detail", "unregistered status"],
)
def test_error_response(status: int, detail: str, body: bytes) -> None:
    response = error_response(status, detail)
    assert (response.status, response.body) == (status, body)
    assert dict(response.headers) == {
        "content-type": "text/plain; charset=utf-8",
        "content-length": str(len(body)),
        "cache-control": "no-store",
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda head: plain_response(200, "héllo", head=head),
        lambda head: html_response(200, "<p>héllo</p>", head=head),
        lambda head: error_response(404, head=head),
        lambda head: decision_response(Decision("redirect", 301, "/new"), head=head),
        lambda head: decision_response(Decision("respond", 410, body="gone"), head=head),
    ],
    ids=["plain", "html", "error", "redirect", "respond"],
)
def test_head_has_the_headers_and_no_body(make: Callable[[bool], Response]) -> None:
    get, head = make(False), make(True)
    assert (head.status, head.headers, head.body) == (get.status, get.headers, b"")
    assert dict(get.headers)["content-length"] == str(len(get.body))


@pytest.mark.parametrize(
    ("decision", "cache_control"),
    [
        (Decision("redirect", 301, "/new"), "public, max-age=3600"),
        (Decision("redirect", 308, "/new"), "public, max-age=3600"),
        (Decision("redirect", 302, "/new"), "no-store"),
        (Decision("redirect", 307, "/new"), "no-store"),
    ],
    ids=["301 is cached", "308 is cached", "302 is not", "307 is not"],
)
def test_only_permanent_redirects_are_cacheable(decision: Decision, cache_control: str) -> None:
    assert dict(decision_response(decision).headers)["cache-control"] == cache_control


@pytest.mark.parametrize(
    "decision", [Decision("rewrite", path="/x"), Decision("pass")], ids=["rewrite", "pass"]
)
def test_rewrite_and_pass_have_no_response(decision: Decision) -> None:
    with pytest.raises(ValueError, match="has no response of its own"):
        decision_response(decision)
