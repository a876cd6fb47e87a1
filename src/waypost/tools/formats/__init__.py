"""Importers and exporters between Waypost rules and other redirect formats.

Everything here is sans-io: importers take the text of a file and return an
:class:`ImportResult`; exporters take canonical rule mappings (the entries of a Waypost YAML
``rules:`` list) and return an :class:`ExportResult`. Nothing is dropped silently: a line an
importer cannot carry over is a :class:`Skipped` with its line number and reason, a rule an
exporter cannot express is an :class:`Unsupported`, and a rule it writes with a difference in
behaviour carries an :class:`ExportNote`.

No export turns a rule into an open redirect (see ``_safety``): the servers and platforms do
not check a target as Waypost does, so the regex formats (nginx, Apache, Vercel) match only
values that keep the browser on the site, given the rules' ``allowed_hosts`` (the keyword
``allowed_hosts=`` of those exporters), and the other formats report a rule whose target takes
its host or the start of its path from the request.

Formats, by registry name::

    netlify         Netlify _redirects                  import, export
    netlify-toml    netlify.toml [[redirects]]          import
    vercel          vercel.json redirects/rewrites      import, export
    cloudflare      Cloudflare Bulk Redirects CSV       import, export
    cloudflare-pages  Cloudflare Pages _redirects       import (chosen by name: --format)
    nginx           map / location / rewrite / return   import, export
    apache          Redirect* / RewriteRule             import, export (.htaccess)
    htaccess        the same, from a .htaccess          import
    wordpress-csv   Redirection plugin CSV export       import
    wordpress-json  Redirection plugin JSON export      import
    wagtail         Wagtail redirect import CSV         import
    django-redirects  dumpdata JSON of Django's or Wagtail's redirects  import
    csv             from,to,status[,name]               import, export
    yaml            Waypost's own rules file            import, export
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from ._canon import BUILTIN_DEFAULTS, effective_rule, normalise_rule
from ._report import ExportNote, ExportResult, ImportResult, Note, Skipped, Unsupported
from ._text import clean_text
from .apache import export_apache, parse_apache, parse_htaccess
from .cloudflare import export_cloudflare, parse_cloudflare
from .cloudflare_pages import parse_cloudflare_pages
from .django_redirects import parse_django_redirects
from .generic_csv import export_csv, parse_csv
from .netlify import export_netlify, parse_netlify, parse_netlify_toml
from .nginx import export_nginx, parse_nginx
from .vercel import export_vercel, parse_vercel
from .wagtail import parse_wagtail
from .wordpress import parse_wordpress_csv, parse_wordpress_json
from .yaml_format import export_yaml, parse_yaml

__all__ = [
    "BUILTIN_DEFAULTS",
    "EXPORTERS",
    "IMPORTERS",
    "ExportNote",
    "ExportResult",
    "Exporter",
    "ImportResult",
    "Importer",
    "Note",
    "Skipped",
    "Unsupported",
    "detect_format",
    "effective_rule",
    "export_apache",
    "export_cloudflare",
    "export_csv",
    "export_netlify",
    "export_nginx",
    "export_rules",
    "export_vercel",
    "export_yaml",
    "guarded_rules",
    "normalise_rule",
    "parse_apache",
    "parse_cloudflare",
    "parse_cloudflare_pages",
    "parse_csv",
    "parse_django_redirects",
    "parse_htaccess",
    "parse_netlify",
    "parse_netlify_toml",
    "parse_nginx",
    "parse_vercel",
    "parse_wagtail",
    "parse_wordpress_csv",
    "parse_wordpress_json",
    "parse_yaml",
]

Importer = Callable[[str], ImportResult]
Exporter = Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any] | None], ExportResult]

#: Importers by format name.
IMPORTERS: dict[str, Importer] = {
    "netlify": parse_netlify,
    "netlify-toml": parse_netlify_toml,
    "vercel": parse_vercel,
    "cloudflare": parse_cloudflare,
    "cloudflare-pages": parse_cloudflare_pages,
    "nginx": parse_nginx,
    "apache": parse_apache,
    "htaccess": parse_htaccess,
    "wordpress-csv": parse_wordpress_csv,
    "wordpress-json": parse_wordpress_json,
    "wagtail": parse_wagtail,
    "django-redirects": parse_django_redirects,
    "csv": parse_csv,
    "yaml": parse_yaml,
}

#: Exporters by format name.
EXPORTERS: dict[str, Exporter] = {
    "netlify": export_netlify,
    "vercel": export_vercel,
    "cloudflare": export_cloudflare,
    "nginx": export_nginx,
    "apache": export_apache,
    "csv": export_csv,
    "yaml": export_yaml,
}


def export_rules(
    format: str,
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    allowed_hosts: Sequence[str] = (),
    host: str | None = None,
    proxy_hosts: Sequence[str] = (),
    guards: Mapping[str, Any] | None = None,
) -> ExportResult:
    """``rules`` written in ``format`` (a key of :data:`EXPORTERS`), with what each format can
    use: ``allowed_hosts`` (a target's host taken from the request is narrowed to them, where
    the format can express it), for Cloudflare ``host``, and for Waypost's own YAML
    ``proxy_hosts`` and ``guards``. No other format has guards: each rule that requires one
    is reported unsupported there (never written without it), and a caller exporting a whole
    rule set should refuse it (:func:`guarded_rules`), as the CLI and the admin API do."""
    if format != "yaml":
        return _without_switched_off(
            rules,
            lambda kept: _export(format, kept, defaults, allowed_hosts, host, proxy_hosts, guards),
        )
    return _export(format, rules, defaults, allowed_hosts, host, proxy_hosts, guards)


def _without_switched_off(
    rules: Sequence[Mapping[str, Any]],
    export: Callable[[list[Mapping[str, Any]]], ExportResult],
) -> ExportResult:
    """``export`` of the rules that are on, with every rule that is off (``enabled: false``)
    reported unsupported, and without ``note`` (a peer's format has no place for it, and it
    changes no answer); the reports name the rules by their place in ``rules``."""
    places: list[int] = []
    kept: list[Mapping[str, Any]] = []
    off: list[Unsupported] = []
    for index, rule in enumerate(rules):
        if isinstance(rule, Mapping) and rule.get("enabled") is False:
            off.append(Unsupported(index, dict(rule), "switched off (enabled: false): left out"))
            continue
        places.append(index)
        kept.append(
            {
                k: ("ignore" if k == "trailing_slash" and v == "redirect" else v)
                for k, v in rule.items()
                if k not in ("note", "enabled")
            }
            if isinstance(rule, Mapping)
            else rule
        )
    result = export(kept)
    unsupported = [replace(u, index=places[u.index]) for u in result.unsupported]
    notes = [replace(n, index=places[n.index]) for n in result.notes]
    exported = {u.index for u in unsupported}
    notes += [
        ExportNote(
            index,
            dict(rules[index]),
            "trailing_slash: redirect is written as ignore: the other form of the path is "
            "answered by the rule itself, not sent to it with a 308",
        )
        for index in places
        if index not in exported and rules[index].get("trailing_slash") == "redirect"
    ]
    return replace(
        result,
        unsupported=sorted([*unsupported, *off], key=lambda u: u.index),
        notes=sorted(notes, key=lambda n: n.index),
    )


def _export(
    format: str,
    rules: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None,
    allowed_hosts: Sequence[str],
    host: str | None,
    proxy_hosts: Sequence[str],
    guards: Mapping[str, Any] | None,
) -> ExportResult:
    if format == "cloudflare":
        return export_cloudflare(rules, defaults, host=host)
    if format == "nginx":
        return export_nginx(rules, defaults, allowed_hosts=allowed_hosts)
    if format == "apache":
        return export_apache(rules, defaults, allowed_hosts=allowed_hosts)
    if format == "vercel":
        return export_vercel(rules, defaults, allowed_hosts=allowed_hosts)
    if format == "yaml":
        return export_yaml(
            rules, defaults, allowed_hosts=allowed_hosts, proxy_hosts=proxy_hosts, guards=guards
        )
    return EXPORTERS[format](rules, defaults)


def guarded_rules(rules: Sequence[Mapping[str, Any]]) -> list[int]:
    """The indices of the rules that require a guard (``require:``): another format than
    Waypost's cannot carry them, and an export without them would serve their areas open."""
    return [index for index, rule in enumerate(rules) if rule.get("require") is not None]


_NGINX = re.compile(
    r"^\s*(server\s*\{|location\s|map\s+\$|rewrite\s+\S+\s+\S+\s*(permanent|redirect|last|break)?\s*;|return\s+30\d\s)",
    re.M,
)
_APACHE = re.compile(
    r"^\s*(Redirect(Match|Permanent|Temp)?\s|RewriteRule\s|RewriteEngine\s|<IfModule)", re.M | re.I
)
_NETLIFY_LINE = re.compile(
    r"^\s*(/|https?://)\S*\s+(\S+=\S*\s+)*(/|https?://)\S*(\s+\d{3}!?)?(\s+\w+=\S+)*\s*$", re.M
)


def _first_row(text: str) -> str:
    for line in clean_text(text).split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.lower()
    return ""


def _detect_csv(text: str) -> str | None:
    header = re.split(r"[,;\t|]", _first_row(text).replace('"', ""))
    header = [cell.strip() for cell in header]
    if not header or not header[0]:
        return None
    if header[0] == "source" and ("regex" in header or "target" in header):
        return "wordpress-csv"
    if header[0] in ("source_url", "source url"):
        return "cloudflare"
    if header[0] == "from" and "to" in header:
        return "wagtail" if "permanent" in header else "csv"
    if header[0] in ("old_path", "redirect from", "old path"):
        return "wagtail"
    if not header[0].startswith("/") and "." in header[0].split("/")[0] and len(header) >= 2:
        return "cloudflare"
    return None


def _detect_json(text: str) -> str | None:
    try:
        data = json.loads(clean_text(text))
    except json.JSONDecodeError:
        return None
    if isinstance(data, list):
        # manage.py dumpdata: a list of {"model": "app.model", "pk": ..., "fields": {...}}.
        models = {row.get("model") for row in data if isinstance(row, dict)}
        if models & {"redirects.redirect", "wagtailredirects.redirect"}:
            return "django-redirects"
        return None
    if not isinstance(data, dict):
        return None
    redirects = data.get("redirects")
    if isinstance(redirects, list) and redirects and isinstance(redirects[0], dict):
        if "action_data" in redirects[0] or "match_type" in redirects[0] or "url" in redirects[0]:
            return "wordpress-json"
        if "source" in redirects[0]:
            return "vercel"
    if any(
        key in data for key in ("rewrites", "redirects", "cleanUrls", "trailingSlash", "routes")
    ):
        return "vercel"
    return None


def detect_format(filename: str, text: str) -> str | None:
    """The registry name of the format of ``filename`` with contents ``text``, or ``None``.

    The file name decides when it is conventional (``_redirects``, ``netlify.toml``,
    ``vercel.json``, ``.htaccess``; ``_redirects`` is read as Netlify's, since the name cannot
    tell it from Cloudflare Pages', which ``--format cloudflare-pages`` chooses); otherwise the
    extension narrows the choice and the content decides (a CSV header, JSON keys, nginx or
    Apache directives).
    """
    path = PurePosixPath(filename.replace("\\", "/"))
    name, suffix = path.name.lower(), path.suffix.lower()
    if name == "_redirects":
        return "netlify"
    if name == "netlify.toml" or (suffix == ".toml" and "[[redirects]]" in text):
        return "netlify-toml"
    if name == "vercel.json":
        return "vercel"
    if name == ".htaccess" or name.endswith(".htaccess"):
        return "htaccess"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return _detect_json(text)
    if suffix in (".csv", ".tsv", ".txt") and (found := _detect_csv(text)):
        return found
    if suffix in (".csv", ".tsv"):
        return None
    if _NGINX.search(text):
        return "nginx"
    if _APACHE.search(text):
        return "apache"
    if _NETLIFY_LINE.search(clean_text(text)):
        return "netlify"
    return None
