"""Waypost in front of a Python web app: plain ASGI and WSGI middleware, no framework imported.

- :mod:`~waypost.middleware.asgi`: ``WaypostMiddleware`` for ASGI apps (FastAPI, Starlette,
  Django's ASGI handler);
- :mod:`~waypost.middleware.wsgi`: ``WaypostMiddleware`` for WSGI apps (Flask, Django's WSGI
  handler).

Nothing is imported here, so using one middleware never loads the other.
"""
