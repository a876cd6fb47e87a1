"""Routes that work on the rule set as a whole: validate (a dry run), resolve and explain (what
would happen to a request), import and export (other formats), and the API keys and sign-in
sessions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from waypost.admin._context import COOKIE_NAME, AdminContext, ApiError
from waypost.admin.auth import authorizer, caller_reach
from waypost.admin.routes_rules import changes_to_operations
from waypost.admin.schemas import (
    DecisionOut,
    ExportOut,
    ImportBody,
    ImportOut,
    KeyCreateBody,
    KeyCreatedOut,
    KeyOut,
    ResolveBody,
    SessionOut,
    SessionsEndedOut,
    TraceOut,
    ValidateBody,
    ValidateOut,
)
from waypost.admin.service import (
    EXPORT_FORMATS,
    ExportedDict,
    export_snapshot,
    import_text,
    validate,
)
from waypost.store.keys import ApiKey, KeyScope, limit_new_key, parse_expiry
from waypost.store.sessions import Session, token_session_id

__all__ = ["keys_router", "new_key", "sessions_out", "sessions_router", "tools_router"]

KeyId = Annotated[str, Path(min_length=1, max_length=200, description="The key's public id")]
SessionId = Annotated[
    str, Path(min_length=1, max_length=200, description="The session's id (GET /api/sessions)")
]


# What the stored rules would do with a request: asked with a whole request (POST) or, for a
# quick look, with a URL and a method (GET).
_TRIES: tuple[tuple[Literal["resolve", "explain"], type[BaseModel], str], ...] = (
    ("resolve", DecisionOut, "What the stored rules would do with this request."),
    (
        "explain",
        TraceOut,
        "Every candidate rule tried for this request, and why it did or did not apply.",
    ),
)


def _add_try_routes(
    router: APIRouter,
    ctx: AdminContext,
    what: Literal["resolve", "explain"],
    model: type[BaseModel],
    description: str,
) -> None:
    """``POST /api/{what}`` with a :class:`ResolveBody` and ``GET /api/{what}`` with a URL and a
    method: the engine's decision (resolve) or its trace (explain) for the request."""
    read = Depends(authorizer(ctx, "read"))

    def answer(body: ResolveBody) -> dict[str, object]:
        resolved = ctx.engines.get()
        request = (body.method.upper(), body.url, body.headers, body.client_ip)
        if what == "explain":
            return resolved.trace(resolved.engine.explain(*request, now=body.at))
        return resolved.decision(resolved.engine.resolve(*request, now=body.at))

    def posted(body: ResolveBody, key: ApiKey = read) -> dict[str, object]:
        return answer(body)

    def queried(
        url: Annotated[str, Query(min_length=1, max_length=8192)],
        method: Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z]+$")] = "GET",
        key: ApiKey = read,
    ) -> dict[str, object]:
        return answer(ResolveBody(url=url, method=method, client_ip=None, at=None))

    quick = f"``POST /api/{what}`` for a quick look: a URL and a method, no headers."
    for endpoint, method, name, text in (
        (posted, "POST", what, description),
        (queried, "GET", f"{what}_get", quick),
    ):
        router.add_api_route(
            f"/{what}",
            endpoint,
            methods=[method],
            response_model=model,
            tags=["tools"],
            name=name,
            description=text,
        )


def tools_router(ctx: AdminContext) -> APIRouter:
    """``/api/validate``, ``/api/resolve``, ``/api/explain``, ``/api/import``, ``/api/export``
    and ``/api/me``."""
    router = APIRouter(prefix="/api")
    read = Depends(authorizer(ctx, "read"))
    write = Depends(authorizer(ctx, "write"))
    store = ctx.store

    @router.get("/me", response_model=KeyOut, tags=["keys"])
    def me(key: ApiKey = read) -> dict[str, object]:
        """The API key making this request."""
        return key.to_dict()

    @router.post("/validate", response_model=ValidateOut, tags=["tools"])
    def validate_rules(body: ValidateBody, key: ApiKey = read) -> dict[str, object]:
        """Check a rule, a bulk change or a whole rule set; every problem; nothing written."""
        given = [body.rule is not None, body.changes is not None, body.rules is not None]
        if sum(given) != 1:
            raise ApiError.of_problems(
                422,
                "invalid",
                "give exactly one of rule, changes or rules",
                [("", "give one of rule, changes or rules")],
            )
        problems = validate(
            store.load_snapshot(),
            rule=body.rule,
            rule_id=body.id,
            operations=None if body.changes is None else changes_to_operations(body.changes),
            rules=body.rules,
            defaults=body.defaults,
            allowed_hosts=body.allowed_hosts,
            proxy_hosts=body.proxy_hosts,
            guards=body.guards,
        )
        return {"valid": not problems, "problems": problems}

    for what, model, description in _TRIES:
        _add_try_routes(router, ctx, what, model, description)

    @router.post("/import", response_model=ImportOut, tags=["tools"])
    def import_rules(body: ImportBody, key: ApiKey = write) -> dict[str, object]:
        """Import a file (Waypost YAML/JSON, or netlify, vercel, cloudflare, nginx, apache,
        htaccess, wordpress-csv, wordpress-json, wagtail, csv) in mode merge (the default),
        append or replace; reports imported and skipped lines, what changed, and the revision
        to roll back to to undo it. A replace that deletes more rules than it keeps is refused
        (409 ``confirmation_required``) unless ``confirm_deletes`` allows that many."""
        report = import_text(
            store,
            body.content,
            format=body.format,
            filename=body.filename,
            mode=body.mode,
            dry_run=body.dry_run,
            confirm_deletes=body.confirm_deletes,
            key_id=key.id,
            message=body.message,
        )
        ctx.changed(report.revision)
        return report.to_dict(dry_run=body.dry_run)

    @router.get("/export", response_model=ExportOut, tags=["tools"])
    def export(
        key: ApiKey = read,
        format: Annotated[str, Query(max_length=40, description=", ".join(EXPORT_FORMATS))] = (
            "yaml"
        ),
    ) -> ExportedDict:
        """The stored rule set as a file; rules the format cannot express are listed."""
        return export_snapshot(store.load_snapshot(), format)

    return router


def new_key(
    ctx: AdminContext,
    request: Request,
    key: ApiKey,
    scope: KeyScope | None,
    audiences: Sequence[str],
    note: str,
    host: str | None,
    expires: str | None,
) -> tuple[ApiKey, str]:
    """Create a key for the caller ``key`` (the API's and the admin page's one way): it never
    reaches further than the caller (its scope, host and expiry, and a sign-in session's end);
    ApiError 422 for an expiry that does not read, 403 ``too_broad`` for asking more."""
    expires_at = None
    if expires is not None:
        try:
            expires_at = parse_expiry(expires)
        except ValueError as exc:
            raise ApiError.of_problems(422, "invalid", str(exc), [("expires", str(exc))]) from None
    host, expires_at, problems = limit_new_key(caller_reach(request, key), scope, host, expires_at)
    if problems:
        raise ApiError.of_problems(403, "too_broad", problems[0][1], problems)
    return ctx.store.create_key(
        scope,
        expires_at=expires_at,
        note=note,
        host=host,
        created_by=key.id,
        audiences=list(audiences),
    )


def keys_router(ctx: AdminContext) -> APIRouter:
    """``/api/keys``: list, create (the key is shown once), get and revoke; admin scope."""
    router = APIRouter(prefix="/api/keys", tags=["keys"])
    admin = Depends(authorizer(ctx, "admin"))
    store = ctx.store

    @router.get("", response_model=list[KeyOut])
    def list_keys(key: ApiKey = admin) -> list[dict[str, object]]:
        """Every API key with its status and last use (never a secret)."""
        return [k.to_dict() for k in store.list_keys()]

    @router.post("", response_model=KeyCreatedOut, status_code=201)
    def create_key(body: KeyCreateBody, request: Request, key: ApiKey = admin) -> dict[str, object]:
        """A new key; ``secret`` is the whole key, shown only in this answer. It never reaches
        further than the key (or sign-in) making it: its scope at most that key's; made by a
        host-bound key it is bound to the same host, made by an expiring key (or a sign-in
        session) it expires no later (left out: inherited); asking for more is 403
        ``too_broad``."""
        created, secret = new_key(
            ctx, request, key, body.scope, body.audiences, body.note, body.host, body.expires
        )
        return {"key": created.to_dict(), "secret": secret}

    @router.get("/{key_id}", response_model=KeyOut)
    def get_key(key_id: KeyId, key: ApiKey = admin) -> dict[str, object]:
        """One key."""
        return store.get_key(key_id).to_dict()

    @router.delete("/{key_id}", response_model=KeyOut)
    def revoke_key(key_id: KeyId, key: ApiKey = admin) -> dict[str, object]:
        """Revoke a key: at once in this process, within a few seconds everywhere. It ends the
        key's sign-in sessions too."""
        store.get_key(key_id)  # 404 for an unknown id
        return store.revoke_key(key_id).to_dict()

    @router.delete("/{key_id}/sessions", response_model=SessionsEndedOut)
    def end_key_sessions(key_id: KeyId, request: Request, key: ApiKey = admin) -> dict[str, object]:
        """End every sign-in session of a key (signed in on any browser): at once in this
        process, within a few seconds everywhere. The key stays valid; revoke it to end it."""
        return {"key_id": key_id, "ended": sessions_out(request, store.end_key_sessions(key_id))}

    return router


def sessions_out(request: Request, sessions: Iterable[Session]) -> list[dict[str, object]]:
    """Sessions as :class:`SessionOut`: ``current`` for the one of the request's own cookie."""
    mine = token_session_id(request.cookies.get(COOKIE_NAME))
    return [{**session.to_dict(), "current": session.id == mine} for session in sessions]


def sessions_router(ctx: AdminContext) -> APIRouter:
    """``/api/sessions``: list the sign-in sessions and end one; admin scope."""
    router = APIRouter(prefix="/api/sessions", tags=["sessions"])
    admin = Depends(authorizer(ctx, "admin"))
    store = ctx.store

    @router.get("", response_model=list[SessionOut])
    def list_sessions(
        request: Request,
        key: ApiKey = admin,
        key_id: Annotated[
            str | None, Query(min_length=1, max_length=200, description="Only this key's")
        ] = None,
    ) -> list[dict[str, object]]:
        """Every sign-in session that has not ended, oldest first: its id, the key it signs in
        as, when it was made, last seen and expires, and the user agent and client address that
        signed in (never its token). Expired sessions are deleted on the way."""
        return sessions_out(request, store.list_sessions(key_id=key_id))

    @router.delete("/{session_id}", response_model=SessionOut)
    def end_session(
        session_id: SessionId, request: Request, key: ApiKey = admin
    ) -> dict[str, object]:
        """End one sign-in session: its cookie stops working at once in this process, within a
        few seconds everywhere. The key it signed in as stays valid."""
        return sessions_out(request, [store.end_session_by_id(session_id)])[0]

    return router
