"""The Django middleware answers before the view, rewrites what the URLconf resolves, waits for
the view's 404 with only_if_missing rules, and builds route targets with reverse() (the test
project's rules: tests/contrib/django/project/redirects.yaml)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import Client, RequestFactory
from pytest_django import Settings

from waypost import Engine
from waypost.contrib.django.middleware import WaypostMiddleware, django_request
from waypost.engine import Decision
from waypost.exceptions import RulesError, WaypostError

# Every test twice: with the compiled road and without it (see conftest.road).
pytestmark = pytest.mark.usefixtures("road")


def test_a_redirect_is_answered_before_the_view(client: Client) -> None:
    response = client.get("/old")
    assert (response.status_code, response["Location"]) == (301, "/live/")
    assert response["Cache-Control"] == "public, max-age=3600"


def test_a_rewrite_reaches_the_view_the_new_path_resolves_to(client: Client) -> None:
    response = client.get("/blog/hello")
    assert response.status_code == 200
    assert response.json() == {
        "slug": "hello",
        "path": "/articles/hello/",
        "path_info": "/articles/hello/",
        "query": {"from": "blog"},
        "rerouted": "yes",
        "view": "article",
    }


def test_a_route_target_is_built_by_reverse(client: Client) -> None:
    response = client.get("/u/7")
    assert (response.status_code, response["Location"]) == (302, "/users/7/dashboard/")


def test_only_if_missing_applies_after_the_views_404(client: Client) -> None:
    response = client.get("/missing/")
    assert (response.status_code, response["Location"]) == (302, "/live/")


def test_only_if_missing_never_hides_a_live_page(client: Client) -> None:
    response = client.get("/users/3/dashboard/")
    assert (response.status_code, response.content) == (200, b"dashboard of 3")


def test_no_rule_hands_the_request_on_untouched(client: Client) -> None:
    assert client.get("/nowhere/").status_code == 404
    assert client.get("/live/").content == b"a live page"


@pytest.mark.parametrize(
    ("extra", "location"),
    [
        ({"SCRIPT_NAME": "/site"}, "/site/users/7/dashboard/"),
        ({}, "/users/7/dashboard/"),
    ],
    ids=["under-a-mount", "at-the-root"],
)
def test_a_same_site_location_gets_the_mount_point(
    client: Client, extra: dict[str, str], location: str
) -> None:
    # reverse() puts the script prefix in front; the middleware must not add it twice.
    response = client.get("/u/7", **extra)
    assert response["Location"] == location


def test_force_script_name_is_the_mount_point(client: Client, settings: Settings) -> None:
    settings.FORCE_SCRIPT_NAME = "/forced"
    assert client.get("/old")["Location"] == "/forced/live/"
    assert client.get("/blog/x").json()["path"] == "/forced/articles/x/"


def test_respond_and_head(client: Client, use_rules: Callable[[str], Path]) -> None:
    use_rules(
        "rules:\n"
        "  - from: /gone\n    respond: 410\n"
        "  - from: /teapot\n    respond: {status: 418, body: short and stout}\n"
    )
    client = Client()  # the middleware reads settings.WAYPOST when Django makes it
    assert client.get("/gone").status_code == 410
    teapot = client.get("/teapot")
    assert (teapot.status_code, teapot.content) == (418, b"short and stout")
    assert client.head("/teapot").content == b""


def test_the_request_the_engine_sees(rf: pytest.FixtureRequest) -> None:
    request = rf.get("/caf%C3%A9/?a=1&b=%20", HTTP_X_THING="x", REMOTE_ADDR="10.0.0.9")  # type: ignore[attr-defined]
    asked = django_request(request)
    assert (asked.method, asked.path, asked.raw_path, asked.query_string) == (
        "GET",
        "/café/",
        "/caf%C3%A9/",
        "a=1&b=%20",
    )
    assert (asked.headers["x-thing"], asked.client_ip, asked.scheme) == ("x", "10.0.0.9", "http")


@pytest.mark.parametrize(
    ("waypost", "message"),
    [
        (None, "settings.WAYPOST is not set: add WAYPOST = {'RULES': BASE_DIR / 'redirects.yaml'}"),
        ({"RULE": "x.yaml"}, "unknown key 'RULE'; did you mean 'RULES'?"),
        ({}, "'RULES' is missing"),
        ({"RULES": 3}, "'RULES' is 3; give the rules file (a path) or a waypost.Engine"),
        ({"RULES": "r.yaml", "DEFAULT_MAX_AGE": -1}, "'DEFAULT_MAX_AGE' is -1"),
        ({"RULES": "r.yaml", "STATS": 5}, "'STATS' is 5, which has no hit, missing, start, stop"),
        ({"RULES": "r.yaml", "RELOAD": "yes"}, "'RELOAD' is 'yes'; give True to watch"),
        ({"RULES": Engine([]), "RELOAD": True}, "'RELOAD' is True; give True to watch"),
    ],
    ids=[
        "unset",
        "misspelt",
        "no-rules",
        "bad-rules",
        "bad-max-age",
        "bad-stats",
        "bad-reload",
        "reload-an-engine",
    ],
)
def test_a_settings_mistake_says_what_to_write(
    settings: Settings, waypost: object, message: str
) -> None:
    if waypost is None:
        del settings.WAYPOST
    else:
        settings.WAYPOST = waypost
    with pytest.raises(ImproperlyConfigured) as caught:
        WaypostMiddleware(lambda request: None)
    assert message in str(caught.value)


def test_rules_that_do_not_load_fail_when_django_makes_the_middleware(
    use_rules: Callable[[str], Path],
) -> None:
    use_rules("rules:\n  - from: /a\n    to: /b\n    stauts: 302\n")
    with pytest.raises(RulesError, match=r"redirects.yaml:4"):
        WaypostMiddleware(lambda request: None)


def test_an_engine_in_the_settings_and_a_missing_route(settings: Settings) -> None:
    settings.WAYPOST = {"RULES": Engine([{"from": "/x", "to": {"route": "no-such-route"}}])}
    client = Client()
    with pytest.raises(WaypostError, match="no-such-route"):
        client.get("/x")  # bound on the first request; manage.py check reports it before


class _Sink:
    """A StatsSink that keeps what it is told."""

    def __init__(self) -> None:
        self.hits: list[str | None] = []
        self.misses: list[str] = []
        self.started = False

    def hit(self, decision: Decision, when: float) -> None:
        self.hits.append(decision.location)

    def missing(self, target: str, referrer: str | None, agent: str | None, when: float) -> None:
        self.misses.append(target)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False


def test_stats_count_hits_and_the_views_404s(settings: Settings) -> None:
    sink = _Sink()
    settings.WAYPOST = {"RULES": Engine([{"from": "/a", "to": "/b"}]), "STATS": sink}
    client = Client()
    client.get("/a")
    client.get("/nowhere/?x=1")
    client.get("/live/")
    assert sink.started
    assert (sink.hits[0], sink.misses) == ("/b", ["/nowhere/?x=1"])


def test_reload_swaps_a_changed_rules_file_in(
    use_rules: Callable[[str], Path], settings: Settings
) -> None:
    import time

    path = use_rules("rules:\n  - {from: /moving, to: /first}\n")
    settings.WAYPOST = {"RULES": str(path), "RELOAD": True}
    middleware = WaypostMiddleware(lambda request: HttpResponse("view"))
    factory = RequestFactory()
    try:
        assert middleware(factory.get("/moving"))["Location"] == "/first"
        path.write_text("rules:\n  - {from: /moving, to: /second}\n")
        deadline = time.monotonic() + 10
        while middleware(factory.get("/moving"))["Location"] != "/second":
            assert time.monotonic() < deadline, "the changed file never served"
            time.sleep(0.1)
    finally:
        middleware.stop()
