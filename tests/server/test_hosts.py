"""server/_hosts.py: the host names of ``--https-redirect-hosts``, read without the server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.server._hosts import parse_https_redirect_hosts


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        (None, ()),
        ("", ()),
        (" , ,", ()),
        ("example.com", ("example.com",)),
        ("Example.COM.", ("example.com",)),
        (" example.com , *.example.org ", ("example.com", "*.example.org")),
        ("a-b.example,localhost", ("a-b.example", "localhost")),
    ],
    ids=["unset", "empty", "only-commas", "one", "lower-cased-root-dot-dropped", "wildcard", "two"],
)
def test_host_names_are_read(text: str | None, hosts: tuple[str, ...]) -> None:
    assert parse_https_redirect_hosts(text) == hosts


@pytest.mark.parametrize(
    "bad",
    ["exa mple.com", "-a.example", "a_b.example", "example.com:443", "*.*.example", "http://a.b"],
    ids=["space", "leading-hyphen", "underscore", "port", "double-wildcard", "url"],
)
def test_a_name_that_is_not_a_host_name_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a host name") as raised:
        parse_https_redirect_hosts(f"ok.example, {bad}")
    assert repr(bad) in str(raised.value)


@given(st.lists(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)))
def test_a_list_of_host_names_reads_back(names: list[str]) -> None:
    assert parse_https_redirect_hosts(",".join(names)) == tuple(names)
