"""The options of a ``jwt`` guard that a type alone does not check (see :mod:`.load`).

Exactly one key source (``jwks_url``, ``public_key``, ``secret_env``); a JWKS URL over https (or
http to this machine); algorithms that fit the source, never ``none``; ``claims`` as a mapping
of claim names to the values allowed. Pure: nothing is fetched or read here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from waypost.rules._errors import FieldError
from waypost.rules.model import JWT_KEY_ALGORITHMS, JWT_SECRET_ALGORITHMS

__all__ = ["check_jwt_options"]

_SOURCES = ("jwks_url", "public_key", "secret_env")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_EXAMPLE_URL = "https://auth.example.com/.well-known/jwks.json"
_EXAMPLE = f"jwt: {{jwks_url: {_EXAMPLE_URL}}}"


def _url(url: str) -> str | None:
    """Why ``url`` cannot be a JWKS URL, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"'jwks_url' is an https URL, got {url!r}"
    if parts.scheme not in ("https", "http") or not host:
        return f"'jwks_url' is an https URL like {_EXAMPLE_URL}, got {url!r}"
    if parts.scheme == "http" and host not in _LOOPBACK:
        # Keys fetched in the clear could be swapped on the way: anyone could then sign.
        return (
            f"'jwks_url' must be https (http only to 127.0.0.1 or localhost), got {url!r}; "
            "keys fetched over plain http could be replaced on the way"
        )
    if parts.username is not None or parts.password is not None:
        return "'jwks_url' holds a user or password; the URL is logged, so it must not"
    return None


def _algorithms(value: Any, source: str) -> tuple[tuple[str, ...], str | None]:
    """The algorithms named by ``value`` (the source's defaults when None), or why not."""
    fitting = JWT_SECRET_ALGORITHMS if source == "secret_env" else JWT_KEY_ALGORITHMS
    if value is None:
        return (("HS256",) if source == "secret_env" else fitting), None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return (), f"'algorithms' is a list of names like [RS256, ES256], got {value!r}"
    for name in names:
        if name.lower() == "none":
            return (), (
                "'algorithms' names 'none': a token without a signature would pass, so anyone "
                "could write one; remove it"
            )
        if name in fitting:
            continue
        if name in JWT_SECRET_ALGORITHMS or name in JWT_KEY_ALGORITHMS:
            why = (
                "an HMAC algorithm with a public key would let anyone who has the key sign "
                "(algorithm confusion)"
                if source != "secret_env"
                else "a shared secret signs only with HS256, HS384 or HS512"
            )
            return (), f"algorithm {name!r} does not go with {source!r}: {why}"
        close = difflib.get_close_matches(name, fitting, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(fitting)}"
        return (), f"unknown algorithm {name!r}; {hint}"
    return tuple(dict.fromkeys(names)), None


def _claims(value: Any) -> tuple[dict[str, tuple[Any, ...]], str | None]:
    """The claims as name -> allowed values, or why not."""
    example = "like claims: {role: [member, admin]}"
    if not isinstance(value, Mapping):
        return {}, f"'claims' maps a claim name to the values allowed, {example}; got {value!r}"
    claims: dict[str, tuple[Any, ...]] = {}
    for name, allowed in value.items():
        if not isinstance(name, str) or not name:
            return {}, f"a claim name is text, got {name!r}"
        if (
            not isinstance(allowed, list)
            or not allowed
            or not all(isinstance(v, str | int | float | bool) for v in allowed)
        ):
            return {}, (
                f"claim {name!r} needs a list of the values allowed, {example}; got {allowed!r}"
            )
        claims[name] = tuple(allowed)
    return claims, None


def check_jwt_options(
    name: str,
    value: Mapping[str, Any],
    options: dict[str, Any],
    folder: Path | None,
    where: tuple[str | int, ...],
) -> list[FieldError]:
    """Complete ``options`` (checked for their types already) of a ``jwt`` guard from the
    written ``value``; the problems found."""
    errors: list[FieldError] = []
    sources = [s for s in _SOURCES if s in options]
    if len(sources) != 1:
        given = f"got {' and '.join(map(repr, sources))}" if sources else "got none"
        errors.append(
            FieldError(
                "a 'jwt' guard takes exactly one of 'jwks_url', 'public_key' and 'secret_env', "
                f"like {_EXAMPLE}; {given}",
                where,
            )
        )
        return errors
    source = sources[0]
    if source == "jwks_url":
        problem = _url(options["jwks_url"])
        if problem:
            errors.append(FieldError(problem, (*where, "jwks_url")))
    elif source == "public_key" and folder is not None:
        path = options["public_key"]
        if not Path(path).is_absolute():
            # Relative to the rules file, as an htpasswd file is.
            options["public_key"] = str(folder / path)
    algorithms, problem = _algorithms(value.get("algorithms"), source)
    if problem:
        errors.append(FieldError(problem, (*where, "algorithms")))
    options["algorithms"] = algorithms
    if "claims" in value:
        claims, problem = _claims(value["claims"])
        if problem:
            errors.append(FieldError(problem, (*where, "claims")))
        options["claims"] = claims
    leeway = value.get("leeway", 30)
    if isinstance(leeway, bool) or not isinstance(leeway, int) or leeway < 0:
        errors.append(
            FieldError(
                f"'leeway' is a number of seconds, 0 or more, got {leeway!r}", (*where, "leeway")
            )
        )
    options["leeway"] = leeway
    if "jwks_refresh" in value and source != "jwks_url":
        errors.append(
            FieldError(
                "'jwks_refresh' goes with 'jwks_url' (how often its keys are fetched again)",
                (*where, "jwks_refresh"),
                at_key=True,
            )
        )
    options.setdefault("realm", name)
    return errors
