"""A guard that is a Python callable: ``Engine(..., guards={"name": check})``.

``check(request)`` gets the :class:`~waypost.rules.request.Request` and returns an identity
mapping (or True) (the request passes; its ``"user"`` value, else ``"id"`` or ``"name"``, becomes
``X-Waypost-User``), ``None`` (not authenticated: 401, or a browser's redirect to the login page)
or ``False`` (authenticated but not allowed: 403, never a login loop). What it raises reaches the
caller: the request is not let through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from waypost.guards.base import Allowed, Denied, Outcome
from waypost.rules.request import Request

__all__ = ["GuardCheck", "PythonGuard"]

GuardCheck = Callable[[Request], "Mapping[str, Any] | bool | None"]


class PythonGuard:
    """A guard whose check the application gives."""

    kind = "python"

    def __init__(self, name: str, check: GuardCheck, login_url: str | None = None) -> None:
        self.name = name
        self.login_url = login_url
        self._check = check

    def __repr__(self) -> str:
        return f"PythonGuard({self.name!r}, {self._check!r})"

    def check(self, request: Request) -> Outcome:
        """What the callable says, as an Allowed or Denied."""
        answer = self._check(request)
        if answer is None:
            return Denied(401, "the check found no identity")
        if answer is True:
            return Allowed("", {}, "allowed (the check gave no identity)")
        if answer is False:
            return Denied(403, "the check refused this identity")
        if not isinstance(answer, Mapping):
            raise TypeError(
                f"guard {self.name!r}: the check returned {type(answer).__name__}; "
                "return an identity mapping, None (not logged in) or False (not allowed)"
            )
        user = ""
        for key in ("user", "id", "name"):  # a loop, not next() of a generator: run per request
            value = answer.get(key)
            if value not in (None, ""):
                user = str(value)
                break
        return Allowed(user, dict(answer), f"user {user!r}" if user else "identity given")
