"""The dumpdata importer reads django.contrib.redirects and Wagtail redirect rows as each app's
middleware answers them: after a 404, without the query, per site."""

from __future__ import annotations

import json
from typing import Any

import pytest

from waypost.engine import Engine
from waypost.tools.formats import IMPORTERS, detect_format


def dump(*rows: dict[str, Any]) -> str:
    return json.dumps(list(rows), indent=2)


def starts(text: str) -> list[int]:
    """The line numbers on which json.dumps(indent=2) starts each row."""
    return [number for number, line in enumerate(text.splitlines(), 1) if line == "  {"]


def django_row(pk: int, old: str, new: str, site: int = 1) -> dict[str, Any]:
    return {
        "model": "redirects.redirect",
        "pk": pk,
        "fields": {"site": site, "old_path": old, "new_path": new},
    }


def site_row(pk: int, domain: str) -> dict[str, Any]:
    return {"model": "sites.site", "pk": pk, "fields": {"domain": domain, "name": domain}}


def wagtail_row(pk: int, old: str, **fields: Any) -> dict[str, Any]:
    base = {"old_path": old, "site": None, "is_permanent": True, "redirect_page": None}
    return {"model": "wagtailredirects.redirect", "pk": pk, "fields": {**base, **fields}}


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        (
            django_row(1, "/old/", "/new/"),
            {
                "from": "/old",
                "to": "/new/",
                "status": 301,
                "query": "drop",
                "only_if_missing": True,
            },
        ),
        (django_row(1, "/gone/", ""), {"from": "/gone", "respond": 410, "only_if_missing": True}),
        (
            django_row(1, "/search/?q=x", "/find/{x}"),
            {
                "from": "/search",
                "to": "/find/{{x}}",
                "status": 301,
                "query": "drop",
                "only_if_missing": True,
                "when": {"query": {"q": "x"}},
            },
        ),
        (
            wagtail_row(1, "/temp", is_permanent=False, redirect_link="https://example.org/"),
            {
                "from": "/temp",
                "to": "https://example.org/",
                "status": 302,
                "query": "drop",
                "only_if_missing": True,
            },
        ),
    ],
    ids=["django-301", "django-410-gone", "query-and-braces", "wagtail-link"],
)
def test_a_row_reads_as_its_app_answers_it(row: dict[str, Any], rule: dict[str, Any]) -> None:
    result = IMPORTERS["django-redirects"](dump(row))
    assert (result.rules, result.skipped, result.notes) == ([rule], [], [])


def test_rows_of_several_sites_get_their_sites_host() -> None:
    result = IMPORTERS["django-redirects"](
        dump(
            site_row(1, "example.com"),
            site_row(2, "Shop.example.com:8000"),
            django_row(1, "/a", "/b", site=1),
            django_row(2, "/a", "/c", site=2),
        )
    )
    assert [rule["when"] for rule in result.rules] == [
        {"host": "example.com"},
        {"host": "shop.example.com"},
    ]
    engine = Engine(result.rules)
    decision = engine.resolve("GET", "http://shop.example.com/a", stage="missing")
    assert decision.location == "/c"


def test_a_site_the_dump_does_not_describe_is_a_note() -> None:
    text = dump(site_row(1, "example.com"), django_row(1, "/a", "/b"), django_row(2, "/x", "/y", 7))
    result = IMPORTERS["django-redirects"](text)
    assert "when" not in result.rules[1]
    (note,) = result.notes
    assert (note.line, note.text) == (starts(text)[2], '"/x"')
    assert "site 7, which the dump does not describe" in note.message


def test_a_wagtail_page_target_is_its_path_below_the_site_root() -> None:
    result = IMPORTERS["django-redirects"](
        dump(
            {"model": "wagtailcore.page", "pk": 3, "fields": {"url_path": "/home/"}},
            {"model": "wagtailcore.page", "pk": 5, "fields": {"url_path": "/home/about/"}},
            {"model": "wagtailcore.site", "pk": 1, "fields": {"hostname": "x", "root_page": 3}},
            wagtail_row(1, "/about-us", redirect_page=5),
            wagtail_row(2, "/team", redirect_page=9),
        )
    )
    assert result.rules[0]["to"] == "/about/"
    (skip,) = result.skipped
    assert "Wagtail page 9, which the dump does not hold" in skip.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{}", "expected the list 'manage.py dumpdata' writes"),
        ("[", "invalid JSON, nothing imported"),
        (dump(site_row(1, "a.example")), "the dump holds no redirects.redirect"),
        (dump(django_row(1, "", "/b")), "the row has no old_path"),
        (dump(wagtail_row(1, "/a")), "the redirect has neither a link nor a page"),
    ],
    ids=["not-a-list", "not-json", "no-redirects", "no-old-path", "wagtail-no-target"],
)
def test_what_is_not_imported_says_why(text: str, reason: str) -> None:
    result = IMPORTERS["django-redirects"](text)
    assert result.rules == []
    assert reason in result.skipped[0].reason


def test_skips_name_the_line_of_their_row() -> None:
    text = dump(django_row(1, "/a", "/b"), django_row(2, "", "/c"))
    (skip,) = IMPORTERS["django-redirects"](text).skipped
    assert skip.line == starts(text)[1]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([django_row(1, "/a", "/b")], "django-redirects"),
        ([wagtail_row(1, "/a", redirect_link="/b")], "django-redirects"),
        ([site_row(1, "example.com")], None),
    ],
    ids=["django", "wagtail", "other-models"],
)
def test_a_dumpdata_file_is_detected(rows: list[dict[str, Any]], expected: str | None) -> None:
    assert detect_format("dump.json", dump(*rows)) == expected
