"""The history pages: revisions with who made them, when and why; a revision's changes as a
readable diff; and a rollback to any revision, after a confirmation that shows what it will
change."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from waypost.admin._context import AdminContext
from waypost.admin.auth import authorizer
from waypost.admin.web._render import form_authorizer, page_url, render
from waypost.store.keys import ApiKey
from waypost.store.model import RevisionDiff

__all__ = ["diff_lines", "history_pages"]

PAGE_SIZE = 30
Number = Annotated[int, Path(ge=0, le=2**53)]


def _yaml(rule: Mapping[str, Any] | None) -> list[str]:
    if rule is None:
        return []
    return yaml.safe_dump(dict(rule), sort_keys=False, allow_unicode=True).splitlines()


def diff_lines(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """A rule before and after as YAML lines, each marked ``" "`` (kept), ``"-"`` (removed) or
    ``"+"`` (added)."""
    out = []
    for line in difflib.ndiff(_yaml(before), _yaml(after)):
        mark, text = line[:1], line[2:]
        if mark in " -+":
            out.append((mark, text))
    return out


def _changes(diff: RevisionDiff) -> list[dict[str, Any]]:
    return [
        {
            "kind": change.kind,
            "rule_id": change.rule_id,
            "from": (change.after or change.before or {}).get("from", ""),
            "before_position": change.before_position,
            "after_position": change.after_position,
            "lines": diff_lines(change.before, change.after),
        }
        for change in diff.rules
    ]


def history_pages(ctx: AdminContext) -> APIRouter:
    """``/history`` and below."""
    router = APIRouter(include_in_schema=False)
    read = Depends(authorizer(ctx, "read"))
    write_form = Depends(form_authorizer(ctx, "write"))
    store = ctx.store

    @router.get("/history")
    def history(
        request: Request,
        key: ApiKey = read,
        before: Annotated[int | None, Query(ge=0)] = None,
        notice: Annotated[str, Query(max_length=40)] = "",
    ) -> HTMLResponse:
        revisions = store.list_revisions(limit=PAGE_SIZE, before=before)
        next_url = None
        if len(revisions) == PAGE_SIZE and revisions[-1].number > 1:
            next_url = page_url(ctx.base(request), "/history", {"before": revisions[-1].number})
        return render(
            ctx,
            request,
            key,
            "history.html",
            section="history",
            revisions=revisions,
            current=store.current_revision(),
            next_url=next_url,
            notice="Rolled back: a new revision restored the rules."
            if notice == "rolled-back"
            else "",
        )

    @router.get("/history/{number}")
    def revision(request: Request, number: Number, key: ApiKey = read) -> HTMLResponse:
        shown = store.get_revision(number)
        current = store.current_revision()
        made = store.diff(number - 1, number) if number > 0 else None
        undo = store.diff(current, number) if number != current else None
        return render(
            ctx,
            request,
            key,
            "revision.html",
            section="history",
            revision=shown,
            current=current,
            made=None if made is None else _changes(made),
            made_settings=made is not None and made.settings is not None,
            rollback=None if undo is None else _changes(undo),
            rollback_settings=undo is not None and undo.settings is not None,
        )

    @router.post("/history/{number}/rollback")
    def rollback(request: Request, number: Number, key: ApiKey = write_form) -> Response:
        made = store.rollback(
            number, key_id=key.id, message=f"roll back to revision {number} (admin page)"
        )
        ctx.changed(made)
        return RedirectResponse(
            page_url(ctx.base(request), "/history", {"notice": "rolled-back"}), status_code=303
        )

    return router
