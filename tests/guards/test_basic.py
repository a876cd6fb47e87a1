"""The basic guard: HTTP Basic against bcrypt hashes as ``htpasswd -B`` writes them."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import bcrypt
import pytest

from tests.guards.conftest import htpasswd_line
from waypost.guards import Allowed, Denied
from waypost.guards.basic import CACHE_SECONDS, BasicGuard, read_htpasswd
from waypost.rules.request import Request


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def guard(htpasswd: Path) -> BasicGuard:
    return BasicGuard("staff", read_htpasswd(htpasswd), "Staff")


def check(guard: BasicGuard, headers: dict[str, str]) -> Allowed | Denied:
    return guard.check(Request("GET", "/admin", headers=headers))


def test_the_right_password_passes_with_the_user(guard: BasicGuard) -> None:
    assert check(guard, basic("ann", "s3cret")) == Allowed("ann", {"user": "ann"}, "user 'ann'")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no Basic credentials"),
        ({"Authorization": "Bearer abc"}, "no Basic credentials"),
        ({"Authorization": "Basic !!!"}, "malformed Basic credentials"),
        # A header's bytes beyond ASCII arrive as latin-1 text: not base64 either.
        ({"Authorization": "Basic YW5uOnMzY3JldA\xe9="}, "malformed Basic credentials"),
        ({"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}, "malformed"),
        (basic("ann", "wrong"), "unknown user or wrong password"),
        (basic("zed", "s3cret"), "unknown user or wrong password"),
    ],
    ids=[
        "none",
        "other-scheme",
        "not-base64",
        "not-ascii",
        "no-colon",
        "wrong-password",
        "unknown-user",
    ],
)
def test_a_failure_is_a_401_with_a_basic_challenge(
    guard: BasicGuard, headers: dict[str, str], reason: str
) -> None:
    outcome = check(guard, headers)
    assert isinstance(outcome, Denied)
    assert outcome.status == 401
    assert reason in outcome.reason
    assert outcome.challenge == 'Basic realm="Staff", charset="UTF-8"'


def test_an_unknown_user_takes_about_as_long_as_a_wrong_password(guard: BasicGuard) -> None:
    def timed(headers: dict[str, str]) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            check(guard, headers)
            best = min(best, time.perf_counter() - start)
        return best

    wrong, unknown = timed(basic("ann", "wrong")), timed(basic("zed", "wrong"))
    # Both run one bcrypt check of the same cost (without the dummy check, an unknown user
    # answers in microseconds, a thousand times faster).
    assert 0.3 < unknown / wrong < 3


def test_a_success_is_remembered_for_a_while(
    guard: BasicGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[bytes] = []
    real = bcrypt.checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        checks.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    assert isinstance(check(guard, basic("ann", "s3cret")), Allowed)
    assert isinstance(check(guard, basic("ann", "s3cret")), Allowed)
    assert len(checks) == 1
    # A wrong password is never remembered, and does not hit the remembered success.
    assert isinstance(check(guard, basic("ann", "wrong")), Denied)
    assert isinstance(check(guard, basic("ann", "wrong")), Denied)
    assert len(checks) == 3
    later = time.monotonic() + CACHE_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert isinstance(check(guard, basic("ann", "s3cret")), Allowed)
    assert len(checks) == 4


def test_only_bcrypt_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# staff\n" + htpasswd_line("ann", "x") + "\nbob:$apr1$abc$def\n")
    with pytest.raises(ValueError, match=r"line 3 \(user 'bob'\) is not a bcrypt hash"):
        read_htpasswd(path)
