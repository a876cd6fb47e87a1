"""The engine's fast paths give exactly what the general path gives.

``Engine.resolve()`` takes shortcuts for the common requests (see :mod:`waypost.engine`); each test
here sets a shortcut's answer beside the one the general code gives for the same request.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from typing import Any

import pytest

from waypost.decision import Decision, new_decision
from waypost.rules.model import Pass, Rule


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": "pass"},
        {"action": "redirect", "status": 301, "location": "/x"},
        {"action": "rewrite", "path": "/p", "query": "a=1", "headers": (("X-A", "1"),)},
        {"action": "respond", "status": 410, "headers": (("A", "b"),), "body": "gone"},
    ],
    ids=["pass", "redirect", "rewrite", "respond"],
)
def test_new_decision_is_a_plain_decision(kwargs: dict[str, Any]) -> None:
    rule = Rule("/a", Pass(), 0)
    fast = new_decision(**kwargs, rule=rule)
    slow = Decision(**kwargs, rule=rule)
    assert type(fast) is Decision
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert [getattr(fast, f.name) for f in fields(Decision)] == [
        getattr(slow, f.name) for f in fields(Decision)
    ]
    with pytest.raises(FrozenInstanceError):
        fast.location = "/elsewhere"  # type: ignore[misc]
