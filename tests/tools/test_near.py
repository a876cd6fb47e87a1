"""waypost.tools.near: the rule that nearly answered a path the not-found log holds."""

from __future__ import annotations

import pytest

from waypost import Engine
from waypost.tools.near import nearly_matched

ENGINE = Engine(
    [
        {"from": "/about", "to": "/company"},
        {"from": "/docs/<int:n>", "to": "/d/{n}"},
        {"from": "/app/<path:rest>", "rewrite": "/internal/{rest}"},
        {"from": "/beta", "to": "/b", "when": {"headers": {"X-Beta": "1"}}},
        {"from": "/keep/<path:rest>", "pass": True},
        {"from": "/Team", "to": "/people"},
    ]
)


@pytest.mark.parametrize(
    ("target", "line", "reason"),
    [
        ("/app/x?y=1", 3, "it rewrites the path to '/internal/x?y=1', which answered 404"),
        ("/keep/x", 5, "it passes the path on, and the app answered 404"),
        ("/about", 1, "it answers the path now (redirect), since the 404s"),
        ("/beta", 4, "its pattern matches, but condition failed: header 'x-beta'"),
        ("/about.html", 1, "it answers '/about' (without '.html')"),
        ("/ABOUT", 1, "it answers '/about' (in lower case)"),
        ("/docs/5/index.html", 2, "it answers '/docs/5/' (without the index page)"),
        ("/team", None, None),
        ("/nothing/here", None, None),
    ],
)
def test_nearly_matched(target: str, line: int | None, reason: str | None) -> None:
    near = nearly_matched(ENGINE, target)
    if line is None:
        assert near is None
        return
    assert near is not None
    assert near.rule.source == f"<rules>#{line}"
    assert near.reason.startswith(reason or "")


def test_a_trailing_slash_variant_under_strict_slashes() -> None:
    engine = Engine([{"from": "/shop/", "to": "/store/"}], defaults={"trailing_slash": "strict"})
    near = nearly_matched(engine, "/shop")
    assert near is not None and near.reason == "it answers '/shop/' (with a trailing slash)"
