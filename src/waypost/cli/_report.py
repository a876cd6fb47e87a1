"""How the ``waypost`` commands tell people what went wrong: one line (or one block) on standard
error and an exit code, never a traceback.

- :func:`exit_with_rule_errors`: every error of a rules file (or a cases file, or a store) under
  a ``FILE: N errors`` head, then exit 1; the one place that prints a
  :class:`~waypost.exceptions.RulesError`;
- :func:`fail`: ``error: MESSAGE`` and an exit code;
- :func:`reports_errors`: a command decorator turning the errors Waypost raises into those;
- :func:`load_engine`: the engine for a rules file, or its errors and exit 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar, cast

import click

from waypost.engine import Engine, RouteResolver
from waypost.exceptions import RuleError, RulesError, SettingsError, WaypostError
from waypost.guards import KeyRing
from waypost.server.config import SETTING

__all__ = [
    "exit_with_rule_errors",
    "fail",
    "load_engine",
    "pack_rules_setting",
    "print_rule_errors",
    "reports_errors",
]

F = TypeVar("F", bound=Callable[..., Any])


def print_rule_errors(errors: Sequence[RuleError], file: str) -> None:
    """``FILE: N errors`` on standard error, then each error indented."""
    count = len(errors)
    click.echo(f"{file}: {count} error{'s' if count != 1 else ''}", err=True)
    for error in errors:
        click.echo(f"  {error}", err=True)


def exit_with_rule_errors(errors: Sequence[RuleError], file: str) -> NoReturn:
    """Print ``errors`` (see :func:`print_rule_errors`) and exit 1."""
    print_rule_errors(errors, file)
    sys.exit(1)


def fail(message: str, code: int = 1) -> NoReturn:
    """``error: MESSAGE`` on standard error, and exit ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def reports_errors(func: F) -> F:
    """Turn the errors Waypost raises into messages for people and exit code 1 (no traceback):
    a RulesError lists every error (named after the rules' file, or ``rules``), any other
    WaypostError is one ``error:`` line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RulesError as exc:
            exit_with_rule_errors(exc.errors, exc.file or "rules")
        except WaypostError as exc:
            fail(str(exc))

    return cast(F, wrapper)


class _NoStore:
    """The tools' default for ``keys``: an empty ring (no store was given)."""


NO_STORE = _NoStore()


def pack_rules_setting() -> bool:
    """The ``pack_rules`` setting (``WAYPOST_PACK_RULES``); a bad value is a usage error."""
    try:
        return bool(SETTING["pack_rules"].from_env())
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def load_engine(
    rules: str, *, pack_rules: bool | None = None, keys: KeyRing | _NoStore | None = NO_STORE
) -> Engine:
    """The engine for the rules file ``rules``; every error of the file and exit 1 when it has
    any. ``pack_rules`` None: as the ``pack_rules`` setting says (``WAYPOST_PACK_RULES``).

    ``keys`` are the access keys its ``api_key`` guards check; by default none (the tools that
    read a file without a store: ``explain`` then says a key is unknown), None for none at all
    (a file with an ``api_key`` guard is then an error that says to give a store)."""
    packing = pack_rules_setting() if pack_rules is None else pack_rules
    ring = KeyRing() if isinstance(keys, _NoStore) else keys
    try:
        engine = Engine.from_file(rules, pack_rules=packing, keys=ring)
        routes = app_routes()
        if routes is not None:
            engine.bind_routes(routes)
        return engine
    except RulesError as exc:
        exit_with_rule_errors(exc.errors, exc.file or rules)


def app_routes() -> RouteResolver | None:
    """The host app's reverse routing for ``to: {route: ...}`` targets, when the command runs
    inside one (``manage.py waypost`` passes Django's ``reverse()`` as the click context's
    ``obj={"routes": ...}``); None from the plain command line, which has no app to build such
    a target with."""
    context = click.get_current_context(silent=True)
    obj = None if context is None else context.find_root().obj
    routes = obj.get("routes") if isinstance(obj, dict) else None
    return cast(RouteResolver, routes) if callable(routes) else None
