"""Waypost in front of a Python web app: plain ASGI and WSGI middleware, no framework imported.

Each middleware builds one :class:`~waypost.rules.request.Request` from what the server hands
it, asks the engine for a decision, and then answers the request itself (redirect, respond;
:mod:`waypost.responses` makes the response), hands the app a rewritten request, or passes it
on untouched. Only reading the request and writing the response differ between the two.

- :mod:`~waypost.middleware.asgi`: ``WaypostMiddleware`` for ASGI apps (FastAPI, Starlette,
  Django's ASGI handler); documented as :mod:`waypost.asgi`;
- :mod:`~waypost.middleware.wsgi`: ``WaypostMiddleware`` for WSGI apps (Flask, Django's WSGI
  handler); documented as :mod:`waypost.wsgi`;
- :mod:`~waypost.middleware.request`: the Request for an ASGI scope or a WSGI environ;
- ``_common``: what both do alike (the app and engine they hold, binding the app's reverse
  routing, answering a decision under the mount point); ``_types``: the ASGI and WSGI call
  signatures, which the server uses too.

Nothing is imported here, so using one middleware never loads the other.
"""
