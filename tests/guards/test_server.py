"""Guards through the standalone server: real HTTP on 127.0.0.1, an upstream behind it."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.guards.conftest import SECRET, htpasswd_line
from tests.guards.test_session import flask_cookie
from tests.server.serving import Served, Upstream, raw_request, start_server

RULES = """
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, realm: Staff}
  login:
    session: {secret_env: FLASK_SECRET_KEY}
    login_url: /login
rules:
  - from: /admin/<path:rest>
    require: staff
    login_url: /login
  - from: /admin/secret
    to: /treasure
  - from: /public
    rewrite: /admin/reports
  - from: /account/<path:rest>
    require: login
"""

ANN = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
BROWSER = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("guards")
    (tmp / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    served = start_server(
        rules,
        "--upstream",
        upstream.url,
        "--no-access-log",
        tmp=tmp,
        env={"FLASK_SECRET_KEY": SECRET},
    )
    yield served
    served.stop()


def echoed(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return {name: value for name, value in data["headers"]}


def test_an_exact_redirect_inside_the_guarded_area_needs_the_credential(served: Served) -> None:
    response = httpx.get(served.base + "/admin/secret")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == 'Basic realm="Staff", charset="UTF-8"'
    allowed = httpx.get(served.base + "/admin/secret", headers=ANN)
    assert (allowed.status_code, allowed.headers["location"]) == (301, "/treasure")


def test_a_browser_is_sent_to_the_login_page(served: Served) -> None:
    response = httpx.get(served.base + "/admin/x?a=1", headers=BROWSER)
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=/admin/x%3Fa%3D1"


def test_a_rewrite_into_the_guarded_area_is_checked(served: Served) -> None:
    assert httpx.get(served.base + "/public").status_code == 401
    headers = echoed(httpx.get(served.base + "/public", headers=ANN))
    assert headers["x-waypost-user"] == "ann"


def test_a_forged_identity_is_stripped(served: Served) -> None:
    forged = {"X-Waypost-User": "root", "X-Waypost-Guard": "staff", "X_Waypost_User": "root"}
    headers = echoed(httpx.get(served.base + "/admin/page", headers={**ANN, **forged}))
    assert headers["x-waypost-user"] == "ann"
    assert headers["x-waypost-guard"] == "staff"
    assert "x_waypost_user" not in headers
    outside = echoed(httpx.get(served.base + "/elsewhere", headers=forged))
    assert not any(
        name.replace("_", "-") in ("x-waypost-user", "x-waypost-guard") for name in outside
    )


def test_a_flask_login_session_passes(served: Served) -> None:
    cookie = flask_cookie({"_user_id": "42"}, secret=SECRET)
    headers = echoed(httpx.get(served.base + "/account/home", cookies={"session": cookie}))
    assert headers["x-waypost-user"] == "42"
    browser = httpx.get(served.base + "/account/home", headers=BROWSER)
    # The guard's own login_url, as the rule names none.
    assert browser.headers["location"] == "/login?next=/account/home"


@pytest.mark.parametrize(
    "target",
    [
        "/admin/secret/",
        "/%61dmin/secret",
        "/admin%2Fsecret",
        "//admin/secret",
        "/./admin/secret",
        "/admin/./secret",
        "/x/../admin/secret",
        "/admin;p=1/secret",
        "/ADMIN/../admin/secret",
    ],
)
def test_every_spelling_of_a_guarded_path_is_guarded(served: Served, target: str) -> None:
    def get(target: str) -> bytes:
        request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        return raw_request(served.port, request.encode())

    answer = get(target)
    if answer.startswith(b"HTTP/1.1 308"):
        # Dot segments and repeated slashes: first sent to the path's normal form.
        location = re.search(rb"\r\nlocation: ([^\r]*)", answer, re.I)
        assert location is not None
        answer = get(location.group(1).decode())
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


@pytest.mark.parametrize("target", ["/admin%00/secret", "/%c0%ae%c0%ae/admin/secret"])
def test_a_nul_or_an_overlong_form_is_refused(served: Served, target: str) -> None:
    answer = raw_request(
        served.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_no_secret_reaches_the_log(served: Served, tmp_path: Path) -> None:
    httpx.get(served.base + "/admin/x", headers=ANN)
    assert "s3cret" not in served.stderr()
    assert SECRET not in served.stderr()
