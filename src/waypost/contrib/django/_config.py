"""Reading ``settings.WAYPOST``, and building ``to: {route: ...}`` paths with ``reverse()``.

``settings.WAYPOST`` is one dict (Django's habit for an app's settings: ``CACHES``,
``REST_FRAMEWORK``); its keys mirror the options of :class:`waypost.wsgi.WaypostMiddleware`:

- ``RULES`` (required): the rules file (a path), or a :class:`waypost.Engine`;
- ``DEFAULT_MAX_AGE``: the cache lifetime of a permanent redirect whose rule sets none;
- ``STATS``: where rule hits and the app's 404s are counted: a rule store's URL
  (``"sqlite:///stats.db"``; a :class:`~waypost.store.recorder.StatsRecorder` writes to it) or a
  :class:`~waypost.stats.StatsSink`.

A mistake is an ``ImproperlyConfigured`` that quotes the value and says what to write instead,
as Django reports its own settings.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, cast

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.urls import get_resolver, get_script_prefix, reverse  # type: ignore[import-untyped]

from waypost.engine import Engine
from waypost.responses import DEFAULT_MAX_AGE
from waypost.stats import StatsSink

__all__ = ["OPTIONS", "WaypostSettings", "django_routes", "route_names", "waypost_settings"]

#: The keys of ``settings.WAYPOST``, with what each takes (for messages).
OPTIONS: dict[str, str] = {
    "RULES": "the rules file (a path) or a waypost.Engine",
    "DEFAULT_MAX_AGE": "seconds a permanent redirect without max_age is cached (default 3600)",
    "STATS": "a rule store URL ('sqlite:///stats.db') or a waypost.stats.StatsSink",
    "RELOAD": "True: watch the rules file and swap a changed one in (each worker process)",
}
_EXAMPLE = "WAYPOST = {'RULES': BASE_DIR / 'redirects.yaml'}"


@dataclass(frozen=True, slots=True)
class WaypostSettings:
    """``settings.WAYPOST``, checked: ``rules`` a path or an engine, ``stats`` a sink, a store
    URL or None."""

    rules: str | Path | Engine
    default_max_age: int = DEFAULT_MAX_AGE
    stats: StatsSink | str | None = None
    reload: bool = False

    def engine(self) -> Engine:
        """The engine of ``rules`` (loaded now from a file; raises RulesError)."""
        rules = self.rules
        return rules if isinstance(rules, Engine) else Engine.from_file(rules)

    def stats_sink(self) -> StatsSink | None:
        """The sink for ``stats``: a store URL becomes a StatsRecorder writing to it."""
        if isinstance(self.stats, str):
            from waypost.store.recorder import StatsRecorder

            return StatsRecorder(self.stats)
        return self.stats


def _problem(text: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"settings.WAYPOST: {text}")


def waypost_settings() -> WaypostSettings:
    """``settings.WAYPOST`` as :class:`WaypostSettings`; raises ImproperlyConfigured saying
    what is wrong and what to write."""
    value = getattr(settings, "WAYPOST", None)
    if value is None:
        raise ImproperlyConfigured(
            f"settings.WAYPOST is not set: add {_EXAMPLE} to the settings "
            "(the keys: " + ", ".join(OPTIONS) + ")"
        )
    if not isinstance(value, Mapping):
        raise _problem(f"expected a dict such as {_EXAMPLE}, got {value!r}")
    for key in value:
        if key not in OPTIONS:
            close = difflib.get_close_matches(str(key).upper(), list(OPTIONS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "the keys: " + ", ".join(OPTIONS)
            raise _problem(f"unknown key {key!r}; {hint}")
    if "RULES" not in value:
        raise _problem(f"'RULES' is missing: name the rules file, as in {_EXAMPLE}")
    rules = value["RULES"]
    if isinstance(rules, PathLike):
        rules = Path(rules)
    if not isinstance(rules, str | Path | Engine) or rules == "":
        raise _problem(f"'RULES' is {rules!r}; give {OPTIONS['RULES']}")
    max_age = value.get("DEFAULT_MAX_AGE", DEFAULT_MAX_AGE)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise _problem(f"'DEFAULT_MAX_AGE' is {max_age!r}; give a whole number of seconds, >= 0")
    stats = value.get("STATS")
    if stats is not None and not isinstance(stats, str):
        missing = [name for name in ("hit", "missing", "start", "stop") if not hasattr(stats, name)]
        if missing:
            raise _problem(
                f"'STATS' is {stats!r}, which has no {', '.join(missing)}; give {OPTIONS['STATS']}"
            )
    reload = value.get("RELOAD", False)
    if not isinstance(reload, bool) or (reload and isinstance(rules, Engine)):
        raise _problem(
            f"'RELOAD' is {reload!r}; give True to watch the rules file (a path in 'RULES'), "
            "or leave it out"
        )
    return WaypostSettings(rules, max_age, cast(StatsSink | str | None, stats), reload)


def django_routes(name: str, params: Mapping[str, str]) -> str:
    """The path of the URLconf's route ``name`` (``"app:name"`` for a namespaced one) with
    ``params`` as its keyword arguments: the engine's route resolver for a Django project.

    The path is the one *inside* the project, without the script prefix (``SCRIPT_NAME`` or
    ``FORCE_SCRIPT_NAME``) that ``reverse()`` puts in front: the middleware puts the mount point
    in front of every same-site Location itself, as it does for a ``to: /path`` target.
    """
    path = str(reverse(name, kwargs=dict(params)))
    prefix = str(get_script_prefix())
    if prefix != "/" and path.startswith(prefix):
        path = "/" + path[len(prefix) :]
    return path


def route_names(urlconf: Any = None) -> list[str]:
    """Every name ``reverse()`` knows in the URLconf, namespaced ones as ``"ns:name"``, sorted
    (for the hints of the checks)."""
    names: set[str] = set()

    def walk(resolver: Any, prefix: str) -> None:
        names.update(prefix + key for key in resolver.reverse_dict if isinstance(key, str))
        for namespace, (_, child) in resolver.namespace_dict.items():
            walk(child, f"{prefix}{namespace}:")

    walk(get_resolver(urlconf), "")
    return sorted(names)
