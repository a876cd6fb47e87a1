"""``/_waypost/health`` with its details and ``/_waypost/metrics`` for a read API key, as routes of
the admin app (serving from a store only), which checks the key, or the sign-in session, and
answers a refusal (401, 429, a browser sent to the login page) as it does for its own routes.

Imported only when serving a store: FastAPI is not needed to serve a file.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request, Response

from waypost.admin.auth import authorizer
from waypost.responses import Response as WaypostResponse
from waypost.server.core import HEALTH_PATH, METRICS_PATH, WaypostServer

__all__ = ["add_keyed_routes"]


def _response(response: WaypostResponse) -> Response:
    return Response(response.body, response.status, dict(response.headers))


def add_keyed_routes(admin: FastAPI, server: WaypostServer) -> None:
    """Add health (with details) and metrics, for a read key, to the ``admin`` app."""
    read = [Depends(authorizer(admin.state.waypost_admin, "read"))]

    def health(request: Request) -> Response:
        return _response(server.health_response(request.method == "HEAD", details=True))

    def metrics(request: Request) -> Response:
        return _response(server.metrics_response(request.method == "HEAD"))

    for path, endpoint in ((HEALTH_PATH, health), (METRICS_PATH, metrics)):
        admin.add_api_route(
            path, endpoint, methods=["GET", "HEAD"], dependencies=read, include_in_schema=False
        )
