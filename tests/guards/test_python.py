"""A guard that is a Python callable: identity mapping, True, None, False; and a wrong answer."""

from __future__ import annotations

from typing import Any

import pytest

from waypost.guards import Allowed, Denied, PythonGuard
from waypost.rules.request import Request

REQUEST = Request("GET", "/a")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (
            {"user": "ann", "role": "admin"},
            Allowed("ann", {"user": "ann", "role": "admin"}, "user 'ann'"),
        ),
        ({"id": 7}, Allowed("7", {"id": 7}, "user '7'")),
        (True, Allowed("", {}, "allowed (the check gave no identity)")),
        (None, Denied(401, "the check found no identity")),
        (False, Denied(403, "the check refused this identity")),
    ],
    ids=["user", "id", "true", "none-401", "false-403"],
)
def test_what_the_check_returns_becomes_the_outcome(answer: Any, outcome: Any) -> None:
    assert PythonGuard("app", lambda r: answer).check(REQUEST) == outcome


def test_a_check_returning_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="return an identity mapping"):
        PythonGuard("app", lambda r: "ann").check(REQUEST)  # type: ignore[arg-type,return-value]
