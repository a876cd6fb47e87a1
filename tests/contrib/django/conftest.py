"""Django for these tests only: the test project's settings are configured when this folder is
collected (pytest-django then sets up its test databases for the tests marked django_db). The
rest of the suite never imports Django and needs no settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import django
import pytest
from django.conf import settings
from pytest_django import Settings

from tests.contrib.django.project import settings as project

if not settings.configured:
    settings.configure(**{name: getattr(project, name) for name in dir(project) if name.isupper()})
    django.setup()


@pytest.fixture
def use_rules(settings: Settings, write_rules: Callable[[str, str], Path]) -> Callable[[str], Path]:
    """Point settings.WAYPOST at a rules file with ``text`` (YAML) for this test."""

    def use(text: str) -> Path:
        path = write_rules("redirects.yaml", text)
        settings.WAYPOST = {"RULES": str(path)}
        return path

    return use
