"""``manage.py check`` for Waypost: the rules load, and every route target exists.

Registered by the app config (:mod:`waypost.contrib.django.apps`) under the tag ``waypost``, so
``runserver``, ``migrate`` and ``check --deploy`` report it too. Every problem is one
``Error`` located by the rule's ``file:line``:

- ``waypost.E001``: a ``to: {route: name, ...}`` target that ``reverse()`` cannot build (no URL
  pattern of that name, or not with those parameters), with the closest name as a hint;
- ``waypost.E002``: the rules file does not load; one error per problem the loader found;
- ``waypost.E003``: ``settings.WAYPOST`` is missing or wrong;
- ``waypost.E004``: a rule proxies to another origin, which the middleware cannot do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from django.core import checks  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

from waypost.contrib.django._config import django_routes, route_names, waypost_settings
from waypost.engine import Engine
from waypost.exceptions import RuleError, RulesError, WaypostError
from waypost.middleware._common import proxy_rules_problem
from waypost.rules.model import Redirect
from waypost.rules.target import RouteTarget

__all__ = ["LABEL", "TAG", "check_waypost"]

#: The app label of :class:`~waypost.contrib.django.apps.WaypostConfig`.
LABEL = "waypost"
#: The tag the check is registered under: ``manage.py check --tag waypost``.
TAG = "waypost"


def check_waypost(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """The system check: ``settings.WAYPOST``, the rules file, proxy rules, route targets."""
    if app_configs is not None and not any(c.label == LABEL for c in app_configs):
        return []
    try:
        config = waypost_settings()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="See docs/django.md for the keys of WAYPOST.",
                id="waypost.E003",
            )
        ]
    try:
        engine = config.engine()
    except RulesError as exc:
        return [_load_error(error) for error in exc.errors]
    except (WaypostError, OSError) as exc:
        return [_load_error(exc)]
    problem = proxy_rules_problem(engine)
    if problem is not None:
        return [
            checks.Error(
                problem,
                hint="Serve these rules with 'waypost serve', or redirect with 'to:' instead.",
                obj=str(engine.ruleset.source or "WAYPOST['RULES']"),
                id="waypost.E004",
            )
        ]
    return route_errors(engine)


def _load_error(error: Exception) -> Any:
    if isinstance(error, RuleError):
        return checks.Error(
            error.message,
            hint="Fix the rules file; 'manage.py waypost check' shows the same with more detail.",
            obj=error.location,
            id="waypost.E002",
        )
    return checks.Error(
        f"the rules file does not load: {error}",
        hint="Check WAYPOST['RULES'] names a readable rules file.",
        id="waypost.E002",
    )


def route_errors(engine: Engine) -> list[Any]:
    """One ``waypost.E001`` for each route target of ``engine`` that ``reverse()`` cannot build
    (the engine is bound to the URLconf when there is none)."""
    try:
        engine.bind_routes(django_routes)
    except RulesError as exc:
        known = route_names()
        return [_route_error(error, _routes_at(engine, error), known) for error in exc.errors]
    return []


def _routes_at(engine: Engine, error: RuleError) -> list[str]:
    """The route names of the rules at the error's ``file:line``."""
    return [
        rule.action.target.route
        for rule in engine.rules
        if rule.line == error.line
        and (rule.file or None) == (error.file or None)
        and isinstance(rule.action, Redirect)
        and isinstance(rule.action.target, RouteTarget)
    ]


def _route_error(error: RuleError, routes: Iterable[str], known: list[str]) -> Any:
    unknown = [route for route in routes if route not in known]
    if unknown:
        route = unknown[0]
        close = difflib.get_close_matches(route, known, n=1)
        if close:
            hint = f"Did you mean {close[0]!r}?"
        elif known:
            hint = "The URL pattern names: " + ", ".join(known[:10])
        else:
            hint = "The URLconf names no pattern: add name='...' to a path()."
        return checks.Error(
            f"'to: {{route: {route}}}': no URL pattern is named {route!r}",
            hint=hint + " Fix the rule, or name the URL pattern in urls.py.",
            obj=error.location,
            id="waypost.E001",
        )
    return checks.Error(
        error.message,
        hint="Give the rule the URL pattern's parameters by name, as reverse(kwargs=...) takes "
        "them, and make sure the path it builds is on this site.",
        obj=error.location,
        id="waypost.E001",
    )
