"""Waypost as a Django app: add ``"waypost.contrib.django"`` to ``INSTALLED_APPS`` and
``"waypost.contrib.django.middleware.WaypostMiddleware"`` to ``MIDDLEWARE``, and point
``WAYPOST = {"RULES": BASE_DIR / "redirects.yaml"}`` at a rules file.

- :mod:`~waypost.contrib.django.middleware`: answers redirects and responses before the view,
  rewrites the path the URLconf resolves, applies ``only_if_missing`` rules after a 404;
- :mod:`~waypost.contrib.django.checks`: ``manage.py check`` loads the rules and resolves every
  ``to: {route: ...}`` target with ``reverse()`` (``waypost.E001`` ... ``E004``);
- :mod:`~waypost.contrib.django.apps`: the app config (label ``waypost``) that registers them;
- ``manage.py waypost check|resolve|explain|trace|test|import|export``: Waypost's command line
  with the rules file from the settings (``import`` without a file reads the project's
  ``django.contrib.redirects`` rows);
- ``_config``: reading ``settings.WAYPOST`` and building paths with ``reverse()``.

Django is imported only from here: ``pip install 'waypost[django]'``.
"""
