"""Apache mod_alias ``Redirect``: a prefix match on whole path segments whose rest is appended.

Every expected answer below is what Apache 2.4.71 (mod_alias) sent for the same request and
configuration; the differential tests check them against a real Apache when one is installed.
``Redirect /blog /new`` takes ``/blog``, ``/blog/`` and ``/blog/...`` (not ``/blogger``) and
appends what follows ``/blog``, slashes included; the query string is carried over unless the
URL has its own.

The export to ``.htaccess`` is checked the same way: served by a real Apache, it must answer as
Waypost does, down to how the values filled in from the request are percent-encoded.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.tools.apache_serving import serving_apache
from waypost.engine import Engine
from waypost.rules.target import _SAFE_BY_PART
from waypost.tools.formats import EXPORTERS, IMPORTERS
from waypost.tools.formats.apache._export import _KEPT

PASS = (200, None)  # no rule: the request goes on to the app

BLOG = "Redirect 301 /blog /new\n"
BLOG_SLASH = "Redirect 301 /blog/ /new/\n"

#: (configuration, request, (status, Location)) as Apache answers.
CASES: list[tuple[str, str, tuple[int, str | None]]] = [
    (BLOG, "/blog", (301, "/new")),
    (BLOG, "/blog/", (301, "/new/")),
    (BLOG, "/blog/x", (301, "/new/x")),
    (BLOG, "/blog/x/", (301, "/new/x/")),
    (BLOG, "/blog/x/y/", (301, "/new/x/y/")),
    (BLOG, "/blogger", PASS),
    (BLOG, "/blog?a=1", (301, "/new?a=1")),
    (BLOG, "/blog/?a=1", (301, "/new/?a=1")),
    (BLOG, "/blog/x/?a=1&b=2", (301, "/new/x/?a=1&b=2")),
    (BLOG_SLASH, "/blog", PASS),
    (BLOG_SLASH, "/blog/", (301, "/new/")),
    (BLOG_SLASH, "/blog/x", (301, "/new/x")),
    (BLOG_SLASH, "/blog/x/", (301, "/new/x/")),
    (BLOG_SLASH, "/blog/x/?a=1", (301, "/new/x/?a=1")),
    (BLOG_SLASH, "/blogger/", PASS),
    # A trailing slash on one side only: Apache appends the rest all the same.
    ("Redirect 301 /blog /new/\n", "/blog", (301, "/new/")),
    ("Redirect 301 /blog /new/\n", "/blog/x", (301, "/new//x")),
    ("Redirect 301 /blog/ /new\n", "/blog/", (301, "/new")),
    ("Redirect 301 /blog/ /new\n", "/blog/x/", (301, "/newx/")),
    # The URL's own query string replaces the request's, and the rest lands after it.
    ("Redirect 301 /blog /new?src=old\n", "/blog?a=1", (301, "/new?src=old")),
    ("Redirect 301 /blog /new?src=old\n", "/blog/x?a=1", (301, "/new?src=old/x")),
    ("Redirect permanent / https://example.org/\n", "/", (301, "https://example.org/")),
    ("Redirect permanent / https://example.org/\n", "/a/b/", (301, "https://example.org/a/b/")),
    ("Redirect permanent / https://example.org/\n", "/?q=1", (301, "https://example.org/?q=1")),
    ("RedirectPermanent /blog /new\n", "/blog/x/", (301, "/new/x/")),
    ("RedirectTemp /blog /new\n", "/blog/", (302, "/new/")),
    ("Redirect seeother /blog /new\n", "/blog/x", (303, "/new/x")),
    ('Redirect 308 "/summer sale" "/sale"\n', "/summer%20sale/a", (308, "/sale/a")),
    ("Redirect gone /blog\n", "/blog", (410, None)),
    ("Redirect gone /blog\n", "/blog/", (410, None)),
    ("Redirect gone /blog\n", "/blog/x/", (410, None)),
    ("Redirect gone /blog\n", "/blogger", PASS),
    ("Redirect 403 /blog/\n", "/blog", PASS),
    ("Redirect 403 /blog/\n", "/blog/x", (403, None)),
    # The first Redirect that matches wins, however long a later one's URL-path is.
    (BLOG + "Redirect 301 /blog/sub /other\n", "/blog/sub/x", (301, "/new/sub/x")),
    ("Redirect 301 /blog/ /a/\nRedirect 301 /blog /b\n", "/blog", (301, "/b")),
    ("Redirect 301 /blog/ /a/\nRedirect 301 /blog /b\n", "/blog/x", (301, "/a/x")),
    # Inside <Location>: without a URL-path the whole location goes to the URL as it is.
    ('<Location "/one">\n  Redirect permanent "/two"\n</Location>\n', "/one", (301, "/two")),
    ("<Location /one>\n  Redirect permanent /two\n</Location>\n", "/one/x/", (301, "/two")),
    ("<Location /one>\n  Redirect permanent /two\n</Location>\n", "/one/x?a=1", (301, "/two?a=1")),
    ("<Location /one>\n  Redirect permanent /two\n</Location>\n", "/oneself", PASS),
    ("<Location /one/>\n  Redirect /two?z=1\n</Location>\n", "/one", PASS),
    ("<Location /one/>\n  Redirect /two?z=1\n</Location>\n", "/one/x?a=1", (302, "/two?z=1")),
    ("<Location /one>\n  Redirect gone\n</Location>\n", "/one/", (410, None)),
    ("<Location /one>\n  Redirect 301 /one/sub /s\n</Location>\n", "/one/sub/x/", (301, "/s/x/")),
    ("<Location /one>\n  Redirect 301 /one/sub /s\n</Location>\n", "/one/x", PASS),
    ("<Location /one/>\n  Redirect 301 /one /s\n</Location>\n", "/one", PASS),
    ("<Location /one/>\n  Redirect 301 /one /s\n</Location>\n", "/one/x", (301, "/s/x")),
]


def _case_id(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if not line.startswith("</"))


CASE_IDS = [f"{_case_id(text)} {url}" for text, url, _want in CASES]


def _answer(engine: Engine, url: str) -> tuple[int, str | None]:
    decision = engine.resolve("GET", url)
    if decision.action == "redirect":
        return decision.status, decision.location
    if decision.action == "respond":
        return decision.status, None
    assert decision.action == "pass", decision
    return PASS


@pytest.mark.parametrize(("text", "url", "want"), CASES, ids=CASE_IDS)
def test_an_imported_redirect_answers_as_apache_does(
    text: str, url: str, want: tuple[int, str | None]
) -> None:
    result = IMPORTERS["apache"](text)
    assert result.rules
    assert _answer(Engine(result.rules), url) == want


def test_a_prefix_redirect_is_three_strict_rules() -> None:
    assert IMPORTERS["apache"](BLOG).rules == [
        {"from": "/blog", "to": "/new", "status": 301, "trailing_slash": "strict"},
        {"from": "/blog/", "to": "/new/", "status": 301, "trailing_slash": "strict"},
        {
            "from": "/blog/<path:rest>",
            "to": "/new/{rest}",
            "status": 301,
            "trailing_slash": "strict",
        },
    ]


def test_a_virtual_host_keeps_its_host_on_every_rule() -> None:
    text = "<VirtualHost *:80>\n  ServerName old.example.com\n  " + BLOG + "</VirtualHost>\n"
    rules = IMPORTERS["apache"](text).rules
    assert [rule["from"] for rule in rules] == ["/blog", "/blog/", "/blog/<path:rest>"]
    assert all(rule["when"] == {"host": "old.example.com"} for rule in rules)
    engine = Engine(rules)
    assert engine.resolve("GET", "http://old.example.com/blog/x/").location == "/new/x/"
    assert engine.resolve("GET", "http://www.example.com/blog/x/").action == "pass"


@pytest.mark.parametrize(
    ("text", "note"),
    [
        (
            "Redirect 301 /blog /new/",
            "the URL ends with '/' and the URL-path does not, so Apache doubles the slash "
            "('/blog/x' goes to '/new//x'); imported as Apache does",
        ),
        (
            "Redirect 301 /blog/ /new",
            "the URL-path ends with '/' and the URL does not, so Apache joins the rest of the "
            "path to the URL without one ('/blog/x' goes to '/newx'); imported as Apache does",
        ),
        (
            "Redirect 301 /blog /new?src=old",
            "the URL has a query string, so Apache appends the rest of the path to it ('/blog/x' "
            "goes to '/new?src=old/x') and drops the request's query string; imported as Apache "
            "does",
        ),
        (
            "Redirect 301 / https://example.org",
            "Apache appends the rest of the path to the host name ('/x' goes to "
            "'https://example.orgx'), which Waypost cannot do; only '/' itself was imported",
        ),
        (
            "Redirect 301 /blog/ /a/\nRedirect 301 /blog /b",
            "the Redirect on line 1 comes first for '/blog/', '/blog/<path:rest>', so only "
            "'/blog' was imported",
        ),
    ],
    ids=["slash-on-url", "slash-on-path", "query", "bare-host", "shadowed"],
)
def test_surprising_apache_results_are_imported_with_a_note(text: str, note: str) -> None:
    result = IMPORTERS["apache"](text + "\n")
    assert result.skipped == []
    assert [(n.line, n.message) for n in result.notes] == [(text.count("\n") + 1, note)]


def test_a_bare_host_url_imports_only_the_root() -> None:
    # Apache would send '/x' to 'https://example.orgx', another host: Waypost cannot.
    rules = IMPORTERS["apache"]("Redirect 301 / https://example.org\n").rules
    assert rules == [
        {"from": "/", "to": "https://example.org", "status": 301, "trailing_slash": "strict"}
    ]


SKIPS = [
    ("Redirect 301 /old", "a 301 redirect needs a URL-path and a URL"),
    ("Redirect /old", "a 302 redirect needs a URL-path and a URL"),
    ("RedirectPermanent /old", "a 301 redirect needs a URL-path and a URL"),
    ("Redirect 301 /old new", "the URL 'new' is neither a full URL nor a path starting with '/'"),
    ("Redirect bogus /old /new", "unknown Redirect status 'bogus'"),
    ("Redirect 300 /old /new", "status 300 is not a redirect Waypost supports"),
    ("Redirect 410 /old /new", "status 410 takes a URL-path and no URL"),
    (
        "Redirect 301 old /new",
        "the URL-path 'old' must be a path starting with '/', without '<' or '>'",
    ),
    (
        "Redirect 301 /blog /a\nRedirect 301 /blog/x /b",
        "it never applies: the Redirect on line 2 comes first and takes every path this one would",
    ),
    (
        "<Location /one>\nRedirect 301 /two /s\n</Location>",
        "it never applies: the URL-path '/two' is outside <Location '/one'>",
    ),
    (
        "<Location /one/sub>\nRedirect 301 /one /s\n</Location>",
        "the URL-path '/one' is wider than <Location '/one/sub'>, which Waypost cannot "
        "narrow it to",
    ),
    (
        "<Location /one>\nRedirect 301 %{REQUEST_URI}\n</Location>",
        "the URL '%{REQUEST_URI}' is an expression Waypost cannot evaluate",
    ),
    (
        '<Location ~ "^/one">\nRedirect 301 /two\n</Location>',
        "inside a <location> block, which limits where it applies",
    ),
    (
        "<Location /one>\nRedirectMatch 301 ^/one/(.*)$ /two/$1\n</Location>",
        "inside a <location> block, which limits where it applies",
    ),
    (
        "<Directory /var/www>\nRedirect 301 /a /b\n</Directory>",
        "inside a <directory> block, which limits where it applies",
    ),
]


@pytest.mark.parametrize(("text", "reason"), SKIPS, ids=[_case_id(text) for text, _ in SKIPS])
def test_a_redirect_that_cannot_be_imported_is_skipped_with_its_file_line_and_text(
    text: str, reason: str
) -> None:
    lines = ["# redirects", *text.split("\n")]
    result = IMPORTERS["apache"]("\n".join(lines) + "\n")
    (skip,) = result.skipped
    assert skip.reason == reason
    assert lines[skip.line - 1].strip() == skip.text
    assert skip.render("site.conf") == f"site.conf:{skip.line}: {reason}: {skip.text!r}"


# -- export: the rules an import gives export to .htaccess and come back the same ------------------

CONFIGS = list(dict.fromkeys(text for text, _url, _want in CASES))


@pytest.mark.parametrize("text", CONFIGS, ids=[_case_id(text) for text in CONFIGS])
def test_imported_redirects_export_to_htaccess_and_import_back_the_same(text: str) -> None:
    result = IMPORTERS["apache"](text)
    imported = result.rules
    # Apache applies the first rule that matches: the import says so, and the export keeps it.
    assert result.defaults == {"order": "first_match"}
    exported = EXPORTERS["apache"](imported, result.defaults)
    assert exported.unsupported == []
    back = IMPORTERS["apache"](exported.text)
    assert back.skipped == []
    assert [_renamed(rule) for rule in back.rules] == imported, exported.text
    original = Engine(imported, defaults=result.defaults)
    again = Engine(back.rules, defaults=back.defaults)
    for _text, url, _want in CASES:
        assert _answer(again, url) == _answer(original, url), (url, exported.text)


def _renamed(rule: dict[str, Any]) -> dict[str, Any]:
    """A re-imported rule with its regex group's name ('p1') back to the original 'rest'."""
    out = dict(rule)
    out["from"] = str(out["from"]).replace("<path:p1>", "<path:rest>")
    for key in ("to", "rewrite"):
        if key in out:
            out[key] = str(out[key]).replace("{p1}", "{rest}")
    return out


def test_the_exporter_keeps_the_slash_a_prefix_redirect_keeps() -> None:
    exported = EXPORTERS["apache"](IMPORTERS["apache"](BLOG).rules, None)
    assert [line for line in exported.text.splitlines() if line.startswith("RewriteRule")] == [
        "RewriteRule ^blog$ /new [R=301,NE,L]",
        "RewriteRule ^blog/$ /new/ [R=301,NE,L]",
        "RewriteRule ^blog/(.+)$ /new/$1 [R=301,B,BNE=/!$&'()*+;=:@-.~,BNP,NE,L]",
    ]


# -- export: values filled in from the request are percent-encoded as Waypost encodes them ------

ENCODED_RULES: list[dict[str, Any]] = [
    {"from": "/blog/<path:rest>", "to": "/new/{rest}", "status": 301},
    {"from": "/tag/<name>", "to": "/t/{name}?q={name}", "status": 302},
    {"from": "/find/<path:terms>", "to": "/search?q={terms}", "status": 301, "query": "drop"},
    # query: drop, as Apache would put a kept query string after the fragment (refused).
    {"from": "/page/<path:rest>", "to": "/book#{rest}", "status": 301, "query": "drop"},
    {"from": "/n/<int:n>", "to": "/m/{n}", "status": 301},
    {"from": "/old-cafe", "to": "/café", "status": 301},
    {"from": "/percent", "to": "/a%20b$c", "status": 301},
]

#: (request, the Location Apache sends where it cannot send Waypost's; None: the same as Waypost)
ENCODED_REQUESTS: list[tuple[str, str | None]] = [
    ("/blog/a%20b", None),
    ("/blog/caf%C3%A9", None),
    ("/blog/a%2Fb", None),  # '/' with AllowEncodedSlashes On, as Waypost decodes it
    ("/blog/a%3Fb", None),
    ("/blog/a%23b", None),
    ("/blog/a%25b", None),
    ("/blog/a%0D%0Ab", None),
    ("/blog/a%FFb", None),
    ("/blog/%22%3C%3E%5B%5D%5E%60%7B%7C%7D%5C", None),
    ("/blog/a&b=c+d;e:f@g", None),
    ("/blog/~x!$'()*", None),
    ("/blog/x/y/?k=v%20w", None),
    ("/blog/a,b", "/new/a%2Cb"),
    ("/tag/a%20b%3F", None),
    ("/tag/caf%C3%A9", None),
    ("/tag/a&b=c", "/t/a%26b%3Dc?q=a%26b%3Dc"),
    ("/find/a%20b/c&d=e+f%3F%23?x=1", None),
    ("/find/caf%C3%A9", None),
    ("/page/a%20b", None),
    ("/page/a%3Fb", "/book#a%3Fb"),
    ("/n/42", None),
    ("/old-cafe", None),
    ("/percent", None),
]


def _upper_escapes(location: str) -> str:
    """``location`` with the hex digits of its escapes in upper case, as Waypost writes them:
    Apache writes ``%c3%a9``, the same URL (RFC 3986, 2.1)."""
    return re.sub(r"%[0-9a-fA-F]{2}", lambda escape: escape.group(0).upper(), location)


def test_the_export_notes_what_apache_sends_otherwise() -> None:
    exported = EXPORTERS["apache"](ENCODED_RULES, None)
    assert exported.unsupported == []
    comma = (
        "a ',' in {{{}}} is sent as %2C, where Waypost sends ',' (BNE cannot list ',': "
        "mod_rewrite splits its flags at commas)"
    )
    assert [(note.index, note.message) for note in exported.notes] == [
        (0, comma.format("rest")),
        (1, comma.format("name")),
        (
            1,
            "'&', '+', '=' in {name} (in the path) are sent percent-encoded, where Waypost "
            "sends them as they are: one B flag encodes every value of the rule, and the query "
            "needs them",
        ),
        (2, comma.format("terms")),
        (3, comma.format("rest")),
        (
            3,
            "'?' in {rest} (in the fragment) is sent percent-encoded, where Waypost sends it as "
            "it is: mod_rewrite would take a '?' for the start of the query string",
        ),
    ]
    lines = exported.text.splitlines()
    for note in exported.notes:  # written above the rule, too
        assert f"# note: {note.message}" in lines
    assert "6 notes" in exported.summary()


def test_the_export_writes_literal_text_as_waypost_sends_it() -> None:
    text = EXPORTERS["apache"](ENCODED_RULES, None).text
    assert "RewriteRule ^old\\-cafe/?$ /caf\\%C3\\%A9 [R=301,NE,L]" in text
    assert "RewriteRule ^n/(\\d+)/?$ /m/$1 [R=301,NE,L]" in text  # digits need no encoding


def test_bne_lists_what_waypost_leaves_unencoded() -> None:
    # B never encodes letters, digits and '_'; BNE cannot list ','; '?' in a fragment would
    # start mod_rewrite's query string.
    for part, kept in _KEPT.items():
        waypost = set(_SAFE_BY_PART[part]) | ({"/"} if part == "path" else set())
        assert set(kept) | {",", "_"} | ({"?"} if part == "fragment" else set()) == waypost


# -- the differential test: a real Apache, when installed, answers as the imported rules do --------


@pytest.fixture(scope="module")
def apache() -> Iterator[int]:
    """A private Apache serving each configuration of CASES as it is (host 'cN.test') and as
    its Waypost import exported to .htaccess (host 'eN.test'), and ENCODED_RULES exported
    (host 'encoded.test'); yields its port."""
    sites: dict[str, tuple[str, str | None]] = {}
    for number, text in enumerate(CONFIGS):
        exported = EXPORTERS["apache"](IMPORTERS["apache"](text).rules, None).text
        sites[f"c{number}.test"] = (text, None)
        sites[f"e{number}.test"] = ("", exported)
    # As the export's header asks: otherwise Apache answers a path with %2F with 404.
    encoded = EXPORTERS["apache"](ENCODED_RULES, None).text
    sites["encoded.test"] = ("    AllowEncodedSlashes On", encoded)
    # Not under pytest's temporary folder: its parents are closed to the user Apache serves as.
    with (
        tempfile.TemporaryDirectory(prefix="waypost-apache-") as root,
        serving_apache(Path(root), sites) as port,
    ):
        yield port


def _apache_answer(port: int, host: str, url: str) -> tuple[int, str | None]:
    response = httpx.get(f"http://127.0.0.1:{port}{url}", headers={"Host": host})
    location = response.headers.get("location")
    if response.status_code == 404 and location is None:
        return PASS  # nothing there: no Redirect took the request
    # Apache makes a path into an absolute URL on the request's host.
    if location is not None:
        location = re.sub(rf"^http://{re.escape(host)}(?::{port})?(?=/)", "", location)
    return response.status_code, location


@pytest.mark.parametrize(("text", "url", "want"), CASES, ids=CASE_IDS)
def test_apache_answers_as_the_test_says_and_so_does_the_export(
    apache: int, text: str, url: str, want: tuple[int, str | None]
) -> None:
    number = CONFIGS.index(text)
    assert _apache_answer(apache, f"c{number}.test", url) == want
    assert _apache_answer(apache, f"e{number}.test", url) == want


@pytest.mark.parametrize(
    ("url", "differs"), ENCODED_REQUESTS, ids=[url for url, _differs in ENCODED_REQUESTS]
)
def test_apache_sends_the_location_waypost_sends_from_the_export(
    apache: int, url: str, differs: str | None
) -> None:
    decision = Engine(ENCODED_RULES).resolve("GET", url)
    assert decision.action == "redirect" and decision.location is not None
    response = httpx.get(f"http://127.0.0.1:{apache}{url}", headers={"Host": "encoded.test"})
    raw = b"".join(value for name, value in response.headers.raw if name.lower() == b"location")
    # Never a raw space, control character or non-ASCII byte: only visible ASCII.
    assert raw and all(0x21 <= byte <= 0x7E for byte in raw), raw
    location = re.sub(r"^http://encoded\.test(?::\d+)?(?=/)", "", raw.decode("ascii"))
    assert (response.status_code, _upper_escapes(location)) == (
        decision.status,
        differs or decision.location,
    )
