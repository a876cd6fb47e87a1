"""Django's and Wagtail's redirect tables, from ``manage.py dumpdata`` JSON.

``manage.py dumpdata redirects sites`` (``django.contrib.redirects``) writes a list of
``{"model": "redirects.redirect", "pk": 1, "fields": {"site": 1, "old_path": "/old/",
"new_path": "/new/"}}`` and ``{"model": "sites.site", "pk": 1, "fields": {"domain":
"example.com", ...}}``; ``manage.py dumpdata wagtailredirects wagtailcore.site`` writes
``wagtailredirects.redirect`` rows (``old_path``, ``site``, ``is_permanent``, ``redirect_page``,
``redirect_link``) and ``wagtailcore.site`` rows (``hostname``, ``port``, ``root_page``). Other
models in the dump (``wagtailcore.page``, say) are left out without a word, but for what the
redirects need of them.

Mapping, as each app's middleware answers:

* Both redirect only when the site answers 404 (``RedirectFallbackMiddleware``, Wagtail's
  ``RedirectMiddleware``): every rule gets ``only_if_missing: true``. Neither passes the query
  string on: ``query: drop``.
* Django: a redirect is a 301; an empty ``new_path`` is Django's 410 Gone (``respond: 410``).
  Django looks the row up by the request's full path, query included, so a query in
  ``old_path`` becomes ``when.query``; Django also finds ``/old/`` for a request to ``/old``
  (``APPEND_SLASH``), and Waypost ignores a trailing slash both ways.
* Wagtail: ``is_permanent`` is 301, else 302; the target is ``redirect_link``, or the path of
  ``redirect_page`` when the dump holds that page (``wagtailcore.page``'s ``url_path``) and the
  site whose root it is under; otherwise the row is skipped, naming the page. A trailing slash
  of ``old_path`` is ignored, as Wagtail's normalised paths are.
* Sites: when the rows belong to more than one site, each rule gets ``when: {host: ...}`` with
  its site's domain (``sites.site`` / ``wagtailcore.site`` rows in the dump); a row of a site
  the dump does not describe is imported for every host, with a note. Rows of one site only (or
  Wagtail's ``site: null``, every site) get no host condition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._common import Collector, Refusal, query_condition, split_source_url, table_path
from ._json import array_lines, import_json
from ._report import ImportResult

__all__ = ["parse_django_redirects"]

_DJANGO = "redirects.redirect"
_WAGTAIL = "wagtailredirects.redirect"
_SITES = ("sites.site", "wagtailcore.site")


def _fields(row: Any) -> Mapping[str, Any]:
    fields = row.get("fields") if isinstance(row, dict) else None
    return fields if isinstance(fields, dict) else {}


class _Dump:
    """What the redirects need of the rest of the dump: site domains, page paths."""

    def __init__(self, rows: list[Any]) -> None:
        self.domains: dict[tuple[str, Any], str] = {}
        self.roots: dict[Any, Any] = {}  # a Wagtail site's pk -> its root page's pk
        self.pages: dict[Any, str] = {}  # a Wagtail page's pk -> its url_path
        for row in rows:
            model = row.get("model") if isinstance(row, dict) else None
            fields = _fields(row)
            if model == "sites.site" and isinstance(fields.get("domain"), str):
                self.domains[("sites.site", row.get("pk"))] = fields["domain"]
            elif model == "wagtailcore.site" and isinstance(fields.get("hostname"), str):
                self.domains[("wagtailcore.site", row.get("pk"))] = fields["hostname"]
                self.roots[row.get("pk")] = fields.get("root_page")
            elif model == "wagtailcore.page" and isinstance(fields.get("url_path"), str):
                self.pages[row.get("pk")] = fields["url_path"]

    def page_path(self, page: Any, site: Any) -> str:
        """The path a Wagtail page is served at: its ``url_path`` below its site's root."""
        url_path = self.pages.get(page)
        if url_path is None:
            raise Refusal(
                f"the redirect goes to Wagtail page {page!r}, which the dump does not hold: "
                "dump wagtailcore.page too, or give the redirect a link"
            )
        sites = [site] if site is not None else list(self.roots)
        for pk in sites:
            root = self.pages.get(self.roots.get(pk))
            if root is not None and url_path.startswith(root):
                return "/" + url_path[len(root) :]
        raise Refusal(
            f"Wagtail page {page!r} ({url_path!r}) is under no site root the dump holds: "
            "dump wagtailcore.site too, or give the redirect a link"
        )


def _source(old_path: Any) -> tuple[str, dict[str, Any], list[str]]:
    """``(from, when, notes)`` of an ``old_path``."""
    if not isinstance(old_path, str) or not old_path.strip():
        raise Refusal("the row has no old_path")
    _scheme, host, path, query = split_source_url(old_path.strip())
    notes = []
    if host:
        notes.append(f"the host {host!r} was dropped: the row's site says where it applies")
    path = table_path(path)
    when: dict[str, Any] = {"query": query_condition(query)} if query else {}
    return path, when, notes


def _target(text: str) -> str:
    # Braces are literal in Django's and Wagtail's targets; in Waypost's they are placeholders.
    return text.replace("{", "{{").replace("}", "}}")


def _rule(row: dict[str, Any], dump: _Dump) -> tuple[dict[str, Any], list[str]]:
    fields = _fields(row)
    path, when, notes = _source(fields.get("old_path"))
    rule: dict[str, Any] = {"from": path}
    if row.get("model") == _DJANGO:
        new_path = fields.get("new_path") or ""
        if not isinstance(new_path, str):
            raise Refusal(f"new_path {new_path!r} is not text")
        if new_path.strip():
            rule.update(to=_target(new_path.strip()), status=301, query="drop")
        else:
            rule["respond"] = 410  # Django answers an empty new_path with 410 Gone
    else:
        link = fields.get("redirect_link") or ""
        page = fields.get("redirect_page")
        if isinstance(link, str) and link.strip():
            target = _target(link.strip())
        elif page is not None:
            target = _target(dump.page_path(page, fields.get("site")))
        else:
            raise Refusal("the redirect has neither a link nor a page")
        status = 301 if fields.get("is_permanent", True) else 302
        rule.update(to=target, status=status, query="drop")
    rule["only_if_missing"] = True
    if when:
        rule["when"] = when
    return rule, notes


def _site_key(row: dict[str, Any]) -> tuple[str, Any] | None:
    site = _fields(row).get("site")
    if site is None:
        return None
    return ("sites.site" if row.get("model") == _DJANGO else "wagtailcore.site", site)


def _host(domain: str) -> str:
    """A site's domain as a host condition reads it: lower case, without a port."""
    host = domain.strip().lower()
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def parse_django_redirects(text: str) -> ImportResult:
    """Read a ``dumpdata`` JSON of Django's or Wagtail's redirects; see the module docstring."""
    return import_json(text, "django-redirects", _read)


def _read(text: str, data: Any, collector: Collector) -> None:
    if not isinstance(data, list):
        collector.skip(
            1, "", "expected the list 'manage.py dumpdata' writes; is it a dumpdata JSON file?"
        )
        return
    lines = array_lines(text)
    dump = _Dump(data)
    redirects = [
        (index, row)
        for index, row in enumerate(data)
        if isinstance(row, dict) and row.get("model") in (_DJANGO, _WAGTAIL)
    ]
    if not redirects:
        collector.skip(1, "", "the dump holds no redirects.redirect or wagtailredirects.redirect")
        return
    sites = {key for _, row in redirects if (key := _site_key(row)) is not None}
    for index, row in redirects:
        line = lines[index] if index < len(lines) else 1
        raw = json.dumps(_fields(row).get("old_path"), ensure_ascii=False)
        try:
            rule, notes = _rule(row, dump)
        except Refusal as refusal:
            collector.skip(line, raw, str(refusal))
            continue
        site = _site_key(row)
        if site is not None and len(sites) > 1:
            domain = dump.domains.get(site)
            if domain is None:
                notes.append(
                    f"the row belongs to site {site[1]!r}, which the dump does not describe: "
                    f"it applies on every host; dump {site[0]} too, or add when: {{host: ...}}"
                )
            else:
                rule.setdefault("when", {})["host"] = _host(domain)
        collector.add(line, raw, rule, notes)
