"""What every admin route shares: the store, the engine cache, the failure limiter, the options,
and the errors the routes raise for the exception handlers to render."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from waypost.admin._ratelimit import FailureLimiter
from waypost.admin.service import EngineCache, ServedEngine, problems_out
from waypost.engine import Engine
from waypost.store.base import Store
from waypost.store.model import Revision

__all__ = ["COOKIE_NAME", "CSRF_HEADER", "AdminContext", "ApiError", "AuthFailure"]

log = logging.getLogger("waypost.admin")

#: The login cookie: holds a sign-in session token (``wps_...``), never the API key a person
#: pasted; HttpOnly, SameSite=Strict, on the admin path.
COOKIE_NAME = "waypost_admin"
#: The header a cookie-authenticated unsafe request must carry (CSRF: a cross-site form cannot
#: send a custom header, and a cross-site fetch() that tries gets no CORS permission).
CSRF_HEADER = "X-Waypost-Request"


class ApiError(Exception):
    """An error response: ``status``, a machine code ``error``, a ``message`` for people."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(message)

    @classmethod
    def of_problems(
        cls, status: int, error: str, message: str, problems: Iterable[tuple[str, str]]
    ) -> ApiError:
        """An error listing ``problems`` (``(path, message)`` pairs) as ``problems``."""
        return cls(status, error, message, extra={"problems": problems_out(problems)})

    def body(self) -> dict[str, object]:
        """The JSON body: ``{"error", "message", ...}``."""
        return {"error": self.error, "message": self.message, **self.extra}


class AuthFailure(ApiError):
    """A request without good credentials: 401 (a browser is sent to the login page instead),
    403 (the key may not do this), or 429 (too many failures from this address)."""


@dataclass(slots=True)
class AdminContext:
    """The admin app's state, shared by its routes (one per :func:`create_admin_app`)."""

    store: Store
    prefix: str = ""
    on_change: Callable[[int], object] | None = None
    require_if_match: bool = False
    #: How long a sign-in lasts: the cookie's Max-Age and the session's lifetime.
    cookie_max_age: int = 8 * 3600
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    #: The serving server's health (the standalone server's ``/_waypost/health`` details), for
    #: the overview page; None in a user's app, where the page reports the store's state.
    health: Callable[[], Mapping[str, object]] | None = None
    #: Where the API keys and sign-in sessions are, when not in ``store`` (a served file's
    #: statistics are in a temporary store; its keys in the ``--keys`` store).
    keys: Store | None = None
    #: The rules file a server serves, when the store holds only its statistics: the rules are
    #: changed in the file, and ``served()`` is the engine serving it.
    rules_file: str | None = None
    served: Callable[[], Engine] | None = None
    engines: EngineCache = field(init=False)
    _notified: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.engines = ServedEngine(self.served) if self.served else EngineCache(self.store)

    @property
    def key_store(self) -> Store:
        """The store that checks API keys and sign-in sessions."""
        return self.keys if self.keys is not None else self.store

    def base(self, request: Request) -> str:
        """The admin app's public path prefix (``/_waypost``), mount point included."""
        return str(request.scope.get("root_path", "")).rstrip("/") + self.prefix

    @staticmethod
    def peer(request: Request) -> str | None:
        """The client's address, as the ASGI server saw it (None when it did not say). Behind a
        load balancer this is the balancer's: the admin app does not read X-Forwarded-For."""
        return request.client.host if request.client is not None else None

    @classmethod
    def address(cls, request: Request) -> str:
        """The client's address for counting refusals (:meth:`peer`, or ``"unknown"``)."""
        return cls.peer(request) or "unknown"

    def changed(self, revision: Revision | None) -> None:
        """Tell ``on_change`` about a new revision (None: the write changed nothing)."""
        if revision is not None:
            self.changed_to(revision.number)

    def changed_to(self, number: int) -> None:
        """Tell ``on_change`` that the store is at revision ``number``, if that is newer than
        what it was last told (a write that changed nothing returns an older version). A
        failing callback is logged: the change is committed either way."""
        if self.on_change is None or number <= self._notified:
            return
        self._notified = number
        try:
            self.on_change(number)
        except Exception:
            log.exception("waypost admin: on_change(%s) failed", number)
