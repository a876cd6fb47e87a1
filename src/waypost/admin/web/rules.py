"""The rules pages: the list (keyset pages, search, filters, each rule's hits), the form that
creates or changes a rule (tried on every change: the loader's messages field by field, what it
does to a sample URL, what ``check`` says), delete with undo, and delete of a selection.

Every write goes through the store as the API's do (the same validation, one revision each).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from waypost.admin._context import CSRF_HEADER, AdminContext
from waypost.admin.auth import authorizer
from waypost.admin.service import create_rule, problems_out
from waypost.admin.trial import CHECK_LIMIT, Trial, problem_fields, try_rule
from waypost.admin.web._render import form_authorizer, page_url, render
from waypost.admin.web._rule_form import ACTIONS, FIELD_OF_KEY, RuleForm
from waypost.admin.web.suggest import TargetIndex
from waypost.exceptions import ConflictError, ValidationError
from waypost.store.keys import ApiKey
from waypost.store.model import DeleteRule, Operation, Snapshot, UpsertRule
from waypost.store.stats import parse_since

__all__ = ["rules_pages"]

PAGE_SIZE = 50
_Text = Annotated[str, Form(max_length=20_000)]
_Short = Annotated[str, Form(max_length=2_000)]
RuleId = Annotated[str, Path(min_length=1, max_length=200)]


def _target(rule: Any) -> str:
    """What a rule does, in a few words, for the list."""
    for key in ("to", "rewrite"):
        if key in rule:
            return f"{'→' if key == 'to' else 'rewrite'} {rule[key]}"
    if "respond" in rule:
        respond = rule["respond"]
        return f"respond {respond if isinstance(respond, int) else respond.get('status', '')}"
    return "pass"


def rules_pages(ctx: AdminContext) -> APIRouter:
    """``/rules`` and below."""
    router = APIRouter(include_in_schema=False)
    read = Depends(authorizer(ctx, "read"))
    read_form = Depends(form_authorizer(ctx, "read"))
    write_form = Depends(form_authorizer(ctx, "write"))
    store = ctx.store
    targets = TargetIndex(ctx.engines)

    def trial_of(form: RuleForm, rule_id: str | None, sample: str) -> tuple[dict[str, Any], Trial]:
        rule, form_problems = form.to_rule()
        if form_problems:
            return rule, Trial(problems_out(form_problems))
        return rule, tried(rule, rule_id, sample)

    def tried(rule: Mapping[str, Any], rule_id: str | None, sample: str) -> Trial:
        """:func:`try_rule` among the stored rules, or on its own past CHECK_LIMIT of them."""
        count = store.count_rules()
        if count <= CHECK_LIMIT:
            return try_rule(store.load_snapshot(), rule, rule_id=rule_id, sample=sample or None)
        settings = store.get_settings()
        own = store.get_rule(rule_id) if rule_id is not None else None
        snapshot = Snapshot(
            store.current_revision(),
            settings.defaults,
            settings.allowed_hosts,
            (own.rule,) if own is not None else (),
            (own.id,) if own is not None else (),
            settings.proxy_hosts,
            settings.guards,
        )
        return try_rule(snapshot, rule, rule_id=rule_id, sample=sample or None, alone_among=count)

    def form_page(
        request: Request,
        key: ApiKey,
        form: RuleForm,
        *,
        rule_id: str | None,
        version: int | None,
        sample: str,
        trial: Trial | None,
        status: int = 200,
        not_found_id: str = "",
        suggestions: list[str] | None = None,
        notice: str = "",
    ) -> HTMLResponse:
        errors = {} if trial is None else _errors(trial)
        return render(
            ctx,
            request,
            key,
            "rule_form.html",
            section="rules",
            status=status,
            form=form,
            actions=ACTIONS,
            rule_id=rule_id,
            version=version,
            sample=sample,
            trial=trial,
            errors=errors,
            not_found_id=not_found_id,
            suggestions=suggestions or [],
            notice=notice,
        )

    @router.get("/rules")
    def list_rules(
        request: Request,
        key: ApiKey = read,
        prefix: Annotated[str, Query(max_length=2000)] = "",
        q: Annotated[str, Query(max_length=2000)] = "",
        action: Annotated[str, Query(max_length=20)] = "",
        status: Annotated[str, Query(max_length=3)] = "",
        unused: Annotated[str, Query(max_length=64)] = "",
        cursor: Annotated[str, Query(max_length=400)] = "",
        notice: Annotated[str, Query(max_length=200)] = "",
        undo: Annotated[int | None, Query(ge=1)] = None,
    ) -> HTMLResponse:
        base = ctx.base(request)
        filters = {"prefix": prefix, "q": q, "action": action, "status": status, "unused": unused}
        problem = None
        unused_rows: Any = None
        hit_rows: Any = None
        rows: list[dict[str, Any]] = []
        next_cursor = None
        try:
            if unused == "hit":  # rules with hits, busiest first
                hit_page = store.rule_stats(limit=PAGE_SIZE, cursor=cursor or None)
                hit_rows, next_cursor = hit_page.rows, hit_page.next_cursor
            elif unused:
                since = None if unused == "ever" else parse_since(unused)
                page = store.unused_rules(since, limit=PAGE_SIZE, cursor=cursor or None)
                unused_rows, next_cursor = page.rules, page.next_cursor
            else:
                listed = store.list_rules(
                    from_prefix=prefix or None,
                    search=q or None,
                    action=action or None,
                    status=_status(status),
                    limit=PAGE_SIZE,
                    cursor=cursor or None,
                )
                hits = store.rule_stats_of([r.id for r in listed.rules])
                rows = [
                    {"stored": r, "does": _target(r.rule), "hits": hits.get(r.id)}
                    for r in listed.rules
                ]
                next_cursor = listed.next_cursor
        except (ValidationError, ValueError) as exc:
            problem = (
                "; ".join(m for _, m in exc.problems)
                if isinstance(exc, ValidationError)
                else str(exc)
            )
        next_url = (
            page_url(base, "/rules", {**filters, "cursor": next_cursor}) if next_cursor else None
        )
        return render(
            ctx,
            request,
            key,
            "rules.html",
            section="rules",
            filters=filters,
            actions=ACTIONS,
            rows=rows,
            unused_rows=unused_rows,
            hit_rows=hit_rows,
            next_url=next_url,
            problem=problem,
            notice=_NOTICES.get(notice, ""),
            undo=undo,
        )

    @router.get("/rules/new")
    def new_rule(
        request: Request,
        key: ApiKey = read,
        from_path: Annotated[str, Query(alias="from", max_length=2000)] = "",
        not_found: Annotated[str, Query(max_length=64)] = "",
    ) -> HTMLResponse:
        suggestions = targets.suggest(from_path) if not_found else []
        return form_page(
            request,
            key,
            RuleForm(from_path=from_path),
            rule_id=None,
            version=None,
            sample=from_path,
            trial=None,
            not_found_id=not_found,
            suggestions=suggestions,
        )

    @router.post("/rules/new")
    def post_new_rule(
        request: Request,
        posted: Annotated[Posted, Depends(posted_form)],
        not_found: _Short = "",
        key: ApiKey = read_form,
    ) -> Response:
        return _submit(request, key, posted, None, None, not_found)

    @router.get("/rules/{rule_id}")
    def edit_rule(request: Request, rule_id: RuleId, key: ApiKey = read) -> HTMLResponse:
        stored = store.get_rule(rule_id)
        return form_page(
            request,
            key,
            RuleForm.of_rule(stored.rule),
            rule_id=stored.id,
            version=stored.version,
            sample=_sample(stored.path),
            trial=None,
        )

    @router.post("/rules/{rule_id}")
    def post_rule(
        request: Request,
        rule_id: RuleId,
        posted: Annotated[Posted, Depends(posted_form)],
        version: Annotated[int | None, Form()] = None,
        key: ApiKey = read_form,
    ) -> Response:
        return _submit(request, key, posted, rule_id, version, "")

    def _submit(
        request: Request,
        key: ApiKey,
        posted: Posted,
        rule_id: str | None,
        version: int | None,
        not_found: str,
    ) -> Response:
        form, sample = posted.form, posted.sample
        rule, trial = trial_of(form, rule_id, sample)

        def again(shown: Trial, status: int = 200) -> HTMLResponse:
            """The form as posted, with what trying or saving it found."""
            return form_page(
                request,
                key,
                form,
                rule_id=rule_id,
                version=version,
                sample=sample,
                trial=shown,
                status=status,
                not_found_id=not_found,
            )

        if posted.intent == "try":
            if CSRF_HEADER.lower() in request.headers:  # the form's script, as you type
                out = trial.to_dict()
                out["fields"] = _errors(trial)
                return JSONResponse(out, headers={"Cache-Control": "no-store"})
            return again(trial)
        if not key.allows("write"):
            return again(Trial([{"path": "", "message": f"key {key.id!r} may only read"}]), 403)
        if trial.problems:
            return again(trial, 422)
        try:
            if rule_id is None:
                stored = create_rule(store, rule, key_id=key.id)
                if not_found:  # made from a 404 row: the row is answered now
                    store.set_not_found_status(not_found, "resolved", resolved_rule_id=stored.id)
                notice = "created"
            else:
                stored = store.update_rule(
                    rule_id,
                    rule,
                    expected_version=version,
                    key_id=key.id,
                    message=f"change rule {rule_id} (admin page)",
                )
                notice = "saved"
        except ValidationError as exc:
            return again(Trial(problems_out(exc.problems)), 422)
        except ConflictError:
            message = (
                "someone changed this rule since you opened it; reload the page to see their "
                "change (yours is still in this form)"
            )
            return again(Trial([{"path": "", "message": message}]), 409)
        ctx.changed_to(stored.version)
        base = ctx.base(request)
        return RedirectResponse(
            page_url(base, f"/rules/{stored.id}/saved", {"notice": notice}), status_code=303
        )

    @router.get("/rules/{rule_id}/saved")
    def saved(
        request: Request,
        rule_id: RuleId,
        key: ApiKey = read,
        notice: Annotated[str, Query(max_length=40)] = "",
    ) -> HTMLResponse:
        stored = store.get_rule(rule_id)
        form = RuleForm.of_rule(stored.rule)
        sample = _sample(stored.path)
        trial = tried(stored.rule, stored.id, sample)
        return form_page(
            request,
            key,
            form,
            rule_id=stored.id,
            version=stored.version,
            sample=sample,
            trial=trial,
            notice=_NOTICES.get(notice, ""),
        )

    @router.post("/rules/{rule_id}/delete")
    def delete(
        request: Request,
        rule_id: RuleId,
        version: Annotated[int | None, Form()] = None,
        key: ApiKey = write_form,
    ) -> Response:
        revision = store.delete_rule(
            rule_id,
            expected_version=version,
            key_id=key.id,
            message=f"delete rule {rule_id} (admin page)",
        )
        ctx.changed(revision)
        return RedirectResponse(
            page_url(ctx.base(request), "/rules", {"notice": "deleted", "undo": revision.number}),
            status_code=303,
        )

    @router.post("/rules-bulk")
    def bulk(
        request: Request,
        ids: Annotated[list[str], Form(max_length=1000)],
        op: Annotated[Literal["delete", "enable", "disable"], Form()] = "delete",
        key: ApiKey = write_form,
    ) -> Response:
        """Delete, switch on or switch off the selected rules, as one revision."""
        operations: list[Operation]
        if op == "delete":
            operations = [DeleteRule(rule_id) for rule_id in ids]
        else:
            operations = []
            for rule_id in ids:
                stored = store.get_rule(rule_id)
                content = {k: v for k, v in stored.rule.items() if k != "enabled"}
                if op == "disable":
                    content["enabled"] = False
                operations.append(UpsertRule(content, rule_id, stored.version))
        revision = store.apply(
            operations, key_id=key.id, message=f"{op} {len(ids)} rules (admin page)"
        )
        ctx.changed(revision)
        query: dict[str, object] = {"notice": f"{op}d-many"}
        if revision is not None:
            query["undo"] = revision.number
        return RedirectResponse(page_url(ctx.base(request), "/rules", query), status_code=303)

    @router.post("/rules-undo")
    def undo(
        request: Request,
        revision: Annotated[int, Form(ge=1)],
        key: ApiKey = write_form,
    ) -> Response:
        """Undo a delete made on this page: roll back to the revision before it, if nothing
        changed since (else the history page is where to choose)."""
        if store.current_revision() != revision:
            raise ConflictError(
                f"revision {revision} is no longer the latest: other changes were made since; "
                "choose what to roll back to on the History page",
                current=None,
                expected=revision,
            )
        rolled = store.rollback(
            revision - 1, key_id=key.id, message=f"undo revision {revision} (admin page)"
        )
        ctx.changed(rolled)
        return RedirectResponse(
            page_url(ctx.base(request), "/rules", {"notice": "undone"}), status_code=303
        )

    return router


_NOTICES = {
    "created": "The rule was created.",
    "saved": "The rule was saved.",
    "deleted": "The rule was deleted.",
    "deleted-many": "The selected rules were deleted.",
    "enabled-many": "The selected rules were switched on.",
    "disabled-many": "The selected rules were switched off: kept, but they answer nothing.",
    "undone": "Undone: the rules are back as they were.",
}


@dataclass(frozen=True, slots=True)
class Posted:
    """The rule form as posted: its fields, the sample URL and what the button asked for
    (``try`` or ``save``)."""

    form: RuleForm
    sample: str
    intent: str


def posted_form(
    from_path: Annotated[str, Form(alias="from", max_length=2000)] = "",
    action: _Short = "redirect",
    target: _Text = "",
    status: _Short = "",
    name: _Short = "",
    note: _Short = "",
    more: _Text = "",
    enabled: _Short = "",
    has_enabled: _Short = "",
    sample: _Text = "",
    intent: _Short = "save",
) -> Posted:
    """A FastAPI dependency: the posted rule form (a field a browser left out is empty)."""
    form = RuleForm(from_path, action, target, status, name, note, more, _on(enabled, has_enabled))
    return Posted(form, sample, intent)


def _status(text: str) -> int | None:
    """The status filter (empty: any); ValueError saying what a status is."""
    if not text:
        return None
    if not text.isdigit() or not 100 <= int(text) <= 599:
        raise ValueError(f"status {text!r} is not an HTTP status; give one like 301 or 410")
    return int(text)


def _on(enabled: str, has_enabled: str) -> bool:
    """The "On" checkbox: a browser sends nothing for an unticked box, so the form says it had
    one (``has_enabled``); a form without it (a script's post) leaves the rule on."""
    return enabled == "on" or has_enabled != "1"


_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>")
_EXAMPLES = {
    "int": "1",
    "float": "1.5",
    "path": "a/b",
    "uuid": "12345678-1234-5678-1234-567812345678",
}


def _sample(pattern: str) -> str:
    """A URL the rule's pattern matches, to try it on: each variable filled with an example of
    its converter."""
    return _VARIABLE.sub(lambda m: _EXAMPLES.get(m[1] or "", "example"), pattern) or "/"


def _errors(trial: Trial) -> dict[str, list[str]]:
    fields = {**FIELD_OF_KEY, "action": "action", "more": "more", "target": "target"}
    return problem_fields(trial.problems, fields)
