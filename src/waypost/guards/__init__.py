"""Guards: checks that protect the site's own paths (see docs/guards.md).

A rules file declares named guards (``guards:``) and rules ``require`` them; the engine runs
every guard whose rule matches a request before any other rule is considered (see
:mod:`waypost.engine`). The kinds are sans-io checks on a
:class:`~waypost.rules.request.Request`:

- ``api_key``: access keys of the rule store (:mod:`.api_key`);
- ``basic``: HTTP Basic against an htpasswd file of bcrypt hashes (:mod:`.basic`);
- ``session``: a signed Flask session cookie, as Flask-Login writes it (:mod:`.session`);
- ``jwt``: a JSON Web Token in ``Authorization: Bearer``, verified with PyJWT against a JWKS, a
  public key or a shared secret (:mod:`.jwt`);
- ``forward_auth``: an auth service asked over HTTP, as Traefik's ForwardAuth and nginx's
  auth_request do; sans-io too: the guard says what to ask, the adapter asks
  (:mod:`.forward_auth`);
- ``python``: a callable the application gives the engine (:mod:`.python`).

``basic``, ``session`` and ``jwt`` need the ``guards`` extra (bcrypt, itsdangerous, PyJWT with
cryptography).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from waypost.guards.api_key import KEY_ID_HEADER, AccessKey, ApiKeyGuard, KeyRing
from waypost.guards.base import Allowed, Ask, Denied, Guard, Outcome
from waypost.guards.build import build_guards
from waypost.guards.forward_auth import ForwardAuthGuard, ServiceAnswer
from waypost.guards.python import GuardCheck, PythonGuard

__all__ = [
    "GUARD_HEADER",
    "IDENTITY_HEADERS",
    "IDENTITY_KEYS",
    "KEY_ID_HEADER",
    "USER_HEADER",
    "AccessKey",
    "Allowed",
    "ApiKeyGuard",
    "Ask",
    "Denied",
    "ForwardAuthGuard",
    "Guard",
    "GuardCheck",
    "KeyRing",
    "Outcome",
    "PythonGuard",
    "ServiceAnswer",
    "build_guards",
    "without_identity_headers",
]

#: The request header the app or upstream gets the user in; a client's own copy is removed.
USER_HEADER = "X-Waypost-User"
#: The request header naming the guards that passed (comma-separated).
GUARD_HEADER = "X-Waypost-Guard"
IDENTITY_HEADERS = (USER_HEADER, GUARD_HEADER, KEY_ID_HEADER)
#: The identity headers in lower case (the engine adds those its forward_auth guards copy).
IDENTITY_KEYS = frozenset(name.lower() for name in IDENTITY_HEADERS)


def without_identity_headers(
    headers: Iterable[tuple[str, str]], names: Collection[str] = IDENTITY_KEYS
) -> list[tuple[str, str]]:
    """``headers`` without any copy of the identity headers: what a client (or a rule's
    ``set_headers``) sent in them is removed before the guards' own are set. ``X_Waypost_User``
    goes too: some servers read ``_`` as ``-`` (a WSGI environ has one key for both).

    ``names`` are the identity headers in lower case: ``Engine.identity_header_names`` adds
    the headers a ``forward_auth`` guard copies from its auth service."""
    return [(k, v) for k, v in headers if k.lower().replace("_", "-") not in names]
