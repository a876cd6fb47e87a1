"""The ``guards:`` of a rules file (or of the rule store): each name mapped to one kind with
its options, checked here with errors that say where and how to fix; the guards themselves are
built from these declarations by :mod:`waypost.guards`."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from waypost.rules._build import check_login_url
from waypost.rules._errors import FieldError
from waypost.rules._forward_auth_options import check_forward_auth_options
from waypost.rules._jwt_options import check_jwt_options
from waypost.rules.model import AUDIENCE, GUARD_KINDS, LATER_GUARD_KINDS, GuardSpec
from waypost.rules.safety import control_character

__all__ = ["parse_guards"]


# The options of each guard kind: name -> (required, type, default). ``python`` is a guard whose
# check the application gives the engine (``Engine(..., guards={name: check})``).
_GUARD_OPTIONS: dict[str, dict[str, tuple[bool, type, Any]]] = {
    # Keys of the rule store given this audience (waypost keys create --audience NAME).
    "api_key": {
        "audience": (True, str, None),
        "max_failures": (False, int, 10),
        "window": (False, int, 60),
    },
    "basic": {
        "htpasswd": (True, str, None),
        "realm": (False, str, None),
        # Failed credentials per client within `window` seconds before a 429 (see guards._limit).
        "max_failures": (False, int, 10),
        "window": (False, int, 60),
    },
    "session": {
        "secret_env": (True, str, None),
        # Flask's SECRET_KEY_FALLBACKS: the variables holding the old keys, still accepted.
        "secret_fallbacks_env": (False, list, None),
        "cookie": (False, str, "session"),
        "key": (False, str, "_user_id"),
        # Flask's PERMANENT_SESSION_LIFETIME default: 31 days.
        "max_age": (False, int, 31 * 24 * 3600),
        "max_failures": (False, int, 10),
        "window": (False, int, 60),
    },
    # A JWT in 'Authorization: Bearer'; one key source of the three (see rules._jwt_options,
    # which checks the options typed `object` here).
    "jwt": {
        "jwks_url": (False, str, None),
        "public_key": (False, str, None),
        "secret_env": (False, str, None),
        "issuer": (False, str, None),
        "audience": (False, str, None),
        "claims": (False, object, None),
        "algorithms": (False, object, None),
        "leeway": (False, object, None),
        "user_claim": (False, str, "sub"),
        "cookie": (False, str, None),
        "realm": (False, str, None),
        "jwks_refresh": (False, int, 300),
        "max_failures": (False, int, 10),
        "window": (False, int, 60),
    },
    # The external-auth pattern (Traefik's ForwardAuth, Caddy's forward_auth, nginx's
    # auth_request); rules._forward_auth_options checks the options typed `object` here.
    "forward_auth": {
        "url": (True, str, None),
        "copy_headers": (False, object, None),
        "timeout": (False, object, None),
        "cache": (False, object, None),
        "user_header": (False, str, None),
    },
    "python": {},
}
_ALL_KINDS = (*GUARD_KINDS, "python", *LATER_GUARD_KINDS)


def _guard_options(
    name: str, kind: str, value: Any, folder: Path | None
) -> tuple[dict[str, Any], list[FieldError]]:
    where: tuple[str | int, ...] = ("guards", name, kind)
    declared = _GUARD_OPTIONS[kind]
    a = "an" if kind[0] in "aeiou" else "a"
    if value is None or value is True:
        value = {}
    if not isinstance(value, Mapping):
        return {}, [
            FieldError(f"the options of {a} {kind!r} guard are a mapping, got {value!r}", where)
        ]
    errors: list[FieldError] = []
    options: dict[str, Any] = {}
    for key in value:
        if key not in declared:
            close = difflib.get_close_matches(str(key), list(declared), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"{a} {kind!r} guard takes {', '.join(declared) or 'no options'}"
            )
            errors.append(FieldError(f"unknown option {key!r}; {hint}", (*where, key), at_key=True))
    for key, (required, kind_type, default) in declared.items():
        item = value.get(key, default)
        if item is None:
            if required:
                errors.append(
                    FieldError(
                        f"{a} {kind!r} guard needs {key!r}, like {kind}: {{{key}: ...}}", where
                    )
                )
            continue
        if kind_type is object:
            continue  # checked by the kind's own check, below
        if kind_type is list:
            names = [item] if isinstance(item, str) else item
            if not isinstance(names, list) or not all(
                isinstance(n, str) and n and not control_character(n) and '"' not in n
                for n in names
            ):
                errors.append(
                    FieldError(
                        f"{key!r} is a list of environment variable names, like [OLD_SECRET_KEY], "
                        f"got {item!r}",
                        (*where, key),
                    )
                )
                continue
            options[key] = tuple(names)
            continue
        if (
            not isinstance(item, kind_type)
            or isinstance(item, bool)
            or (isinstance(item, str) and (not item or control_character(item) or '"' in item))
            or (isinstance(item, int) and item <= 0)
        ):
            what = "a positive number" if kind_type is int else "text without quotes"
            errors.append(FieldError(f"{key!r} is {what}, got {item!r}", (*where, key)))
            continue
        options[key] = item
    htpasswd = options.get("htpasswd")
    if htpasswd is not None and folder is not None and not Path(htpasswd).is_absolute():
        # Relative to the rules file, as a server started from another folder must find it.
        options["htpasswd"] = str(folder / htpasswd)
    if kind == "basic":
        options.setdefault("realm", name)
    audience = options.get("audience")
    if audience is not None and not AUDIENCE.fullmatch(audience):
        errors.append(
            FieldError(
                f"an audience is letters, digits, '.', '_' and '-' (like partners), "
                f"got {audience!r}",
                (*where, "audience"),
            )
        )
    if kind == "jwt" and not errors:
        errors.extend(check_jwt_options(name, value, options, folder, where))
    if kind == "forward_auth" and not errors:
        errors.extend(check_forward_auth_options(value, options, where))
    return options, errors


def parse_guards(
    value: Any, file: str | None, line_of: Callable[[str], int | None]
) -> tuple[tuple[GuardSpec, ...], list[FieldError]]:
    """The guards declared under ``guards:`` (name -> one kind with its options)."""
    if not isinstance(value, Mapping):
        return (), [
            FieldError(
                "'guards' maps a name to one guard kind with its options, like "
                "guards: {staff: {basic: {htpasswd: staff.htpasswd}}}",
                ("guards",),
            )
        ]
    folder = Path(file).parent if file is not None else None
    specs: list[GuardSpec] = []
    errors: list[FieldError] = []
    for name, body in value.items():
        where: tuple[str | int, ...] = ("guards", name)
        if not isinstance(name, str) or not name.replace("_", "a").replace("-", "a").isalnum():
            errors.append(
                FieldError(
                    f"a guard name is letters, digits, '_' and '-', got {name!r}",
                    where,
                    at_key=True,
                )
            )
            continue
        if not isinstance(body, Mapping):
            errors.append(
                FieldError(
                    f"guard {name!r} is a mapping of one kind to its options, like "
                    f"{name}: {{basic: {{htpasswd: users.htpasswd}}}}; got {body!r}",
                    where,
                )
            )
            continue
        login_url = None
        if "login_url" in body:
            try:
                login_url = check_login_url(body["login_url"], (*where, "login_url"))
            except FieldError as exc:
                errors.append(exc)
        kinds = [k for k in body if k != "login_url"]
        if len(kinds) != 1:
            errors.append(
                FieldError(
                    f"guard {name!r} has exactly one kind ({', '.join(GUARD_KINDS)} or python), "
                    f"got {', '.join(map(repr, kinds)) or 'none'}",
                    where,
                )
            )
            continue
        kind = kinds[0]
        if kind in LATER_GUARD_KINDS:
            errors.append(
                FieldError(
                    f"guard kind {kind!r} is not available yet; use one of "
                    f"{', '.join(GUARD_KINDS)}, or python (a check given to the Engine)",
                    (*where, kind),
                    at_key=True,
                )
            )
            continue
        if kind not in _GUARD_OPTIONS:
            close = difflib.get_close_matches(str(kind), _ALL_KINDS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(_ALL_KINDS)}"
            errors.append(
                FieldError(f"unknown guard kind {kind!r}; {hint}", (*where, kind), at_key=True)
            )
            continue
        options, problems = _guard_options(name, kind, body[kind], folder)
        errors.extend(problems)
        if not problems:
            specs.append(GuardSpec(name, kind, options, login_url, file, line_of(name)))
    return tuple(specs), errors
