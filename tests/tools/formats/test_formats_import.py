"""Each importer against a realistic sample file: the exact rules, skips (line, reason) and notes.

The samples in tests/data/formats are modelled on what real sites ship: comments, a UTF-8 BOM,
CRLF line endings, semicolon or tab delimiters, and lines that must be skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from waypost.engine import Engine
from waypost.rules.load import parse_rules
from waypost.tools.formats import EXPORTERS, IMPORTERS

DATA = Path(__file__).parents[2] / "data" / "formats"

SAMPLES = [
    pytest.param(
        "_redirects",
        "netlify",
        [
            {"from": "/old-about", "to": "/about", "status": 301, "only_if_missing": True},
            {
                "from": "/blog/<year>/<slug>",
                "to": "/posts/{year}/{slug}",
                "status": 302,
                "only_if_missing": True,
            },
            {"from": "/news/<path:splat>", "to": "/blog/{splat}", "status": 301},
            {
                "from": "/store",
                "to": "/shop",
                "status": 301,
                "query": "drop",
                "only_if_missing": True,
                "when": {"query": {"ref": "*"}},
            },
            {
                "from": "/search",
                "to": "/docs/redirects",
                "status": 302,
                "query": "drop",
                "only_if_missing": True,
                "when": {"query": {"q": "redirects"}},
            },
            {"from": "/app/<path:splat>", "rewrite": "/app/index.html", "only_if_missing": True},
            {
                "from": "/api/<path:splat>",
                "rewrite": "https://api.example.org/{splat}",
                "only_if_missing": True,
            },
            {"from": "/legacy-page", "respond": 410, "only_if_missing": True},
            {
                "from": "/<path:splat>",
                "to": "https://www.example.org/{splat}",
                "status": 301,
                "when": {"host": "old.example.org"},
            },
            {"from": "/", "to": "/de/", "status": 302, "when": {"language": ["de"]}},
        ],
        [
            (
                9,
                "the target uses the query value ':id'; Waypost placeholders refer only to "
                "path variables",
            ),
            (
                22,
                "same rule as line 21 once the scheme is dropped (the two lines give one "
                "redirect for http and https)",
            ),
            (
                26,
                "the Netlify condition Country=us (the visitor's country) has no Waypost "
                "equivalent",
            ),
            (
                27,
                "the Netlify condition Role=member (the visitor's role, from its JWT) has no "
                "Waypost equivalent",
            ),
            (28, "missing destination: the line has only a source"),
        ],
        [6, 14, 15, 18, 21],
        id="netlify",
    ),
    pytest.param(
        "netlify.toml",
        "netlify-toml",
        [
            {"from": "/old-pricing", "to": "/pricing", "status": 301, "only_if_missing": True},
            {
                "from": "/docs/<version>/<path:splat>",
                "to": "/documentation/{version}/{splat}",
                "status": 302,
            },
            {
                "from": "/de/<path:splat>",
                "to": "/de/{splat}",
                "status": 302,
                "only_if_missing": True,
                "when": {"language": ["de", "de-at"]},
            },
            {
                "from": "/shop",
                "to": "/store",
                "status": 301,
                "query": "drop",
                "only_if_missing": True,
                "when": {"query": {"campaign": "*"}},
            },
            {
                "from": "/api/<path:splat>",
                "rewrite": "https://api.example.com/{splat}",
                "set_headers": {"X-From": "Netlify"},
                "only_if_missing": True,
            },
            {"from": "/<path:splat>", "rewrite": "/index.html", "only_if_missing": True},
        ],
        [
            (
                22,
                "the Netlify condition Country=de,fr (the visitor's country) has no Waypost "
                "equivalent",
            ),
        ],
        [10, 16, 33, 39],
        id="netlify-toml",
    ),
    pytest.param(
        "vercel.json",
        "vercel",
        [
            # cleanUrls: the redirects Vercel puts before all others.
            {"from": "/index", "to": "/", "status": 308, "case": "insensitive"},
            {"from": "/index.html", "to": "/", "status": 308, "case": "insensitive"},
            {"from": "/<path:path>/index", "to": "/{path}", "status": 308, "case": "insensitive"},
            {
                "from": "/<path:path>/index.html",
                "to": "/{path}",
                "status": 308,
                "case": "insensitive",
            },
            {"from": "/<path:path>.html", "to": "/{path}", "status": 308, "case": "insensitive"},
            {
                "from": "/old-blog",
                "to": "/blog",
                "status": 308,
                "case": "insensitive",
                "trailing_slash": "strict",
            },
            {
                "from": "/blog/<slug>",
                "to": "/posts/{slug}",
                "status": 307,
                "case": "insensitive",
                "trailing_slash": "strict",
            },
            {
                # ':path*' matched nothing: Vercel fills in '' ('/help/:path*' gives '/help/').
                "from": "/docs",
                "to": "/help/",
                "status": 301,
                "case": "insensitive",
                "trailing_slash": "strict",
            },
            {
                "from": "/docs/<path:path>",
                "to": "/help/{path}",
                "status": 301,
                "case": "insensitive",
            },
            {
                "from": "/product/<int:id>",
                "to": "/p/{id}",
                "status": 308,
                "trailing_slash": "strict",
            },
            {
                "from": "/beta",
                "to": "/beta/welcome",
                "status": 308,
                "case": "insensitive",
                "trailing_slash": "strict",
                "when": {"cookies": {"beta": "yes"}, "not": {"headers": {"x-preview": "*"}}},
            },
            {
                # After the filesystem, and the unused parameter goes to the query.
                "from": "/app/<path:path>",
                "rewrite": "/index.html?path={path}",
                "only_if_missing": True,
                "case": "insensitive",
            },
            # A rewrite to another origin proxies there (also after the filesystem).
            {
                "from": "/api",
                "rewrite": "https://api.example.com/",
                "only_if_missing": True,
                "case": "insensitive",
                "trailing_slash": "strict",
            },
            {
                "from": "/api/<path:path>",
                "rewrite": "https://api.example.com/{path}",
                "only_if_missing": True,
                "case": "insensitive",
            },
        ],
        [
            (9, "the parameter ':name([a-z]+)' uses a regex Waypost has no converter for"),
            (
                10,
                "the source '/(.*)' has an unnamed regex group or wildcard, which Waypost "
                "patterns cannot express; name the parameter (':name')",
            ),
            (
                18,
                "the header value '(?<lang>de|fr)' in 'has' is a regex; only literal values import",
            ),
            (23, "'locale' (a Next.js option) has no Waypost equivalent"),
        ],
        [3],
        id="vercel",
    ),
    pytest.param(
        "cloudflare-bulk-redirects.csv",
        "cloudflare",
        [
            {
                "from": "/contacts",
                "to": "https://example.net/contact-us",
                "status": 301,
                "trailing_slash": "strict",
                "query": "drop",
                "when": {"host": "example.com"},
            },
            {
                "from": "/sale,now",
                "to": "https://example.com/sale",
                "status": 307,
                "trailing_slash": "strict",
                "query": "drop",
                "when": {"host": "example.com"},
            },
            {
                "from": "/about",
                "to": "https://example.net/about-us",
                "status": 301,
                "trailing_slash": "strict",
                "query": "drop",
                "when": {"host": ["example.com", "*.example.com"]},
            },
            {
                "from": "/blog",
                "to": "https://blog.example.com/",
                "status": 308,
                "trailing_slash": "strict",
                "when": {"host": "example.com"},
            },
            {
                "from": "/blog/<path:suffix>",
                "to": "https://blog.example.com/",
                "status": 308,
                "when": {"host": "example.com"},
            },
            {
                "from": "/docs/",
                "to": "https://docs.example.com/",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"host": "example.com"},
            },
            {
                "from": "/docs/<path:suffix>",
                "to": "https://docs.example.com/{suffix}",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"host": "example.com"},
            },
        ],
        [
            (
                7,
                "same rule as line 6 once the scheme is dropped (the two lines give one "
                "redirect for http and https)",
            ),
            (8, "the source URL '/no-host' has no host"),
            (9, "Cloudflare source URLs cannot have a query string"),
            (10, "status '303' is not one of 301, 302, 307, 308"),
            (11, "preserve_query_string 'maybe' is not TRUE or FALSE"),
        ],
        [6],
        id="cloudflare",
    ),
    pytest.param(
        "nginx-redirects.conf",
        "nginx",
        [
            {
                "from": "/old-page",
                "to": "/new-page",
                "status": 301,
                "trailing_slash": "strict",
                "case": "insensitive",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/about-us.html",
                "to": "/about/",
                "status": 301,
                "trailing_slash": "strict",
                "case": "insensitive",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/summer sale",
                "to": "/sale",
                "status": 301,
                "trailing_slash": "strict",
                "case": "insensitive",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/blog/<int:p1>/<path:p2>",
                "to": "/articles/{p1}/{p2}",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/blog/<int:p1>/",
                "to": "/articles/{p1}/",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/news/<path:p1>",
                "to": "/blog/{p1}",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/news/",
                "to": "/blog/",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/feed",
                "to": "/rss.xml",
                "status": 302,
                "query": "drop",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/contact.php",
                "to": "/contact",
                "status": 301,
                "query": "drop",
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/gone",
                "respond": 410,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/Docs/<path:p1>",
                "to": "/docs/{p1}",
                "status": 308,
                "trailing_slash": "strict",
                "case": "insensitive",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/downloads/",
                "to": "https://files.example.com/downloads/",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/downloads/<path:rest>",
                "to": "https://files.example.com/downloads/{rest}",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/api/",
                "pass": True,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
            {
                "from": "/api/<path:rest>",
                "pass": True,
                "trailing_slash": "strict",
                "when": {"host": "www.example.com"},
            },
        ],
        [
            (
                10,
                "the group ([a-z]+) in regex '^/shop/([a-z]+)$' has no Waypost converter "
                "(supported: (.*), (.+), ([^/]+), (\\d+) and (a|b|c))",
            ),
            (11, "map entry 'include' is not supported"),
            (
                17,
                "a return outside a location redirects every request of the server (a host "
                "or scheme redirect); Waypost rules match paths, so this is left to the "
                "server",
            ),
            (23, "included files are not read; import them separately"),
            (
                40,
                "regex '^/img/(.*)\\\\.png$' has text after a (.*) group; Waypost's path "
                "variable must end the pattern",
            ),
            (41, "the target uses the nginx variable $host"),
            (43, "'if ($http_user_agent ~* bot )' conditions are not imported"),
        ],
        [],
        id="nginx",
    ),
    pytest.param(
        "apache.htaccess",
        "apache",
        [
            {
                "from": "/old/<path:p1>",
                "to": "/new/{p1}",
                "status": 301,
                "trailing_slash": "strict",
            },
            {"from": "/old/", "to": "/new/", "status": 301, "trailing_slash": "strict"},
            {"from": "/category/<p1>", "to": "/c/{p1}", "status": 302, "case": "insensitive"},
            {
                "from": "/<path:p1>",
                "to": "https://new-domain.com/{p1}",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"host": ["old-domain.com", "www.old-domain.com"]},
            },
            {
                "from": "/",
                "to": "https://new-domain.com/",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"host": ["old-domain.com", "www.old-domain.com"]},
            },
            {"from": "/feed", "rewrite": "/feed.xml", "trailing_slash": "strict"},
            {
                "from": "/search",
                "to": "/find?q=all",
                "status": 301,
                "query": "drop",
                "trailing_slash": "strict",
            },
            {
                "from": "/old-page.html",
                "to": "/new-page/",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/old-page.html/",
                "to": "/new-page//",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/old-page.html/<path:rest>",
                "to": "/new-page//{rest}",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/blog",
                "to": "https://blog.example.com",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/blog/",
                "to": "https://blog.example.com/",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/blog/<path:rest>",
                "to": "https://blog.example.com/{rest}",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/removed",
                "respond": 410,
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/removed/<path:rest>",
                "respond": 410,
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/promo",
                "to": "/summer-sale",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/promo/",
                "to": "/summer-sale/",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/promo/<path:rest>",
                "to": "/summer-sale/{rest}",
                "status": 302,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
            {
                "from": "/shop/product-<int:p1>.html",
                "to": "/products/{p1}",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"not": {"host": ["old-domain.com", "www.old-domain.com"]}},
            },
        ],
        [
            (
                10,
                "regex '/catalog(.*)' is not anchored with '^', so it also matches in the "
                "middle of a path",
            ),
            (
                21,
                "regex '^private/' is not anchored with '$', so it matches every path that "
                "begins the same way; end it with '$' or '(.*)$'",
            ),
            (23, "belongs to the skipped RewriteRule on line 25"),
            (24, "belongs to the skipped RewriteRule on line 25"),
            (25, "the condition 'RewriteCond %{REQUEST_FILENAME} !-f' is not supported"),
            (29, "inside a <files> block, which limits where it applies"),
        ],
        [5, 5, 6, 7, 8, 9],
        id="apache",
    ),
    pytest.param(
        "wordpress-redirection.csv",
        "wordpress-csv",
        [
            {
                "from": "/old-post/",
                "to": "/new-post/",
                "status": 301,
                "trailing_slash": "strict",
                "query": "drop",
            },
            {
                "from": "/page",
                "to": "/page-three/",
                "status": 301,
                "trailing_slash": "strict",
                "when": {"query": {"id": "3"}},
                "query": "drop",
            },
            {
                "from": "/category/<path:p1>",
                "to": "/topics/{p1}",
                "status": 301,
                "trailing_slash": "strict",
                "query": "drop",
            },
            {
                "from": "/category/",
                "to": "/topics/",
                "status": 301,
                "trailing_slash": "strict",
                "query": "drop",
            },
            {"from": "/gone/", "respond": 410, "trailing_slash": "strict"},
            {
                "from": "/internal",
                "rewrite": "/real-page/",
                "trailing_slash": "strict",
                "query": "drop",
            },
        ],
        [
            (6, "the redirect is disabled in WordPress"),
            (
                7,
                "regex '/blog/(\\\\d+)' is not anchored with '^', so it also matches in "
                "the middle of a path",
            ),
            (8, "the action 'random' has no Waypost equivalent"),
        ],
        [],
        id="wordpress-csv",
    ),
    pytest.param(
        "wordpress-redirection.json",
        "wordpress-json",
        [
            {"from": "/old-shop/", "to": "/shop/", "status": 301, "case": "insensitive"},
            {"from": "/products/<int:p1>", "to": "/shop/item/{p1}", "status": 308, "query": "drop"},
        ],
        [
            (
                43,
                "regex '^/202[0-3]/(.*)$' uses '[' outside a supported group; Waypost "
                "patterns match literal text",
            ),
            (54, "the match type 'login' has no Waypost equivalent"),
            (77, "the redirect is disabled in WordPress"),
        ],
        [],
        id="wordpress-json",
    ),
    pytest.param(
        "wagtail-redirects.csv",
        "wagtail",
        [
            {
                "from": "/old-page",
                "to": "/new-page/",
                "status": 301,
                "query": "drop",
                "only_if_missing": True,
            },
            {
                "from": "/events",
                "to": "/events/2023/",
                "status": 302,
                "query": "drop",
                "only_if_missing": True,
                "when": {"query": {"year": "2023"}},
            },
            {
                "from": "/campaign",
                "to": "https://campaign.example.net/",
                "status": 301,
                "query": "drop",
                "only_if_missing": True,
            },
        ],
        [
            (5, "the row has no 'to' link; Wagtail needs a link or a page"),
            (6, "permanent 'perhaps' is not true or false"),
        ],
        [3],
        id="wagtail",
    ),
    pytest.param(
        "generic-redirects.tsv",
        "csv",
        [
            {"from": "/old", "to": "/new", "status": 301, "name": "old-to-new"},
            {"from": "/blog/<int:year>/<slug>", "to": "/posts/{year}/{slug}", "status": 302},
            {"from": "/removed", "respond": 410, "name": "removed"},
        ],
        [
            (6, "status 418 is not a redirect status (301, 302, 303, 307, 308)"),
            (7, "'from' 'no-slash' must be a path starting with '/'"),
        ],
        [],
        id="csv",
    ),
]


@pytest.mark.parametrize(("filename", "fmt", "rules", "skipped", "note_lines"), SAMPLES)
def test_sample_file_imports_exactly(
    filename: str,
    fmt: str,
    rules: list[dict[str, Any]],
    skipped: list[tuple[int, str]],
    note_lines: list[int],
) -> None:
    result = IMPORTERS[fmt]((DATA / filename).read_text(encoding="utf-8"))
    assert result.format == fmt
    assert result.rules == rules
    assert [(skip.line, skip.reason) for skip in result.skipped] == skipped
    assert [note.line for note in result.notes] == note_lines


@pytest.mark.parametrize(("filename", "fmt"), [(p.values[0], p.values[1]) for p in SAMPLES])
def test_every_skipped_line_quotes_the_source_line(filename: str, fmt: str) -> None:
    text = (DATA / filename).read_text(encoding="utf-8")
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    result = IMPORTERS[fmt](text)
    for skip in result.skipped:
        assert skip.text.strip(), skip
        if fmt not in ("vercel", "wordpress-json"):  # JSON skips quote the entry, not the line
            assert skip.text.strip() in lines[skip.line - 1] or lines[skip.line - 1] in skip.text


def test_summary_lists_skips_and_notes_in_line_order() -> None:
    result = IMPORTERS["netlify"]((DATA / "_redirects").read_text(encoding="utf-8"))
    summary = result.summary("_redirects").splitlines()
    assert summary[0] == "10 imported, 5 skipped, 5 notes"
    assert summary[1] == (
        "_redirects:6: note: Netlify's '/news/*' also matches '/news/' itself; add a rule if "
        "that matters: '/news/*               /blog/:splat                301!'"
    )
    assert summary[2] == (
        "_redirects:9: the target uses the query value ':id'; Waypost placeholders refer only to "
        "path variables: '/store id=:id         /blog/:id                   301'"
    )
    lines = [int(entry.split(":")[1]) for entry in summary[1:]]
    assert lines == sorted(lines)


def test_nginx_map_without_a_return_assumes_301_and_says_so() -> None:
    result = IMPORTERS["nginx"]("map $uri $target {\n    /a /b;\n}\n")
    assert result.rules == [
        {
            "from": "/a",
            "to": "/b",
            "status": 301,
            "trailing_slash": "strict",
            "case": "insensitive",
            "query": "drop",
        }
    ]
    assert [(note.line, note.message) for note in result.notes] == [
        (1, "no 'return ... $target;' uses this map; assumed 'return 301 $target;'")
    ]


@pytest.mark.parametrize(
    ("fmt", "text", "line", "reason"),
    [
        (
            "vercel",
            '{\n  "redirects": [\n    {"source": "/a",}\n  ]\n}',
            3,
            "invalid JSON, nothing imported: Expecting property name enclosed in double quotes",
        ),
        ("wordpress-json", "[1, 2", 1, "invalid JSON, nothing imported: Expecting ',' delimiter"),
        (
            "wordpress-json",
            '{"groups": []}',
            1,
            "the file has no 'redirects' list; is it a Redirection export?",
        ),
        (
            "netlify-toml",
            '[[redirects]]\nfrom = "/a\n',
            2,
            "invalid TOML, nothing imported: Illegal character '\\n' (at line 2, column 11)",
        ),
        (
            "yaml",
            "rules:\n  - from: /a\n   to: /b\n",
            3,
            "invalid YAML, nothing imported: "
            "expected <block end>, but found '<block mapping start>'",
        ),
    ],
    ids=["vercel-json", "wordpress-json-syntax", "wordpress-json-shape", "toml", "yaml"],
)
def test_unreadable_files_become_one_skip_not_an_exception(
    fmt: str, text: str, line: int, reason: str
) -> None:
    result = IMPORTERS[fmt](text)
    assert result.rules == []
    assert [(skip.line, skip.reason) for skip in result.skipped] == [(line, reason)]


def test_apache_virtual_host_names_become_a_host_condition() -> None:
    text = (
        "<VirtualHost *:443>\n"
        "    ServerName www.example.com\n"
        "    ServerAlias example.com:443\n"
        "    RedirectMatch 308 ^/old/?$ /new\n"
        "</VirtualHost>\n"
        "RedirectMatch 308 ^/other$ /elsewhere\n"
    )
    assert IMPORTERS["apache"](text).rules == [
        {
            "from": "/old",
            "to": "/new",
            "status": 308,
            "when": {"host": ["www.example.com", "example.com"]},
        },
        {"from": "/other", "to": "/elsewhere", "status": 308, "trailing_slash": "strict"},
    ]


def test_nginx_rewrite_inside_a_location_is_kept_only_when_it_cannot_escape_it() -> None:
    text = (
        "location /blog/ {\n"
        "    rewrite ^/blog/(\\d+)$ /posts/$1 permanent;\n"
        "}\n"
        "location = /x {\n"
        "    rewrite ^/(.+)$ /y/$1 permanent;\n"
        "}\n"
    )
    result = IMPORTERS["nginx"](text)
    # In nginx's order (an exact location first); what a location serves when its rewrites do
    # not apply is kept as 'pass' rules, so that no rule after it takes those paths.
    assert result.rules == [
        {"from": "/x", "pass": True, "trailing_slash": "strict"},
        {"from": "/blog/<int:p1>", "to": "/posts/{p1}", "status": 301, "trailing_slash": "strict"},
        {"from": "/blog/", "pass": True, "trailing_slash": "strict"},
        {"from": "/blog/<path:rest>", "pass": True, "trailing_slash": "strict"},
    ]
    assert [(skip.line, skip.reason) for skip in result.skipped] == [
        (5, "this rewrite only runs inside 'location = /x'; its regex could match paths outside it")
    ]


def test_netlify_toml_force_decides_only_if_missing() -> None:
    text = (
        '[[redirects]]\nfrom = "/a"\nto = "/b"\nforce = true\n\n'
        '[[redirects]]\nfrom = "/c"\nto = "/d"\n'
    )
    assert IMPORTERS["netlify-toml"](text).rules == [
        {"from": "/a", "to": "/b", "status": 301},
        {"from": "/c", "to": "/d", "status": 301, "only_if_missing": True},
    ]


@pytest.mark.parametrize(
    ("config", "url", "location"),
    [
        ("rewrite ^/old/(.*)$ /new/$1 permanent;", "/old/a/", "/new/a/"),
        ("rewrite ^/old/(.*)$ /new/$1 permanent;", "/old/a", "/new/a"),
        ("rewrite ^/old/(.+?)/?$ /new/$1 permanent;", "/old/a/", "/new/a"),
        ("location ~ ^/old/(.+)$ { return 301 /new/$1; }", "/old/a/b/", "/new/a/b/"),
        ("map $uri $to { ~^/old/(.*)$ /new/$1; }\nreturn 301 $to;", "/old/a/", "/new/a/"),
        ("location /old/ { return 301 /new$uri; }", "/old/a/", "/new/old/a/"),
        ("location /old { return 301 /new$uri; }", "/old/", "/new/old/"),
        ("location /old { return 301 /new$uri; }", "/old", "/new/old"),
    ],
    ids=["greedy", "greedy-bare", "lazy", "location", "map", "prefix", "prefix-slash", "bare"],
)
def test_nginx_greedy_groups_and_uri_keep_the_trailing_slash(
    config: str, url: str, location: str
) -> None:
    # nginx matches the path as it is: '(.*)$' and $uri keep a trailing slash.
    imported = IMPORTERS["nginx"](config)
    decision = Engine(imported.rules, defaults=imported.defaults).resolve("GET", url)
    assert (decision.status, decision.location) == (301, location)


def test_nginx_prefix_location_not_using_the_path_imports_as_one_rule_ignoring_the_slash() -> None:
    rules = IMPORTERS["nginx"]("location /old { return 301 /new; }").rules
    assert [(rule["from"], rule.get("trailing_slash")) for rule in rules] == [
        ("/old", None),
        ("/old/<path:rest>", "strict"),
    ]


def test_nginx_plain_map_keys_match_ignoring_case_like_nginx() -> None:
    # nginx: "Strings are matched ignoring the case"; '~' regex keys stay case-sensitive.
    text = "map $uri $to {\n    /Old /new;\n    ~^/Re/(.+)$ /re/$1;\n}\nreturn 301 $to;\n"
    imported = IMPORTERS["nginx"](text)
    engine = Engine(imported.rules, defaults=imported.defaults)
    assert engine.resolve("GET", "/old").location == "/new"
    assert engine.resolve("GET", "/OLD").location == "/new"
    assert engine.resolve("GET", "/old/").action == "pass"
    assert engine.resolve("GET", "/Re/x").location == "/re/x"
    assert engine.resolve("GET", "/re/x").action == "pass"


def test_nginx_plain_map_keys_with_and_without_the_slash_merge_into_one_rule() -> None:
    text = "map $uri $to {\n    /Old /new;\n    /Old/ /new;\n}\nreturn 301 $to;\n"
    assert IMPORTERS["nginx"](text).rules == [
        {"from": "/Old", "to": "/new", "status": 301, "case": "insensitive", "query": "drop"}
    ]


def test_nginx_guarded_map_entries_that_never_redirect_are_skipped_with_a_reason() -> None:
    text = (
        "map $uri $to {\n    /a /b;\n    /c /d;\n    ~^/e$ /f;\n}\n"
        "map $uri $to_path {\n    /A /A;\n    /c /elsewhere;\n}\n"
        "if ($to_path = $uri) {\n    return 301 $to;\n}\n"
    )
    result = IMPORTERS["nginx"](text)
    assert result.rules == [
        {"from": "/A", "to": "/b", "status": 301, "trailing_slash": "strict", "query": "drop"}
    ]
    reason = "the 'if (... = $uri)' that guards this map never holds here"
    assert [(skip.line, skip.reason) for skip in result.skipped] == [(3, reason), (4, reason)]


def test_nginx_internal_rewrites_import_only_when_an_internal_location_answers() -> None:
    # How Waypost exports respond rules: 'rewrite ^ URI last' to an internal location that
    # returns a status and a body. Other internal rewrites and locations are skipped, with why.
    text = (
        "map $uri $to {\n    /a /b;\n}\n"
        "if ($to) {\n    rewrite ^ $to last;\n}\n"
        "location = /z { internal; return 301 /q; }\n"
        'location /p/ { internal; return 410 "gone"; }\n'
        "location ~ ^/r$ { rewrite ^ /p/1 last; }\n"
    )
    result = IMPORTERS["nginx"](text)
    assert result.rules == [
        {"from": "/r", "respond": {"status": 410, "body": "gone"}, "trailing_slash": "strict"}
    ]
    assert [(skip.line, skip.reason) for skip in result.skipped] == [
        (2, "no internal location answers '/b'"),
        (7, "an internal location is reached only from inside nginx"),
    ]


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("apache", "RewriteEngine On\nRewriteRule ^old/(.*)$ /new/$1 [R=301,L]\n"),
        ("wordpress-csv", "source,target,regex,code\n^/old/(.*)$,/new/$1,1,301\n"),
    ],
    ids=["apache", "wordpress"],
)
def test_a_greedy_group_keeps_the_trailing_slash_as_the_regex_engine_does(
    fmt: str, text: str
) -> None:
    # Apache's and PHP's regex engines capture 'a/' from '/old/a/' with (.*): the slash stays.
    from waypost.engine import Engine

    result = IMPORTERS[fmt](text)
    engine = Engine(result.rules)
    assert engine.resolve("GET", "/old/a/").location == "/new/a/"
    assert engine.resolve("GET", "/old/a").location == "/new/a"
    assert engine.resolve("GET", "/old/a/b/").location == "/new/a/b/"


def test_wordpress_redirects_are_tried_by_position_and_the_first_match_applies() -> None:
    # The plugin sorts the redirects matching a URL by position (then id) and applies the first:
    # here the regex at position 0 wins over the literal at position 1, listed first.
    text = json.dumps(
        {
            "redirects": [
                {"id": 7, "position": 1, "url": "/old/page", "action_data": {"url": "/b"}},
                {
                    "id": 9,
                    "position": 0,
                    "url": "^/old/(.*)$",
                    "regex": True,
                    "action_data": {"url": "/a/$1"},
                },
            ]
        }
    )
    result = IMPORTERS["wordpress-json"](text)
    assert result.defaults == {"order": "first_match"}
    assert [rule["from"] for rule in result.rules][-1] == "/old/page"
    exported = EXPORTERS["yaml"](result.rules, result.defaults)
    engine = Engine(parse_rules(exported.text, format="yaml")[0])
    assert engine.resolve("GET", "/old/page").location == "/a/page"
    csv_result = IMPORTERS["wordpress-csv"]("source,target,regex,code\n/x,/y,0,301\n")
    assert csv_result.defaults == {"order": "first_match"}


def _nginx_engine(text: str) -> Engine:
    imported = IMPORTERS["nginx"](text)
    assert imported.defaults == {"order": "first_match"}
    return Engine(imported.rules, defaults=imported.defaults)


@pytest.mark.parametrize(
    ("text", "url", "expected"),
    [
        pytest.param(
            "rewrite ^/splat/(.*)$ /a/$1 permanent;\nrewrite ^/splat/foo/(.*)$ /b/$1 permanent;\n",
            "/splat/foo/x",
            "redirect 301 /a/foo/x",
            id="server-rewrites-in-file-order",
        ),
        pytest.param(
            "server {\n  location = /old/x { return 301 /y; }\n"
            "  rewrite ^/old/(.*)$ /new/$1 permanent;\n}\n",
            "/old/x",
            "redirect 301 /new/x",
            id="server-rewrites-before-locations",
        ),
        pytest.param(
            "server {\n  location /docs/special/ { return 301 /s/; }\n"
            "  location ~ ^/docs/(.+)$ { return 301 /r/$1; }\n}\n",
            "/docs/special/x",
            "redirect 301 /r/special/x",
            id="regex-before-a-longer-plain-prefix",
        ),
        pytest.param(
            "server {\n  location ^~ /static/ { root /srv; }\n"
            "  location ~ ^/(.+)$ { return 301 /r/$1; }\n}\n",
            "/static/a",
            "pass",
            id="caret-tilde-prefix-before-regex-and-served",
        ),
        pytest.param(
            "server {\n  location /api/ { proxy_pass http://127.0.0.1:9; }\n"
            "  location / { return 301 https://example.com$request_uri; }\n}\n",
            "/api/x",
            "pass",
            id="a-longer-prefix-that-serves",
        ),
        pytest.param(
            "server {\n  location /api/ { proxy_pass http://127.0.0.1:9; }\n"
            "  location / { return 301 https://example.com$request_uri; }\n}\n",
            "/other",
            "redirect 301 https://example.com/other",
            id="the-shorter-prefix",
        ),
    ],
)
def test_nginx_imports_decide_in_nginx_order(text: str, url: str, expected: str) -> None:
    decision = _nginx_engine(text).resolve("GET", url).describe(detail=False)
    assert ("pass" if decision.startswith("pass") else decision) == expected


def test_nginx_caret_tilde_prefix_under_a_longer_plain_prefix_with_regexes_is_refused() -> None:
    text = (
        "server {\n  location ^~ /a/ { return 301 /caret/; }\n"
        "  location /a/b/ { return 301 /plain/; }\n"
        "  location ~ ^/a/(.+)$ { return 301 /r/$1; }\n}\n"
    )
    result = IMPORTERS["nginx"](text)
    assert [skip.line for skip in result.skipped] == [2]
    assert "regex locations before this one" in result.skipped[0].reason
