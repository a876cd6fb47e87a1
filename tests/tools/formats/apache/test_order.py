"""Apache's order across modules, and the ``.htaccess`` context, in the Apache import.

Every expected answer below is what Apache 2.4 sent for the same request and configuration; the
differential test checks them against a real Apache when one is installed, served from a
virtual host (``server``) or from a ``.htaccess`` at its document root (``htaccess``).

* mod_rewrite runs before mod_alias in both contexts, so a ``RewriteRule`` takes a path before a
  ``Redirect`` or ``RedirectMatch`` whatever the file order.
* In ``.htaccess`` an internal rewrite (no ``R``) takes effect after mod_alias's fixup, so a
  ``Redirect`` of the original path wins over it.
* In ``.htaccess`` a RewriteRule sees the path without its leading ``/`` (``^/old$`` never
  matches); in server configuration it sees it with it (``^old$`` never matches). A relative
  substitution is joined to the ``RewriteBase``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest

from tests.tools.apache_serving import serving_apache
from waypost.engine import Engine
from waypost.tools.formats import IMPORTERS, detect_format, parse_apache

PASS = (200, None)  # no rule: the request goes on to the app (Apache: 404, no file there)
ON = "RewriteEngine On\n"

Context = Literal["server", "htaccess"]

# -- configurations: (context, text) -----------------------------------------------------------

#: The RewriteRule comes second in the file and first in Apache.
SERVER_EXACT = ("server", ON + "Redirect 301 /a /x\nRewriteRule ^/a$ /y [R=301,L]\n")
#: A RewriteRule taking every path leaves the Redirect nothing.
SERVER_ALL = ("server", ON + "Redirect 301 /a /x\nRewriteRule ^/(.*)$ /y/$1 [R=301,L]\n")
SERVER_MATCH = ("server", ON + "RedirectMatch 301 ^/a$ /x\nRewriteRule ^/a$ /y [R=301,L]\n")
#: The RewriteRule takes every path on one host only: the Redirect keeps the others.
SERVER_HOST = (
    "server",
    "ServerAlias old.test\n"
    + ON
    + "Redirect 301 /a /x\n"
    + "RewriteCond %{HTTP_HOST} ^old\\.test$\n"
    + "RewriteRule ^/(.*)$ /y/$1 [R=301,L]\n",
)
SERVER_FORMS = ("server", ON + "RewriteRule ^old$ /new [R=301,L]\nRewriteRule ^/kept$ /k [R=301]\n")
HTACCESS_EXACT = ("htaccess", ON + "Redirect 301 /a /x\nRewriteRule ^a$ /y [R=301,L]\n")
HTACCESS_ALL = ("htaccess", ON + "Redirect 301 /a /x\nRewriteRule ^(.*)$ /y/$1 [R=301,L]\n")
#: An internal rewrite gives way to the Redirect of the path it was asked for.
HTACCESS_INTERNAL = ("htaccess", ON + "RewriteRule ^a$ /b [L]\nRedirect 301 /a /d\n")
HTACCESS_GONE = ("htaccess", ON + "RewriteRule ^old$ - [G]\nRedirect 301 /old /d\n")
HTACCESS_BASE = ("htaccess", ON + "RewriteBase /base/\nRewriteRule ^old$ new [R=301,L]\n")
HTACCESS_FORMS = (
    "htaccess",
    ON + "RewriteRule ^/old$ /new [R=301,L]\nRewriteRule ^/?kept$ /k [R=301,L]\n",
)

#: (configuration, host, request, (status, Location)) as Apache answers.
CASES: list[tuple[tuple[Context, str], str | None, str, tuple[int, str | None]]] = [
    (SERVER_EXACT, None, "/a", (301, "/y")),
    (SERVER_EXACT, None, "/a/", (301, "/x/")),
    (SERVER_EXACT, None, "/a/b", (301, "/x/b")),
    (SERVER_EXACT, None, "/z", PASS),
    (SERVER_ALL, None, "/a", (301, "/y/a")),
    (SERVER_ALL, None, "/a/b/", (301, "/y/a/b/")),
    (SERVER_ALL, None, "/z", (301, "/y/z")),
    (SERVER_MATCH, None, "/a", (301, "/y")),
    (SERVER_MATCH, None, "/a/", PASS),
    (SERVER_HOST, "old.test", "/a", (301, "/y/a")),
    (SERVER_HOST, "old.test", "/a/b", (301, "/y/a/b")),
    (SERVER_HOST, None, "/a", (301, "/x")),
    (SERVER_HOST, None, "/a/b", (301, "/x/b")),
    (SERVER_HOST, None, "/z", PASS),
    (SERVER_FORMS, None, "/old", PASS),
    (SERVER_FORMS, None, "/kept", (301, "/k")),
    (HTACCESS_EXACT, None, "/a", (301, "/y")),
    (HTACCESS_EXACT, None, "/a/", (301, "/x/")),
    (HTACCESS_EXACT, None, "/a/b", (301, "/x/b")),
    (HTACCESS_ALL, None, "/a", (301, "/y/a")),
    (HTACCESS_ALL, None, "/a/b", (301, "/y/a/b")),
    (HTACCESS_ALL, None, "/", (301, "/y/")),
    (HTACCESS_INTERNAL, None, "/a", (301, "/d")),
    (HTACCESS_INTERNAL, None, "/a/x", (301, "/d/x")),
    (HTACCESS_GONE, None, "/old", (410, None)),
    (HTACCESS_GONE, None, "/old/q", (301, "/d/q")),
    (HTACCESS_BASE, None, "/old", (301, "/base/new")),
    (HTACCESS_FORMS, None, "/old", PASS),
    (HTACCESS_FORMS, None, "/kept", (301, "/k")),
]

CONFIGS = list(dict.fromkeys(config for config, _host, _url, _want in CASES))


def _case_id(config: tuple[Context, str], host: str | None, url: str) -> str:
    text = " | ".join(line for line in config[1].splitlines() if line != ON.strip())
    return f"{config[0]}: {text} {host or ''}{url}"


CASE_IDS = [_case_id(config, host, url) for config, host, url, _want in CASES]


def _imported(config: tuple[Context, str]) -> Engine:
    context, text = config
    return Engine(parse_apache(text, context=context).rules)


def _answer(engine: Engine, host: str | None, url: str) -> tuple[int, str | None]:
    decision = engine.resolve("GET", f"http://{host or 'site.test'}{url}")
    if decision.action == "redirect":
        return decision.status or 0, decision.location
    if decision.action == "respond":
        return decision.status or 0, None
    assert decision.action == "pass", decision
    return PASS


@pytest.mark.parametrize(("config", "host", "url", "want"), CASES, ids=CASE_IDS)
def test_the_import_answers_as_apache_does(
    config: tuple[Context, str], host: str | None, url: str, want: tuple[int, str | None]
) -> None:
    assert _answer(_imported(config), host, url) == want


# -- what the import says about it ----------------------------------------------------------------


def _report(config: tuple[Context, str]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    result = parse_apache(config[1], context=config[0])
    return (
        [(skip.line, skip.reason) for skip in result.skipped],
        [(note.line, note.message) for note in result.notes],
    )


def test_a_redirect_a_rewrite_rule_takes_whole_is_skipped_with_the_reason() -> None:
    skipped, notes = _report(SERVER_ALL)
    assert skipped == [
        (
            2,
            "it never applies: the RewriteRule on line 3 comes first in Apache (mod_rewrite "
            "runs before mod_alias) and takes every path this one would",
        )
    ]
    assert notes == []


def test_a_redirect_a_rewrite_rule_takes_in_part_keeps_the_rest_and_says_so() -> None:
    skipped, notes = _report(SERVER_EXACT)
    assert skipped == []
    assert notes == [
        (
            2,
            "the RewriteRule on line 3 comes first in Apache (mod_rewrite runs before "
            "mod_alias) and takes '/a', so only '/a/', '/a/<path:rest>' was imported",
        )
    ]


def test_the_rewrite_rules_come_first_in_the_imported_rules() -> None:
    rules = parse_apache(SERVER_EXACT[1], context="server").rules
    assert [rule["from"] for rule in rules] == ["/a", "/a/", "/a/<path:rest>"]
    assert rules[0]["to"] == "/y"


def test_a_redirect_gives_way_on_the_hosts_of_a_rewrite_rule() -> None:
    rules = parse_apache(SERVER_HOST[1], context="server").rules
    assert [rule.get("when") for rule in rules] == [{"host": "old.test"}] * 2 + [
        {"not": {"host": "old.test"}}
    ] * 3
    _skipped, notes = _report(SERVER_HOST)
    assert notes == [
        (
            3,
            "the RewriteRule on line 5 comes first in Apache (mod_rewrite runs before "
            "mod_alias) on 'old.test' and takes every path of '/a', '/a/', '/a/<path:rest>' "
            "there, so they were imported for the other hosts only",
        )
    ]


def test_an_order_waypost_cannot_express_is_noted() -> None:
    # The query condition cannot be negated for the Redirect: Waypost answers '/a?go=1' with
    # the Redirect, where Apache applies the RewriteRule.
    text = (
        ON + "Redirect 301 /a /x\nRewriteCond %{QUERY_STRING} (^|&)go=1(&|$)\n"
        "RewriteRule ^/(.*)$ /y/$1 [R=301,L]\n"
    )
    result = parse_apache(text, context="server")
    assert result.skipped == []
    assert [(note.line, note.message) for note in result.notes] == [
        (
            2,
            "the RewriteRule on line 4 comes first in Apache (mod_rewrite runs before "
            "mod_alias), but Waypost's priority offers '/a', '/a/', '/a/<path:rest>' first on "
            "the paths both match (such as '/a', '/a/', '/a/x'), which get this line's answer "
            "there when its conditions hold",
        )
    ]


@pytest.mark.parametrize(
    "rewrite",
    ["^/a/x-([^/]+)$ /y/$1", "^/a/([0-9]+)$ /n/$1", "^/a/(x|y)$ /w/$1", "^/b/(.*)$ /b2/$1"],
)
def test_a_redirect_a_rewrite_rule_takes_only_in_part_is_kept(rewrite: str) -> None:
    result = parse_apache(f"{ON}Redirect 301 /a /x\nRewriteRule {rewrite} [R=301,L]\n")
    assert result.skipped == []
    assert [rule["from"] for rule in result.rules][-3:] == ["/a", "/a/", "/a/<path:rest>"]


def test_an_internal_rewrite_gives_way_to_a_redirect_in_htaccess() -> None:
    skipped, _notes = _report(HTACCESS_INTERNAL)
    assert skipped == [
        (
            2,
            "it never applies: the Redirect on line 3 comes first in Apache (in .htaccess a "
            "Redirect runs before the internal rewrite takes effect) and takes every path this "
            "one would",
        )
    ]


def test_in_server_configuration_an_internal_rewrite_comes_first() -> None:
    rules = parse_apache(ON + "RewriteRule ^/a$ /b [L]\nRedirect 301 /a /d\n", context="server")
    assert rules.rules[0] == {"from": "/a", "rewrite": "/b", "trailing_slash": "strict"}


CONTEXT_SKIPS: list[tuple[Context, str, str]] = [
    (
        "htaccess",
        "RewriteRule ^/old$ /new [R=301,L]",
        "in .htaccess the path a RewriteRule matches has no leading '/' ('old' for '/old'), so "
        "'^/old$' never matches; write it without the '/'",
    ),
    (
        "server",
        "RewriteRule ^old$ /new [R=301,L]",
        "in server configuration the path a RewriteRule matches starts with '/', so '^old$' "
        "never matches (that is the .htaccess form); write it with the '/'",
    ),
    (
        "server",
        "RewriteRule ^(.*)$ /new/$1 [R=301,L]",
        "in server configuration the path a RewriteRule matches starts with '/', and Waypost "
        "reads '^(.*)$' only with that '/' written out after '^'",
    ),
    (
        "htaccess",
        "RewriteRule ^old$ new [R=301,L]",
        "without a RewriteBase, Apache redirects the relative substitution 'new' to the "
        "directory's file-system path; add 'RewriteBase /' (or write the substitution with its "
        "leading '/')",
    ),
    (
        "server",
        "RewriteBase /",
        "RewriteBase only applies in .htaccess and <Directory> (Apache refuses it in server "
        "configuration)",
    ),
]


@pytest.mark.parametrize(
    ("context", "line", "reason"), CONTEXT_SKIPS, ids=[f"{c}: {t}" for c, t, _r in CONTEXT_SKIPS]
)
def test_a_rule_that_never_matches_where_the_file_sits_is_skipped(
    context: Context, line: str, reason: str
) -> None:
    result = parse_apache("# redirects\n" + ON + line + "\n", context=context)
    (skip,) = result.skipped
    assert (skip.line, skip.text, skip.reason) == (3, line, reason)
    assert skip.render(".htaccess") == f".htaccess:3: {reason}: {line!r}"


def test_without_a_context_both_forms_are_read() -> None:
    result = parse_apache(ON + "RewriteRule ^old$ /a [R]\nRewriteRule ^/new$ /b [R]\n")
    assert [rule["from"] for rule in result.rules] == ["/old", "/new"]
    assert result.format == "apache"


def test_the_file_name_htaccess_says_the_context() -> None:
    assert detect_format("site/public/.htaccess", "") == "htaccess"
    result = IMPORTERS["htaccess"](HTACCESS_FORMS[1])
    assert result.format == "htaccess"
    assert [rule["from"] for rule in result.rules] == ["/kept"]


# -- the differential test: a real Apache answers as the test says --------------------------------


@pytest.fixture(scope="module")
def apache() -> Iterator[int]:
    """A private Apache serving each configuration of CASES (host 'oN.test'), in its virtual
    host or as the .htaccess of its document root; yields its port."""
    sites: dict[str, tuple[str, str | None]] = {}
    for number, (context, text) in enumerate(CONFIGS):
        sites[f"o{number}.test"] = (text, None) if context == "server" else ("", text)
    with (
        tempfile.TemporaryDirectory(prefix="waypost-apache-") as root,
        serving_apache(Path(root), sites) as port,
    ):
        yield port


def _apache_answer(port: int, host: str, url: str) -> tuple[int, str | None]:
    response = httpx.get(f"http://127.0.0.1:{port}{url}", headers={"Host": host})
    location = response.headers.get("location")
    if response.status_code == 404 and location is None:
        return PASS
    if location is not None:
        location = re.sub(rf"^http://{re.escape(host)}(?::{port})?(?=/)", "", location)
    return response.status_code, location


@pytest.mark.parametrize(("config", "host", "url", "want"), CASES, ids=CASE_IDS)
def test_apache_answers_as_the_test_says(
    apache: int,
    config: tuple[Context, str],
    host: str | None,
    url: str,
    want: tuple[int, str | None],
) -> None:
    site = host or f"o{CONFIGS.index(config)}.test"
    assert _apache_answer(apache, site, url) == want
