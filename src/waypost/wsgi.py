"""The WSGI middleware, under the import path the README documents.

The code lives in :mod:`waypost.middleware.wsgi`; this module only re-exports it::

    from waypost.wsgi import WaypostMiddleware
"""

from __future__ import annotations

from waypost.middleware.wsgi import WaypostMiddleware, request_from_environ

__all__ = ["WaypostMiddleware", "request_from_environ"]
