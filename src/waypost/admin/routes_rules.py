"""Routes for the rules, the settings and the history (revisions, diff, rollback).

Optimistic concurrency: a rule's ``version`` is sent as its ETag; ``PUT``, ``PATCH`` and
``DELETE`` take it back in ``If-Match`` (or a ``version`` field). A stale one is refused with 409
and the rule's current state; nothing is overwritten silently. Without either, ``PUT`` and
``DELETE`` are last-write-wins unless the app was made with ``require_if_match=True`` (then 428);
``PATCH`` always merges into the version it read, so a concurrent change makes it 409, never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from waypost.admin import service
from waypost.admin._context import AdminContext, ApiError
from waypost.admin._http import IfMatchError, parse_if_match
from waypost.admin.auth import authorizer
from waypost.admin.schemas import (
    MAX_NUMBER,
    BulkBody,
    Change,
    RevisionDiffOut,
    RevisionOut,
    RollbackBody,
    RuleBody,
    RuleOut,
    RulePageOut,
    RulePatchBody,
    RuleQuery,
    SettingsBody,
    SettingsOut,
    WriteOut,
)
from waypost.store.keys import ApiKey
from waypost.store.model import DeleteRule, Operation, StoredRule, UpsertRule

__all__ = ["changes_to_operations", "merge_patch", "rules_router"]

RuleId = Annotated[str, Path(min_length=1, max_length=200, description="The rule's id")]
IfMatch = Annotated[
    str | None,
    Header(max_length=200, description='The ETag you read ("7"): refused with 409 if stale'),
]
Number = Annotated[int, Path(ge=0, le=MAX_NUMBER, description="A revision number")]


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` with ``patch`` merged in (RFC 7396): null removes a key, a mapping is merged
    into a mapping, anything else replaces."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def changes_to_operations(changes: list[Change]) -> list[Operation]:
    """The store operations of a bulk body."""
    operations: list[Operation] = []
    for index, change in enumerate(changes):
        if change.op == "delete":
            if change.id is None:
                raise ApiError.of_problems(
                    422,
                    "invalid",
                    "a delete names the rule's id",
                    [(f"changes[{index}].id", "required")],
                )
            operations.append(DeleteRule(change.id, change.version))
        else:
            operations.append(UpsertRule(change.rule, change.id, change.version, change.position))
    return operations


def _etag(version: int) -> str:
    return f'"{version}"'


def _rule(response: Response, stored: StoredRule) -> dict[str, object]:
    response.headers["ETag"] = _etag(stored.version)
    return stored.to_dict()


def _written(ctx: AdminContext, response: Response, stored: StoredRule) -> dict[str, object]:
    """A rule just written: ``on_change`` is told, and it is the answer (with its ETag)."""
    ctx.changed_to(stored.version)
    return _rule(response, stored)


def _expected(ctx: AdminContext, if_match: str | None, version: int | None) -> int | None:
    """The version a write expects, from ``If-Match`` and/or the body's ``version``."""
    try:
        header = parse_if_match(if_match)
    except IfMatchError as exc:
        raise ApiError(400, "bad_if_match", str(exc)) from None
    if header is not None and version is not None and header != version:
        raise ApiError(
            400,
            "bad_if_match",
            f"If-Match names version {header} but the body says {version}; send one of them",
        )
    expected = header if header is not None else version
    if expected is None and if_match is None and ctx.require_if_match:
        raise ApiError(
            428,
            "if_match_required",
            "send If-Match with the ETag you read (or a version field), so that a change made "
            "since is not overwritten",
        )
    return expected


def rules_router(ctx: AdminContext) -> APIRouter:
    """``/api/rules``, ``/api/settings`` and ``/api/revisions``."""
    router = APIRouter(prefix="/api")
    read = Depends(authorizer(ctx, "read"))
    write = Depends(authorizer(ctx, "write"))
    store = ctx.store

    def change_rule(
        rule_id: str, body: RuleBody | RulePatchBody, key: ApiKey, if_match: str | None
    ) -> StoredRule:
        """PUT (``body.rule`` replaces the content) or PATCH (it is merged in) of a rule."""
        expected = _expected(ctx, if_match, body.version)
        content = body.rule
        if isinstance(body, RulePatchBody):
            current = store.get_rule(rule_id)
            content = None if body.rule is None else merge_patch(current.rule, body.rule)
            # Merged into what was just read: a change made in between is a conflict.
            expected = current.version if expected is None else expected
        return store.update_rule(
            rule_id,
            content,
            expected_version=expected,
            position=body.position,
            key_id=key.id,
            message=body.message or f"change rule {rule_id}",
        )

    @router.get("/rules", response_model=RulePageOut, tags=["rules"])
    def list_rules(query: Annotated[RuleQuery, Query()], key: ApiKey = read) -> dict[str, object]:
        """Rules in priority order: ``from`` starting with ``from_prefix``, exactly ``name``,
        ``action`` (redirect, rewrite, respond, pass), ``search`` anywhere, the ``status`` it
        answers with; ``limit`` a page."""
        page = store.list_rules(**query.model_dump())
        return {"rules": [r.to_dict() for r in page.rules], "next_cursor": page.next_cursor}

    @router.post("/rules", response_model=RuleOut, status_code=201, tags=["rules"])
    def create_rule(
        body: RuleBody, request: Request, response: Response, key: ApiKey = write
    ) -> dict[str, object]:
        """Add a rule (last, or at ``position``); 422 lists every problem."""
        stored = service.create_rule(
            store, body.rule, position=body.position, key_id=key.id, message=body.message
        )
        response.headers["Location"] = f"{ctx.base(request)}/api/rules/{stored.id}"
        return _written(ctx, response, stored)

    @router.post("/rules/bulk", response_model=WriteOut, tags=["rules"])
    def bulk(body: BulkBody, key: ApiKey = write) -> dict[str, object]:
        """Several creates, changes, moves and deletes as one revision, all or nothing."""
        revision = store.apply(
            changes_to_operations(body.changes),
            key_id=key.id,
            message=body.message or f"bulk change ({len(body.changes)} operations)",
        )
        ctx.changed(revision)
        return {"revision": None if revision is None else revision.to_dict()}

    @router.get("/rules/{rule_id}", response_model=RuleOut, tags=["rules"])
    def get_rule(rule_id: RuleId, response: Response, key: ApiKey = read) -> dict[str, object]:
        """One rule; its ``version`` is the ETag."""
        return _rule(response, store.get_rule(rule_id))

    @router.put("/rules/{rule_id}", response_model=RuleOut, tags=["rules"])
    def put_rule(
        rule_id: RuleId,
        body: RuleBody,
        response: Response,
        key: ApiKey = write,
        if_match: IfMatch = None,
    ) -> dict[str, object]:
        """Replace the rule's content (and move it to ``position`` if given)."""
        return _written(ctx, response, change_rule(rule_id, body, key, if_match))

    @router.patch("/rules/{rule_id}", response_model=RuleOut, tags=["rules"])
    def patch_rule(
        rule_id: RuleId,
        body: RulePatchBody,
        response: Response,
        key: ApiKey = write,
        if_match: IfMatch = None,
    ) -> dict[str, object]:
        """Merge ``rule`` into the stored rule (null removes a key) and/or move it."""
        return _written(ctx, response, change_rule(rule_id, body, key, if_match))

    @router.delete("/rules/{rule_id}", response_model=WriteOut, tags=["rules"])
    def delete_rule(
        rule_id: RuleId,
        key: ApiKey = write,
        if_match: IfMatch = None,
        version: Annotated[int | None, Query(ge=0, le=MAX_NUMBER)] = None,
        message: Annotated[str, Query(max_length=2000)] = "",
    ) -> dict[str, object]:
        """Delete the rule."""
        revision = store.delete_rule(
            rule_id,
            expected_version=_expected(ctx, if_match, version),
            key_id=key.id,
            message=message or f"delete rule {rule_id}",
        )
        ctx.changed(revision)
        return {"revision": revision.to_dict()}

    @router.get("/settings", response_model=SettingsOut, tags=["rules"])
    def get_settings(response: Response, key: ApiKey = read) -> dict[str, object]:
        """The defaults, allowed hosts, proxy hosts and guards; ``version`` is the ETag."""
        settings = store.get_settings()
        response.headers["ETag"] = _etag(settings.version)
        return settings.to_dict()

    @router.put("/settings", response_model=SettingsOut, tags=["rules"])
    def put_settings(
        body: SettingsBody,
        response: Response,
        key: ApiKey = write,
        if_match: IfMatch = None,
    ) -> dict[str, object]:
        """Replace the defaults, the allowed hosts, the proxy hosts and/or the guards (every
        rule is checked again; a guard is checked as declared, and built by the server when it
        loads the revision)."""
        settings = store.set_settings(
            defaults=body.defaults,
            allowed_hosts=body.allowed_hosts,
            proxy_hosts=body.proxy_hosts,
            guards=body.guards,
            expected_version=_expected(ctx, if_match, body.version),
            key_id=key.id,
            message=body.message or "change the settings",
        )
        ctx.changed_to(settings.version)
        response.headers["ETag"] = _etag(settings.version)
        return settings.to_dict()

    @router.get("/revisions", tags=["history"])
    def list_revisions(
        key: ApiKey = read,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        before: Annotated[int | None, Query(ge=0, le=MAX_NUMBER)] = None,
    ) -> dict[str, list[RevisionOut]]:
        """Revisions, newest first; ``before`` pages back (the last number of a page)."""
        revisions = store.list_revisions(limit=limit, before=before)
        return {"revisions": [RevisionOut.model_validate(r.to_dict()) for r in revisions]}

    @router.get("/revisions/diff", response_model=RevisionDiffOut, tags=["history"])
    def diff(
        from_revision: Annotated[int, Query(alias="from", ge=0, le=MAX_NUMBER)],
        to_revision: Annotated[int | None, Query(alias="to", ge=0, le=MAX_NUMBER)] = None,
        key: ApiKey = read,
    ) -> dict[str, object]:
        """How the rule set at ``to`` (default: now) differs from the one at ``from``."""
        return store.diff(from_revision, to_revision).to_dict()

    @router.get("/revisions/{number}", response_model=RevisionOut, tags=["history"])
    def get_revision(number: Number, key: ApiKey = read) -> dict[str, object]:
        """One revision with every change it made."""
        return store.get_revision(number).to_dict()

    @router.post("/revisions/{number}/rollback", response_model=WriteOut, tags=["history"])
    def rollback(
        number: Number, key: ApiKey = write, body: RollbackBody | None = None
    ) -> dict[str, object]:
        """Make the rule set what it was at revision ``number``, as a new revision."""
        revision = store.rollback(
            number, key_id=key.id, message=body.message if body is not None else ""
        )
        ctx.changed(revision)
        return {"revision": None if revision is None else revision.to_dict()}

    return router
