"""Settings of the test project: Waypost's app and middleware, django.contrib.redirects for the
importer, SQLite in memory (and PostgreSQL as the "postgres" database when
WAYPOST_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).parent

SECRET_KEY = "waypost-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "example.com", "shop.example.com"]
INSTALLED_APPS = [
    "django.contrib.sites",
    "django.contrib.redirects",
    "waypost.contrib.django",
]
MIDDLEWARE = ["waypost.contrib.django.middleware.WaypostMiddleware"]
ROOT_URLCONF = "tests.contrib.django.project.urls"
SITE_ID = 1
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

_POSTGRES = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
if _POSTGRES:
    _url = urlsplit(_POSTGRES)
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/") or "postgres",
        "USER": _url.username or "",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
    }

WAYPOST = {"RULES": str(HERE / "redirects.yaml")}
