"""The test project's URLconf: a few named routes and a view that answers 404."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def live(request: HttpRequest) -> HttpResponse:
    return HttpResponse("a live page")


def article(request: HttpRequest, slug: str) -> JsonResponse:
    return JsonResponse(
        {
            "slug": slug,
            "path": request.path,
            "path_info": request.path_info,
            "query": request.GET.dict(),
            "rerouted": request.headers.get("X-Rerouted"),
            "view": request.resolver_match.url_name,
        }
    )


def dashboard(request: HttpRequest, user_id: int) -> HttpResponse:
    return HttpResponse(f"dashboard of {user_id}")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("nothing here")


urlpatterns = [
    path("live/", live, name="live"),
    path("articles/<slug:slug>/", article, name="article"),
    path("users/<int:user_id>/dashboard/", dashboard, name="dashboard"),
    path("missing/", missing, name="missing"),
]
