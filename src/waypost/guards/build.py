"""Guards from their declarations (a rules file's ``guards:``) and the application's callables.

Everything a guard needs is read here, once per load: the htpasswd file, the signing key from its
environment variable, the public key file or the JWKS (fetched from its URL) of a ``jwt`` guard.
A ``forward_auth`` guard's auth service is not asked here: it is asked per request, by the
adapter.
A problem is a :class:`~waypost.exceptions.RuleError` at the guard's ``file:line`` that says how
to fix it; the cryptography libraries are an extra (``pip install 'waypost[guards]'``), and
their absence is such an error too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from waypost.exceptions import RuleError
from waypost.guards.api_key import ApiKeyGuard, KeyRing
from waypost.guards.base import Guard
from waypost.guards.forward_auth import ForwardAuthGuard
from waypost.guards.python import PythonGuard
from waypost.rules.model import GuardSpec

__all__ = ["build_guards"]

_EXTRA = "pip install 'waypost[guards]'"


_SET_IT = "set it where the server or the app runs"


def _secret(spec: GuardSpec, variable: str, what: str, fix: str) -> str:
    """The value of the environment variable ``variable`` (``what`` it holds for ``spec``); a
    RuleError saying ``fix`` when it is unset or empty. The name of the variable, never its
    value."""
    value = os.environ.get(variable)
    if not value:
        raise RuleError(
            f"guard {spec.name!r}: the environment variable {variable!r} ({what}) is not set; "
            f"{fix}",
            file=spec.file,
            line=spec.line,
        )
    return value


def _missing(spec: GuardSpec, library: str) -> RuleError:
    return RuleError(
        f"guard {spec.name!r}: the {spec.kind!r} guard needs the {library!r} library; {_EXTRA}",
        file=spec.file,
        line=spec.line,
    )


def _build(
    spec: GuardSpec, callables: Mapping[str, Callable[..., Any]], keys: KeyRing | None
) -> Guard:
    options = spec.options
    if spec.kind == "api_key":
        if keys is None:
            raise RuleError(
                f"guard {spec.name!r}: an 'api_key' guard checks the access keys of a rule "
                "store, and none was given: serve with --db URL (or --keys URL), or in Python "
                "pass Engine.from_file(..., keys=open_store(URL).keyring())",
                file=spec.file,
                line=spec.line,
            )
        return ApiKeyGuard(
            spec.name,
            options["audience"],
            keys,
            spec.login_url,
            max_failures=options["max_failures"],
            window=options["window"],
        )
    if spec.kind == "basic":
        try:
            from waypost.guards.basic import BasicGuard, read_htpasswd
        except ImportError as exc:
            if exc.name != "bcrypt":
                raise
            raise _missing(spec, "bcrypt") from None
        path = options["htpasswd"]
        try:
            users = read_htpasswd(path)
        except OSError as exc:
            raise RuleError(
                f"guard {spec.name!r}: cannot read the htpasswd file {path!r}: {exc.strerror}; "
                "its path is relative to the rules file",
                file=spec.file,
                line=spec.line,
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise RuleError(
                f"guard {spec.name!r}: the htpasswd file {path!r}: {exc}",
                file=spec.file,
                line=spec.line,
            ) from None
        return BasicGuard(
            spec.name,
            users,
            options["realm"],
            spec.login_url,
            max_failures=options["max_failures"],
            window=options["window"],
        )
    if spec.kind == "session":
        try:
            from waypost.guards.session import SessionGuard
        except ImportError as exc:
            if exc.name != "itsdangerous":
                raise
            raise _missing(spec, "itsdangerous") from None
        secret = _secret(spec, options["secret_env"], "the app's SECRET_KEY", _SET_IT)
        secrets = [
            _secret(
                spec,
                fallback,
                "an old key in secret_fallbacks_env",
                "set it, or remove it from the list once no cookie signed with it is in use",
            )
            for fallback in options.get("secret_fallbacks_env", ())
        ]
        # As Flask's SecureCookieSessionInterface: the fallbacks, then the current key last
        # (itsdangerous signs with the last key and verifies with each of them).
        secrets.append(secret)
        return SessionGuard(
            spec.name,
            secrets,
            cookie=options["cookie"],
            key=options["key"],
            max_age=options["max_age"],
            login_url=spec.login_url,
            max_failures=options["max_failures"],
            window=options["window"],
        )
    if spec.kind == "jwt":
        return _build_jwt(spec)
    if spec.kind == "forward_auth":
        return ForwardAuthGuard(
            spec.name,
            options["url"],
            options["copy_headers"],
            timeout=options["timeout"],
            cache=options["cache"],
            user_header=options.get("user_header"),
            login_url=spec.login_url,
        )
    # kind 'python': declared in the file, given to the engine as a callable.
    check = callables.get(spec.name)
    if check is None:
        raise RuleError(
            f"guard {spec.name!r} is a python guard, but the engine was given no check for it; "
            f"pass Engine(..., guards={{{spec.name!r}: check}})",
            file=spec.file,
            line=spec.line,
        )
    return PythonGuard(spec.name, check, spec.login_url)


def _build_jwt(spec: GuardSpec) -> Guard:
    try:
        from waypost.guards.jwt import (
            JwksKeys,
            JwtGuard,
            KeySource,
            StaticKey,
            fitting_algorithms,
            read_public_key,
        )
    except ImportError as exc:
        if exc.name not in ("jwt", "cryptography") and not (exc.name or "").startswith(
            "cryptography."
        ):
            raise
        raise _missing(spec, "PyJWT[crypto]") from None
    options = spec.options

    def error(message: str) -> RuleError:
        return RuleError(f"guard {spec.name!r}: {message}", file=spec.file, line=spec.line)

    algorithms: tuple[str, ...] = options["algorithms"]
    keys: KeySource
    if "jwks_url" in options:
        url = options["jwks_url"]
        try:
            keys = JwksKeys(url, options["jwks_refresh"])
        except Exception as exc:  # PyJWT's errors, and a body that is not JSON
            raise error(
                f"cannot fetch the JWKS from {url!r}: {exc}; check the URL and that the "
                "identity provider is up (the keys are fetched when the rules load)"
            ) from None
    elif "public_key" in options:
        path = options["public_key"]
        try:
            key = read_public_key(path)
        except OSError as exc:
            raise error(
                f"cannot read the public key file {path!r}: {exc.strerror}; its path is "
                "relative to the rules file"
            ) from None
        except ValueError as exc:
            raise error(f"the public key file {path!r}: {exc}") from None
        fitting = fitting_algorithms(key, algorithms)
        if not fitting:
            raise error(
                f"the public key in {path!r} cannot verify any of the algorithms "
                f"{list(algorithms)!r}; name the algorithms of the key (RS256 for an RSA key, "
                "ES256 for a P-256 key, EdDSA for an Ed25519 key)"
            )
        algorithms = fitting
        keys = StaticKey(key, f"public_key={path!r}")
    else:
        variable = options["secret_env"]
        secret = _secret(spec, variable, "the tokens' shared secret", _SET_IT)
        # RFC 7518 3.2: an HMAC key at least as long as the hash (32 bytes for HS256).
        shortest = max(int(a[2:]) // 8 for a in algorithms)
        if len(secret.encode("utf-8")) < shortest:
            raise error(
                f"the secret in {variable!r} is shorter than {shortest} bytes, too short for "
                f"{', '.join(algorithms)} (RFC 7518 3.2); use a longer random secret"
            )
        keys = StaticKey(secret.encode("utf-8"), f"secret_env={variable!r}")
    return JwtGuard(
        spec.name,
        keys,
        algorithms,
        issuer=options.get("issuer"),
        audience=options.get("audience"),
        claims=options.get("claims"),
        leeway=options["leeway"],
        user_claim=options["user_claim"],
        cookie=options.get("cookie"),
        realm=options["realm"],
        login_url=spec.login_url,
        max_failures=options["max_failures"],
        window=options["window"],
    )


def build_guards(
    specs: Iterable[GuardSpec],
    callables: Mapping[str, Callable[..., Any]] | None = None,
    keys: KeyRing | None = None,
) -> tuple[dict[str, Guard], list[RuleError]]:
    """Every guard by name, and the errors of those that could not be built.

    ``callables`` are guards given as Python checks (see :mod:`waypost.guards.python`); a file
    may declare them (``name: {python: {}}``) or just ``require`` them. ``keys`` are the access
    keys ``api_key`` guards check (see :mod:`waypost.guards.api_key`).
    """
    callables = dict(callables or {})
    guards: dict[str, Guard] = {}
    errors: list[RuleError] = []
    for spec in specs:
        try:
            guards[spec.name] = _build(spec, callables, keys)
        except RuleError as exc:
            errors.append(exc)
    for name, check in callables.items():
        if name in guards:
            continue
        if not callable(check):
            errors.append(RuleError(f"guard {name!r}: {check!r} is not callable"))
            continue
        guards[name] = PythonGuard(name, check)
    return guards, errors
