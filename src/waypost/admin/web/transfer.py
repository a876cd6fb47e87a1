"""The import and export page: upload (or paste) a file in any supported format, see the dry
run's report (what would be created, changed, deleted, skipped and why) and only then apply it;
download the rules in any export format."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from waypost.admin._context import AdminContext
from waypost.admin.auth import authorizer
from waypost.admin.service import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    ImportReport,
    export_snapshot,
    import_text,
)
from waypost.admin.web._render import form_authorizer, render
from waypost.exceptions import ConfirmationError, ValidationError
from waypost.store.keys import ApiKey

__all__ = ["transfer_pages"]

#: The largest file the page takes (the API's own limit).
MAX_IMPORT = 20_000_000
_EXTENSIONS = {
    "yaml": "yaml",
    "json": "json",
    "csv": "csv",
    "wordpress-csv": "csv",
    "wordpress-json": "json",
    "vercel": "json",
    "nginx": "conf",
    "apache": "conf",
    "htaccess": "htaccess",
    "netlify": "txt",
    "cloudflare": "txt",
    "wagtail": "csv",
}


def _read_upload(upload: UploadFile | None, pasted: str) -> tuple[str, str | None, str | None]:
    """The file's text, its name, and a problem (None when it reads)."""
    if upload is not None and upload.filename:
        data = upload.file.read(MAX_IMPORT + 1)
        if len(data) > MAX_IMPORT:
            return "", upload.filename, f"the file is larger than {MAX_IMPORT:,} bytes"
        try:
            return data.decode("utf-8-sig"), upload.filename, None
        except UnicodeDecodeError as exc:
            return "", upload.filename, f"the file is not UTF-8 text (byte {exc.start})"
    if pasted.strip():
        return pasted, None, None
    return "", None, "choose a file, or paste its text"


def transfer_pages(ctx: AdminContext) -> APIRouter:
    """``/import`` and ``/export``."""
    router = APIRouter(include_in_schema=False)
    read = Depends(authorizer(ctx, "read"))
    write_form = Depends(form_authorizer(ctx, "write"))
    store = ctx.store

    def page(
        request: Request,
        key: ApiKey,
        *,
        status: int = 200,
        problems: list[str] | None = None,
        report: ImportReport | None = None,
        content: str = "",
        filename: str | None = None,
        format: str = "auto",
        mode: str = "merge",
        applied: bool = False,
        export_problems: list[str] | None = None,
    ) -> HTMLResponse:
        return render(
            ctx,
            request,
            key,
            "transfer.html",
            section="transfer",
            status=status,
            import_formats=IMPORT_FORMATS,
            export_formats=EXPORT_FORMATS,
            problems=problems or [],
            report=None if report is None else report.to_dict(dry_run=not applied),
            content=content,
            filename=filename or "",
            format=format,
            mode=mode,
            applied=applied,
            export_problems=export_problems or [],
        )

    @router.get("/import")
    def import_form(request: Request, key: ApiKey = read) -> HTMLResponse:
        return page(request, key)

    @router.post("/import")
    def import_post(
        request: Request,
        file: Annotated[UploadFile | None, File()] = None,
        content: Annotated[str, Form(max_length=MAX_IMPORT)] = "",
        filename: Annotated[str, Form(max_length=500)] = "",
        format: Annotated[str, Form(max_length=40)] = "auto",
        mode: Annotated[Literal["merge", "append", "replace"], Form()] = "merge",
        intent: Annotated[Literal["dry-run", "apply"], Form()] = "dry-run",
        confirm_deletes: Annotated[int | None, Form(ge=0)] = None,
        key: ApiKey = write_form,
    ) -> HTMLResponse:
        text, name, problem = _read_upload(file, content)
        name = name or filename or None
        if problem is not None:
            return page(request, key, status=422, problems=[problem], format=format, mode=mode)
        dry_run = intent != "apply"
        try:
            report = import_text(
                store,
                text,
                format=format,
                filename=name,
                mode=mode,
                dry_run=dry_run,
                confirm_deletes=confirm_deletes,
                key_id=key.id,
                message=f"import {name or 'pasted text'} ({mode}, admin page)",
            )
        except ValidationError as exc:
            problems = [f"{path}: {message}" if path else message for path, message in exc.problems]
            return page(
                request,
                key,
                status=422,
                problems=problems,
                content=text,
                filename=name,
                format=format,
                mode=mode,
            )
        except ConfirmationError as exc:
            return page(
                request,
                key,
                status=409,
                problems=[str(exc)],
                content=text,
                filename=name,
                format=format,
                mode=mode,
            )
        ctx.changed(report.revision)
        return page(
            request,
            key,
            report=report,
            content=text,
            filename=name,
            format=report.result.format,
            mode=mode,
            applied=not dry_run,
        )

    @router.get("/export")
    def export(
        request: Request,
        key: ApiKey = read,
        format: Annotated[str, Query(max_length=40)] = "yaml",
    ) -> Response:
        try:
            exported = export_snapshot(store.load_snapshot(), format)
        except ValidationError as exc:
            return page(request, key, status=422, export_problems=[m for _, m in exc.problems])
        extension = _EXTENSIONS.get(format, "txt")
        name = f"waypost-rules-r{exported['revision']}-{format}.{extension}"
        return Response(
            exported["content"],
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
