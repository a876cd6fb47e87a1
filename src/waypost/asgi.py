"""The ASGI middleware, under the import path the README documents.

The code lives in :mod:`waypost.middleware.asgi`; this module only re-exports it::

    from waypost.asgi import WaypostMiddleware
"""

from __future__ import annotations

from waypost.middleware.asgi import WaypostMiddleware, request_from_scope, send_response

__all__ = ["WaypostMiddleware", "request_from_scope", "send_response"]
