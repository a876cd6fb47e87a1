"""What a guard answers, and what every guard kind provides.

A guard is a sans-io check on a :class:`~waypost.rules.request.Request`: it reads headers and
cookies, never the network, and answers :class:`Allowed` (with the identity it found) or
:class:`Denied` (with the status and, for a 401, the ``WWW-Authenticate`` challenge that fits).
A guard that must ask a service (``forward_auth``) answers :class:`Ask`: the adapter makes the
request and gives the answer back to the engine (see :mod:`waypost.guards.forward_auth`).
A ``reason`` is for ``waypost explain`` and logs: it never holds a secret (no password, token or
cookie value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from waypost.rules.request import Request

__all__ = ["AUTHORIZATION", "Allowed", "Ask", "Denied", "Guard", "Outcome"]

#: The Authorization header, as :meth:`Request.headers_named` takes it (one tuple, made once).
AUTHORIZATION = ("authorization",)


@dataclass(frozen=True, slots=True)
class Allowed:
    """The guard passed: ``user`` is who the request is (sent on as ``X-Waypost-User``);
    ``headers`` are more identity headers the guard sends on (``X-Waypost-Key-Id``, a forward
    auth's copied headers), never ``X-Waypost-User`` or ``X-Waypost-Guard`` (the layer's own)."""

    user: str
    identity: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Denied:
    """The guard failed: 401 (no or bad credentials), 403 (known, but not allowed) or 429 (too
    many wrong credentials from this client lately).

    ``challenge`` is the ``WWW-Authenticate`` value of a 401 (``Basic realm="Staff"``), None
    when the kind has none; ``retry_after`` the seconds a 429 asks the client to wait;
    ``message`` what the client is told instead of the status's standard text (how to send a
    key, say; never a secret).
    """

    status: Literal[401, 403, 429]
    reason: str
    challenge: str | None = None
    retry_after: int | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """The guard cannot answer alone: GET ``url`` with ``headers`` (within ``timeout``
    seconds), and the service's answer decides. ``headers`` carry the client's credentials, so
    they are in no repr."""

    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    timeout: float
    reason: str = ""


Outcome = Allowed | Denied | Ask


class Guard(Protocol):
    """One named guard, built from a rules file's ``guards:`` or given as a Python callable."""

    @property
    def name(self) -> str:
        """The name rules ``require``."""

    @property
    def kind(self) -> str:
        """``api_key``, ``basic``, ``session``, ``jwt``, ``python``, ..."""

    @property
    def login_url(self) -> str | None:
        """Where a browser is sent when the guard fails (the guard's own; a rule's comes first)."""

    def check(self, request: Request) -> Outcome:
        """Allowed or Denied; reads the request only."""
