"""A rule before and after, as the history page's diff lines."""

from __future__ import annotations

from waypost.admin.web.history import diff_lines


def test_changed_lines_are_marked() -> None:
    lines = diff_lines({"from": "/a", "to": "/b"}, {"from": "/a", "to": "/c", "status": 302})
    assert (" ", "from: /a") in lines
    assert ("-", "to: /b") in lines and ("+", "to: /c") in lines and ("+", "status: 302") in lines


def test_a_created_and_a_deleted_rule() -> None:
    assert diff_lines(None, {"from": "/a", "to": "/b"}) == [("+", "from: /a"), ("+", "to: /b")]
    assert diff_lines({"from": "/a", "to": "/b"}, None) == [("-", "from: /a"), ("-", "to: /b")]
