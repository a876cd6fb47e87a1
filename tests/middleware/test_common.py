"""What both middlewares share (middleware/_common.py): the answer to a decision under the mount
point, the routes= they accept, and what they hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from waypost import Decision, Engine, RulesError, WaypostError
from waypost.engine import RouteResolver
from waypost.middleware._common import MiddlewareBase, resolver_for, under_mount


def _resolve(name: str, params: Mapping[str, str]) -> str:
    return f"/{name}"


class _App:
    """Stands for a framework app: callable, and with reverse routing of its own."""

    def __call__(self) -> None:  # pragma: no cover - never called
        raise AssertionError

    def reverse(self, name: str, params: Mapping[str, str]) -> str:
        if name == "missing":
            raise LookupError(name)
        return f"/app/{name}"


def _app_routes(app: Any) -> RouteResolver | None:
    return app.reverse if isinstance(app, _App) else None


class _Middleware(MiddlewareBase[object]):
    def _route_resolver(self, routes: Any) -> RouteResolver | None:
        return None if routes is None else resolver_for(routes, _app_routes, "an app")


@pytest.mark.parametrize(
    ("location", "mount", "expected"),
    [
        ("/new", "", "/new"),
        ("/new", "/shop", "/shop/new"),
        ("/new", "/my shop", "/my%20shop/new"),
        ("https://example.com/new", "/shop", "https://example.com/new"),
    ],
    ids=["no mount", "same site", "mount point is quoted", "other site untouched"],
)
def test_under_mount(location: str, mount: str, expected: str) -> None:
    decision = Decision("redirect", 301, location)
    assert under_mount(decision, mount).location == expected


@pytest.mark.parametrize(
    ("routes", "expected"),
    [(_App(), "/app/home"), (_resolve, "/home")],
    ids=["an app: its own reverse routing", "a callable"],
)
def test_resolver_for(routes: Any, expected: str) -> None:
    assert resolver_for(routes, _app_routes, "an app")("home", {}) == expected


def test_resolver_for_refuses_anything_else() -> None:
    with pytest.raises(WaypostError, match=r"routes='home' is neither a callable nor a Flask app"):
        resolver_for("home", _app_routes, "a Flask app")


REDIRECT = Decision("redirect", 301, "/new")


@pytest.mark.parametrize(
    ("decision", "mount", "head", "status", "location", "body"),
    [
        (REDIRECT, "", False, 301, "/new", b"Moved Permanently: /new\n"),
        (REDIRECT, "/shop", False, 301, "/shop/new", b"Moved Permanently: /shop/new\n"),
        (REDIRECT, "", True, 301, "/new", b""),
        (Decision("respond", 410, body="gone"), "/shop", False, 410, None, b"gone"),
    ],
    ids=["redirect", "redirect under the mount point", "HEAD has no body", "respond"],
)
def test_answer(
    decision: Decision, mount: str, head: bool, status: int, location: str | None, body: bytes
) -> None:
    response = _Middleware(object(), Engine([])).answer(decision, mount, head)
    assert response is not None
    assert (response.status, dict(response.headers).get("location"), response.body) == (
        status,
        location,
        body,
    )


@pytest.mark.parametrize(
    "decision",
    [Decision("rewrite", path="/other"), Decision("pass")],
    ids=["rewrite", "pass"],
)
def test_the_app_answers_a_rewrite_or_a_pass(decision: Decision) -> None:
    assert _Middleware(object(), Engine([])).answer(decision, "/shop", False) is None


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [(3600, "public, max-age=3600"), (60, "public, max-age=60")],
    ids=["default", "given"],
)
def test_default_max_age_reaches_the_answer(max_age: int, expected: str) -> None:
    middleware = _Middleware(object(), Engine([]), default_max_age=max_age)
    response = middleware.answer(REDIRECT, "", False)
    assert response is not None
    assert dict(response.headers)["cache-control"] == expected


@pytest.mark.parametrize(
    ("route", "bound"),
    [("home", True), ("missing", False)],
    ids=["the app has the route", "a missing route fails at construction"],
)
def test_routes_are_checked_at_construction(route: str, bound: bool) -> None:
    rules = Engine([{"from": "/d", "to": {"route": route}}])
    if bound:
        assert _Middleware(object(), rules, routes=_App())._routes_bound
    else:
        with pytest.raises(RulesError, match="missing"):
            _Middleware(object(), rules, routes=_App())


def test_repr_reads_like_the_constructor() -> None:
    engine = Engine([])
    assert repr(_Middleware("app", engine)) == f"_Middleware('app', rules={engine!r})"
