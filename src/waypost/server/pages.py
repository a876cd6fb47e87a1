"""The 404 page: a Jinja template the user can replace (``--not-found-template PATH``).

Autoescaping is always on, whatever the template's file name, so the request path (which an
attacker chooses) can never inject markup. The template sees ``path`` (the decoded request path),
``method`` and ``status``. A template that fails to load stops the server at start with
``file:line`` and the reason; one that fails while rendering falls back to a plain-text 404 and the
error is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2

from waypost.exceptions import WaypostError
from waypost.responses import Response, error_response, html_response

__all__ = ["NotFoundPage", "TemplateError"]

logger = logging.getLogger("waypost.server")

DEFAULT_TEMPLATE = Path(__file__).parent / "templates" / "not_found.html"


class TemplateError(WaypostError):
    """The 404 template cannot be used (missing, unreadable, or a syntax error)."""


class NotFoundPage:
    """Renders the 404 page from ``template`` (a file path; the built-in page when None)."""

    def __init__(self, template: str | Path | None = None) -> None:
        path = Path(template) if template is not None else DEFAULT_TEMPLATE
        self.path = path
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(path.parent)),
            autoescape=True,  # on for every file name: the path is attacker-chosen text
            auto_reload=False,
            undefined=jinja2.Undefined,
        )
        try:
            self.template = env.get_template(path.name)
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"404 template {str(path)!r} does not exist; give the path of a Jinja file"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            where = f"{exc.filename or path}:{exc.lineno}"
            raise TemplateError(f"{where}: 404 template syntax error: {exc.message}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"404 template {str(path)!r} cannot be read: {exc}") from None

    def __repr__(self) -> str:
        return f"NotFoundPage({str(self.path)!r})"

    def render(
        self, path: str, method: str, *, head: bool = False, vary: tuple[str, ...] = ()
    ) -> Response:
        """The 404 response for a request of ``method path``."""
        try:
            html = self.template.render(path=path, method=method, status=404)
        except Exception:  # a broken user template must not take the server down
            logger.exception("waypost: rendering the 404 template %s failed", self.path)
            return error_response(404, head=head)
        return html_response(404, html, head=head, vary=vary)
