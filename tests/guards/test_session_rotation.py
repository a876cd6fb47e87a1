"""The session guard's ``secret_fallbacks_env``: Flask's ``SECRET_KEY_FALLBACKS`` (Flask 3.1),
checked against real Flask: a cookie passes the guard exactly when Flask itself accepts it."""

from __future__ import annotations

from pathlib import Path

import flask
import pytest

from tests.guards.test_session import flask_cookie
from waypost.engine import Engine
from waypost.exceptions import RulesError

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")

CURRENT, OLD, OLDER = "current-key", "old-key", "older-key"
RULES = """\
guards:
  login:
    session: {{secret_env: FLASK_SECRET_KEY{fallbacks}}}
rules:
  - from: /account/<path:rest>
    require: login
    to: /home
"""


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_SECRET_KEY", CURRENT)
    monkeypatch.setenv("FLASK_OLD_KEY", OLD)
    monkeypatch.setenv("FLASK_OLDER_KEY", OLDER)


def engine_for(tmp_path: Path, fallbacks: str = "") -> Engine:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(fallbacks=fallbacks))
    return Engine.from_file(path)


def passes(engine: Engine, cookie: str) -> bool:
    decision = engine.resolve("GET", "/account/x", [("Cookie", f"session={cookie}")])
    assert decision.status in (301, 401)
    return decision.status == 301


def flask_accepts(cookie: str, fallbacks: list[str]) -> bool:
    """Whether Flask, with ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, reads the session."""
    app = flask.Flask(__name__)
    app.secret_key = CURRENT
    app.config["SECRET_KEY_FALLBACKS"] = fallbacks

    @app.get("/who")
    def who() -> str:
        return str(flask.session.get("_user_id", "-"))

    client = app.test_client()
    client.set_cookie("session", cookie)
    return client.get("/who").text == "42"


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize(
    ("fallbacks", "variables"),
    [
        ([], ""),
        ([OLD], ", secret_fallbacks_env: [FLASK_OLD_KEY]"),
        ([OLD, OLDER], ", secret_fallbacks_env: [FLASK_OLD_KEY, FLASK_OLDER_KEY]"),
        ([OLD], ", secret_fallbacks_env: FLASK_OLD_KEY"),
    ],
    ids=["no-fallbacks", "one", "two", "one-as-text"],
)
@pytest.mark.parametrize("signed_with", [CURRENT, OLD, OLDER, "another-key"])
def test_the_guard_accepts_what_flask_accepts(
    tmp_path: Path, fallbacks: list[str], variables: str, signed_with: str
) -> None:
    cookie = flask_cookie({"_user_id": "42"}, secret=signed_with)
    expected = signed_with == CURRENT or signed_with in fallbacks
    assert flask_accepts(cookie, fallbacks) is expected
    assert passes(engine_for(tmp_path, variables), cookie) is expected


@pytest.mark.usefixtures("keys")
def test_a_cookie_flask_signs_during_the_rotation_uses_the_current_key(tmp_path: Path) -> None:
    app = flask.Flask(__name__)
    app.secret_key = CURRENT
    app.config["SECRET_KEY_FALLBACKS"] = [OLD]

    @app.post("/login")
    def login() -> str:
        flask.session["_user_id"] = "42"
        return "ok"

    client = app.test_client()
    client.post("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert passes(engine_for(tmp_path), cookie.value)  # no fallbacks needed


@pytest.mark.usefixtures("keys")
def test_an_unset_fallback_variable_is_a_load_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLASK_OLDER_KEY")
    with pytest.raises(RulesError) as caught:
        engine_for(tmp_path, ", secret_fallbacks_env: [FLASK_OLD_KEY, FLASK_OLDER_KEY]")
    message = str(caught.value)
    assert "rules.yaml:2" in message
    assert "the environment variable 'FLASK_OLDER_KEY' (an old key in secret_fallbacks_env)" in (
        message
    )
    assert OLD not in message and CURRENT not in message


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize("value", ["[1]", "{a: b}", "['']"], ids=["number", "mapping", "empty"])
def test_fallbacks_are_variable_names(tmp_path: Path, value: str) -> None:
    with pytest.raises(RulesError, match="'secret_fallbacks_env' is a list of environment"):
        engine_for(tmp_path, f", secret_fallbacks_env: {value}")
