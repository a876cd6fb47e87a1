"""The Django app config: ``INSTALLED_APPS = [..., "waypost.contrib.django"]`` (label
``waypost``), which registers Waypost's system checks and ``manage.py waypost``."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]
from django.core import checks  # type: ignore[import-untyped]

from waypost.contrib.django.checks import LABEL, TAG, check_waypost

__all__ = ["WaypostConfig"]


class WaypostConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    """Waypost as a Django app: no models; its system check runs with ``manage.py check``."""

    name = "waypost.contrib.django"
    label = LABEL
    verbose_name = "Waypost redirects"

    def ready(self) -> None:
        """Register :func:`~waypost.contrib.django.checks.check_waypost` (once)."""
        checks.register(check_waypost, TAG)
