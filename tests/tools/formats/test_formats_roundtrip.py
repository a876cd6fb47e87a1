"""Round trips: for what a format can express, parse_X(export_X(rules).text).rules is equivalent
to the rules (after filling in defaults and naming pattern variables by position).

The property test states the contract of every exporter at once: a rule is either reported as
unsupported, or it comes back from the importer with the same behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.engine import Engine
from waypost.rules.load import parse_rules
from waypost.tools.formats import (
    EXPORTERS,
    IMPORTERS,
    Skipped,
    export_cloudflare,
    export_rules,
    export_yaml,
    normalise_rule,
)
from waypost.tools.formats._canon import (
    Placeholder,
    Variable,
    parse_pattern_pieces,
    parse_target_pieces,
    render_target,
)


def canonical(rule: Mapping[str, Any]) -> str:
    """A comparable form: defaults filled in, variables renamed v1, v2... in pattern order."""
    out = normalise_rule(rule)
    names: dict[str, str] = {}
    pieces = []
    for piece in parse_pattern_pieces(str(out["from"])):
        if isinstance(piece, Variable):
            names[piece.name] = f"v{len(names) + 1}"
            piece = Variable(names[piece.name], piece.converter, piece.args)
            pieces.append(piece.render())
        else:
            pieces.append(piece)
    out["from"] = "".join(pieces)
    for key in ("to", "rewrite"):
        if key in out:
            target = parse_target_pieces(str(out[key]))
            out[key] = render_target(
                [
                    Placeholder(names.get(p.name, p.name)) if isinstance(p, Placeholder) else p
                    for p in target
                ]
            )
    return json.dumps(out, sort_keys=True)


def same_rules(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]]) -> bool:
    return sorted(map(canonical, left)) == sorted(map(canonical, right))


def not_duplicates(skipped: Sequence[Skipped]) -> list[Skipped]:
    """Skips other than the http/https twin line that Netlify exports for a host."""
    return [skip for skip in skipped if "once the scheme is dropped" not in skip.reason]


EXPRESSIBLE: dict[str, list[dict[str, Any]]] = {
    "netlify": [
        {"from": "/old", "to": "/new"},
        {"from": "/blog/<year>/<slug>", "to": "/posts/{year}/{slug}", "status": 302},
        {"from": "/docs/<path:rest>", "to": "https://docs.example.com/{rest}", "status": 308},
        {"from": "/app/<path:page>", "rewrite": "/index.html"},
        {
            "from": "/store",
            "to": "/shop",
            "query": "drop",
            "when": {"query": {"ref": "*", "campaign": "spring"}},
        },
        {"from": "/", "to": "/de/", "status": 302, "when": {"language": ["de", "fr"]}},
        {
            "from": "/<path:p>",
            "to": "https://new.example.com/{p}",
            "when": {"host": "old.example.com"},
        },
    ],
    "vercel": [
        {"from": "/old", "to": "/new", "status": 308, "case": "insensitive"},
        {"from": "/blog/<int:year>/<slug>.html", "to": "/posts/{year}/{slug}", "status": 301},
        {"from": "/docs/<path:rest>", "to": "/help/{rest}", "status": 307},
        {"from": "/kind/<any(a,b):kind>", "to": "/k/{kind}"},
        # Vercel's rewrites wait for a missing file, and name unused parameters in the query.
        {"from": "/app/<path:page>", "rewrite": "/index.html?page={page}", "only_if_missing": True},
        {
            "from": "/beta",
            "to": "/beta/home",
            "status": 302,
            "when": {
                "host": "www.example.com",
                "cookies": {"beta": "yes"},
                "headers": {"x-team": "*"},
                "query": {"ref": "mail"},
                "not": {"headers": {"x-preview": "*"}, "cookies": {"opt": "out"}},
            },
        },
    ],
    "cloudflare": [
        {
            "from": "/contacts",
            "to": "https://example.net/contact-us",
            "when": {"host": "example.com"},
        },
        {
            "from": "/about",
            "to": "https://example.net/about",
            "status": 302,
            "query": "drop",
            "trailing_slash": "strict",
            "when": {"host": ["example.com", "*.example.com"]},
        },
        {
            "from": "/docs/",
            "to": "https://docs.example.com/",
            "status": 308,
            "trailing_slash": "strict",
            "when": {"host": "example.com"},
        },
        {
            "from": "/docs/<path:suffix>",
            "to": "https://docs.example.com/{suffix}",
            "status": 308,
            "trailing_slash": "strict",
            "when": {"host": "example.com"},
        },
        {
            "from": "/blog",
            "to": "https://blog.example.com/",
            "trailing_slash": "strict",
            "when": {"host": "example.com"},
        },
        {
            "from": "/blog/<path:rest>",
            "to": "https://blog.example.com/",
            "when": {"host": "example.com"},
        },
    ],
    "nginx": [
        {"from": "/old", "to": "/new"},
        {"from": "/old-drop", "to": "/new", "status": 302, "query": "drop"},
        {"from": "/summer sale", "to": "/sale", "status": 307},
        {"from": "/blog/<int:year>/<slug>", "to": "/posts/{year}/{slug}", "status": 302},
        {
            "from": "/docs/<path:rest>",
            "to": "https://docs.example.com/{rest}",
            "status": 308,
            "query": "drop",
        },
        {"from": "/Shop/<uuid:item>", "to": "/shop/{item}", "case": "insensitive"},
        {"from": "/feed", "to": "/rss.xml", "trailing_slash": "ignore", "query": "drop"},
        {"from": "/app/<path:page>", "rewrite": "/index.html"},
        {"from": "/gone", "respond": 410},
        {"from": "/teapot", "respond": {"status": 418, "body": "I'm a teapot"}},
        {"from": "/x/<any(a,b):k>", "respond": 404},
    ],
    "apache": [
        {"from": "/old", "to": "/new"},
        {"from": "/blog/<int:year>/<slug>", "to": "/posts/{year}/{slug}", "status": 302},
        {
            "from": "/docs/<path:rest>",
            "to": "https://docs.example.com/{rest}",
            "status": 308,
            "query": "drop",
        },
        {"from": "/search", "to": "/find?q=all", "query": "keep"},
        {
            "from": "/category/<name>",
            "to": "/c/{name}",
            "trailing_slash": "ignore",
            "case": "insensitive",
        },
        {"from": "/feed", "rewrite": "/feed.xml"},
        {"from": "/gone", "respond": 410},
        {"from": "/private", "respond": 403},
        {"from": "/missing", "respond": 404},
        {
            "from": "/<path:p>",
            "to": "https://new.example.com/{p}",
            "when": {"host": ["old.example.com", "*.old.example.com"]},
        },
        {
            "from": "/promo",
            "to": "/sale",
            "status": 307,
            "when": {
                "query": {"ref": "*", "utm": "mail", "debug": None},
                "methods": ["GET", "HEAD"],
                "not": {"host": "staging.example.com"},
            },
        },
        {"from": "/percent", "to": "/a%20b$c"},
    ],
    "csv": [
        {"from": "/old", "to": "/new", "name": "old-to-new"},
        {"from": "/blog/<int:year>/<slug>", "to": "/posts/{year}/{slug}", "status": 302},
        {"from": "/removed", "respond": 410},
        {"from": "/a,b", "to": "/c;d"},
    ],
    "yaml": [
        {"from": "/old", "to": "/new", "name": "old"},
        {
            "from": "/teapot",
            "respond": {
                "status": 418,
                "body": "short and stout",
                "headers": {"X-Tea": "earl grey"},
            },
        },
        {
            "from": "/api/<path:rest>",
            "rewrite": "/v2/{rest}",
            "set_headers": {"X-V": "2"},
            "when": {
                "ip": ["10.0.0.0/8"],
                "after": "2024-01-01T00:00:00Z",
                "not": {"cookies": {"legacy": None}},
            },
        },
        {"from": "/healthz", "pass": True, "methods": ["GET"]},
        {"from": "/ünïcode", "to": "/unicode/{{literal}}"},
    ],
}


@pytest.mark.parametrize("fmt", sorted(EXPRESSIBLE), ids=sorted(EXPRESSIBLE))
def test_expressible_rules_survive_a_round_trip(fmt: str) -> None:
    rules = EXPRESSIBLE[fmt]
    exported = EXPORTERS[fmt](rules, None)
    assert exported.unsupported == []
    assert exported.exported == len(rules)
    imported = IMPORTERS[fmt](exported.text)
    assert not_duplicates(imported.skipped) == []
    assert same_rules(imported.rules, rules), exported.text


def test_yaml_round_trip_is_lossless_including_names_and_defaults() -> None:
    defaults = {"status": 302, "query": "drop", "trailing_slash": "ignore", "case": "insensitive"}
    exported = EXPORTERS["yaml"](EXPRESSIBLE["yaml"], defaults)
    imported = IMPORTERS["yaml"](exported.text)
    assert imported.rules == EXPRESSIBLE["yaml"]
    assert imported.defaults == defaults


def test_defaults_are_applied_to_rules_that_do_not_set_the_key() -> None:
    rules = [{"from": "/a", "to": "/b"}, {"from": "/c", "to": "/d", "status": 301}]
    exported = EXPORTERS["csv"](rules, {"status": 308})
    assert exported.text.splitlines()[1:] == ["/a,/b,308,", "/c,/d,301,"]


def test_cloudflare_host_argument_serves_rules_without_a_host() -> None:
    exported = export_cloudflare(
        [{"from": "/a", "to": "https://example.com/b"}], host="example.com"
    )
    # Cloudflare matches the slash exactly, so Waypost's default (ignore it) takes two lines.
    assert exported.text.splitlines() == [
        "example.com/a,https://example.com/b,301,TRUE,FALSE,FALSE,FALSE",
        "example.com/a/,https://example.com/b,301,TRUE,FALSE,FALSE,FALSE",
    ]


# -- property: exported means equivalent --------------------------------------------------------

_LITERAL = st.from_regex(r"[a-z0-9][a-z0-9._~-]{0,7}", fullmatch=True)
_CONVERTERS = st.sampled_from(["string", "int", "uuid", "float", "any"])


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    segments: list[str] = []
    names: list[str] = []
    for index in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            segments.append(draw(_LITERAL))
            continue
        name = f"n{index}"
        converter = draw(_CONVERTERS)
        segments.append(Variable(name, converter, "x,y" if converter == "any" else "").render())
        names.append(name)
    if draw(st.booleans()):
        segments.append(Variable("tail", "path").render())
        names.append("tail")
    pattern = "/" + "/".join(segments)
    used = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    base = draw(st.sampled_from(["/new", "https://example.org/x", "/a-b/c.d"]))
    target = base + "".join(f"/{{{name}}}" for name in used)
    rule: dict[str, Any] = {"from": pattern}
    action = draw(st.sampled_from(["to", "to", "rewrite", "respond"]))
    if action == "to":
        rule["to"] = target
        rule["status"] = draw(st.sampled_from([301, 302, 303, 307, 308]))
    elif action == "rewrite":
        rule["rewrite"] = "/" + target.split("/", 3)[-1] if target.startswith("http") else target
    else:
        rule["respond"] = draw(st.sampled_from([404, 410, 403]))
    if action != "respond" and draw(st.booleans()):
        rule["query"] = draw(st.sampled_from(["keep", "drop"]))
    if draw(st.integers(0, 2)) == 0:
        rule["trailing_slash"] = draw(st.sampled_from(["ignore", "strict"]))
    if draw(st.integers(0, 3)) == 0:
        rule["case"] = "insensitive"
    when: dict[str, Any] = {}
    if draw(st.integers(0, 2)) == 0:
        when["host"] = draw(st.sampled_from(["example.com", ["a.example", "*.a.example"]]))
    if draw(st.integers(0, 3)) == 0:
        when["query"] = {"ref": draw(st.sampled_from(["*", "mail"]))}
    if draw(st.integers(0, 4)) == 0:
        when["language"] = ["de"]
    if when:
        rule["when"] = when
    return rule


@pytest.mark.parametrize("fmt", sorted(EXPORTERS), ids=sorted(EXPORTERS))
@settings(max_examples=60, deadline=None)
@given(rule=rules())
def test_an_exported_rule_imports_back_equivalent(fmt: str, rule: dict[str, Any]) -> None:
    exported = EXPORTERS[fmt]([rule], None)
    if exported.unsupported:
        assert [item.index for item in exported.unsupported] == [0]
        assert exported.unsupported[0].reason
        return
    imported = IMPORTERS[fmt](exported.text)
    assert not_duplicates(imported.skipped) == [], exported.text
    assert same_rules(imported.rules, [rule]), exported.text


# -- the trailing slash of a path variable ------------------------------------------------------

#: What the Apache importer makes of ``Redirect 301 /blog /new``: three strict rules, the last
#: one keeping the slash a request ends with ('/blog/x/' goes to '/new/x/').
PREFIX_REDIRECT = [
    {"from": "/blog", "to": "/new", "status": 301, "trailing_slash": "strict"},
    {"from": "/blog/", "to": "/new/", "status": 301, "trailing_slash": "strict"},
    {"from": "/blog/<path:rest>", "to": "/new/{rest}", "status": 301, "trailing_slash": "strict"},
]
PREFIX_URLS = ["/blog", "/blog/", "/blog/x", "/blog/x/", "/blog/x/y/", "/blogger"]


def _answer(engine: Engine, url: str) -> tuple[str, int | None, str | None]:
    decision = engine.resolve("GET", "http://example.com" + url)
    return decision.action, decision.status, decision.location


def test_the_prefix_redirect_keeps_the_slash_in_waypost() -> None:
    engine = Engine(PREFIX_REDIRECT)
    assert _answer(engine, "/blog/x/") == ("redirect", 301, "/new/x/")
    assert _answer(engine, "/blog/x/y/") == ("redirect", 301, "/new/x/y/")


@pytest.mark.parametrize("fmt", sorted(EXPORTERS), ids=sorted(EXPORTERS))
def test_an_exported_strict_path_rule_keeps_the_trailing_slash_or_is_reported(fmt: str) -> None:
    """Each rule comes back answering as it did, or is reported as unsupported: a format that
    cannot keep the slash in '{rest}' must say so, not send '/blog/x/' to '/new/x'."""
    if fmt == "cloudflare":
        exported = export_cloudflare(PREFIX_REDIRECT, host="example.com")
    else:
        exported = EXPORTERS[fmt](PREFIX_REDIRECT, None)
    refused = {item.index for item in exported.unsupported}
    kept = [rule for index, rule in enumerate(PREFIX_REDIRECT) if index not in refused]
    imported = IMPORTERS[fmt](exported.text)
    assert not_duplicates(imported.skipped) == [], exported.text
    original, again = Engine(kept), Engine(imported.rules, defaults=imported.defaults or None)
    for url in PREFIX_URLS:
        assert _answer(again, url) == _answer(original, url), (url, exported.text)


@pytest.mark.parametrize("fmt", ["netlify", "csv"])
def test_formats_that_ignore_the_slash_report_a_strict_path_rule_that_uses_it(fmt: str) -> None:
    exported = EXPORTERS[fmt](PREFIX_REDIRECT[2:], None)
    assert [item.index for item in exported.unsupported] == [0]
    # Without the value in the target, the slash changes nothing: the rule is exported.
    rule = {"from": "/blog/<path:rest>", "to": "/new", "trailing_slash": "strict"}
    assert EXPORTERS[fmt]([rule], None).unsupported == []


# -- through the core: what the CLI does --------------------------------------------------------

DATA = Path(__file__).parents[2] / "data" / "formats"
SAMPLES = {
    "netlify": "_redirects",
    "netlify-toml": "netlify.toml",
    "vercel": "vercel.json",
    "cloudflare": "cloudflare-bulk-redirects.csv",
    "nginx": "nginx-redirects.conf",
    "apache": "apache.htaccess",
    "wordpress-csv": "wordpress-redirection.csv",
    "wordpress-json": "wordpress-redirection.json",
    "wagtail": "wagtail-redirects.csv",
    "csv": "generic-redirects.tsv",
}


@pytest.mark.parametrize("fmt", sorted(SAMPLES), ids=sorted(SAMPLES))
def test_imported_rules_load_without_errors(fmt: str) -> None:
    imported = IMPORTERS[fmt]((DATA / SAMPLES[fmt]).read_text(encoding="utf-8"))
    # As 'waypost import' writes them: with the importer's defaults and proxy hosts.
    exported = export_yaml(
        imported.rules, imported.defaults or None, proxy_hosts=imported.proxy_hosts
    )
    ruleset, errors = parse_rules(exported.text, format="yaml", file=SAMPLES[fmt])
    assert errors == []
    assert len(ruleset.rules) == len(imported.rules)


@pytest.mark.parametrize("fmt", sorted(EXPRESSIBLE), ids=sorted(EXPRESSIBLE))
def test_loaded_rules_export_and_import_back(fmt: str) -> None:
    """The CLI exports ``rule.to_mapping()`` of loaded rules; those must round-trip too."""
    text = EXPORTERS["yaml"](EXPRESSIBLE[fmt], None).text
    ruleset, errors = parse_rules(text, format="yaml", file=f"{fmt}.yaml")
    assert errors == []
    mappings = [rule.to_mapping() for rule in ruleset.rules]
    exported = EXPORTERS[fmt](mappings, dict(ruleset.defaults))
    assert exported.unsupported == []
    assert same_rules(IMPORTERS[fmt](exported.text).rules, mappings)


# -- both orders: a specificity rule set and a first-match one ------------------------------------

#: Listed so that file order and specificity decide differently on '/splat/foo/...'.
ORDERED = [
    {"from": "/splat/<path:p>", "to": "/a", "status": 302},
    {"from": "/splat/foo/<path:p>", "to": "/b", "status": 302},
    {"from": "/splat/foo/x", "to": "/c", "status": 302},
    {"from": "/other", "to": "/d", "status": 302},
]
ORDERED_URLS = ["/splat/a", "/splat/foo/y", "/splat/foo/x", "/splat/foo/x/", "/other", "/none"]
ORDERS = {"specificity": None, "first_match": {"order": "first_match"}}
ORDER_FORMATS = ["apache", "cloudflare", "csv", "netlify", "nginx", "vercel", "yaml"]


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("fmt", ORDER_FORMATS)
def test_import_of_export_decides_the_same_in_both_orders(fmt: str, order: str) -> None:
    defaults = ORDERS[order]
    exported = export_rules(fmt, ORDERED, defaults, host="example.com")
    refused = {item.index for item in exported.unsupported}
    kept = [rule for index, rule in enumerate(ORDERED) if index not in refused]
    assert kept
    imported = IMPORTERS[fmt](exported.text)
    original = Engine(kept, defaults=defaults)
    again = Engine(imported.rules, defaults=imported.defaults or None)
    for url in ORDERED_URLS:
        assert _answer(again, url) == _answer(original, url), (url, exported.text)


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_first_match_formats_write_the_order_waypost_decides_in(order: str) -> None:
    defaults = ORDERS[order]
    exported = EXPORTERS["apache"](ORDERED, defaults)
    froms = [line.split()[1] for line in exported.text.splitlines() if line.startswith("Rewrite")]
    froms = [f for f in froms if f != "On"]
    if order == "first_match":
        assert froms == ["^splat/(.+?)/?$", "^splat/foo/(.+?)/?$", "^splat/foo/x/?$", "^other/?$"]
    else:  # exact paths first, then the more specific pattern
        assert froms == ["^splat/foo/x/?$", "^other/?$", "^splat/foo/(.+?)/?$", "^splat/(.+?)/?$"]


def test_csv_refuses_a_first_match_rule_specificity_would_try_too_early() -> None:
    exported = EXPORTERS["csv"](ORDERED, {"order": "first_match"})
    assert [item.index for item in exported.unsupported] == [1, 2]
    assert "specificity order" in exported.unsupported[0].reason
    assert EXPORTERS["csv"](ORDERED, None).unsupported == []


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("fmt", ["apache", "nginx", "yaml"])
def test_export_import_export_writes_the_same_file(fmt: str, order: str) -> None:
    first = EXPORTERS[fmt](ORDERED, ORDERS[order])
    imported = IMPORTERS[fmt](first.text)
    second = EXPORTERS[fmt](imported.rules, imported.defaults or None)
    assert second.text == first.text


# -- proxy rules: a rewrite to another origin ---------------------------------------------------

PROXIES = [
    {
        "from": "/api/<path:rest>",
        "rewrite": "https://api.example.com/v1/{rest}",
        "only_if_missing": True,
    },
    {"from": "/docs", "rewrite": "https://docs.example.org:8443/", "only_if_missing": True},
    {"from": "/status", "rewrite": "/health.json", "only_if_missing": True},
]
PROXY_URLS = ["/api/x", "/api/x/y?q=1", "/docs", "/docs/?a=b", "/status", "/none"]


@pytest.mark.parametrize("fmt", ["netlify", "vercel"])
def test_proxy_rules_come_back_proxying_to_the_same_origin(fmt: str) -> None:
    exported = EXPORTERS[fmt](PROXIES, None)
    assert exported.unsupported == []
    imported = IMPORTERS[fmt](exported.text)
    assert not_duplicates(imported.skipped) == []
    assert sorted(imported.proxy_hosts) == ["api.example.com", "docs.example.org"]
    original = Engine(PROXIES, proxy_hosts=["api.example.com", "docs.example.org"])
    again = Engine(
        imported.rules, defaults=imported.defaults or None, proxy_hosts=imported.proxy_hosts
    )
    for url in PROXY_URLS:
        for stage in ("all", "before"):  # with and without a file at the path
            want = original.resolve("GET", "http://example.com" + url, stage=stage)
            got = again.resolve("GET", "http://example.com" + url, stage=stage)
            assert got.describe(detail=False) == want.describe(detail=False), (url, stage)


@pytest.mark.parametrize("fmt", ["csv", "nginx"])
def test_a_first_match_rule_that_never_applies_is_reported_where_one_rule_per_path_fits(
    fmt: str,
) -> None:
    rules = [
        {"from": "/a", "to": "/b"},
        {"from": "/a", "to": "/c"},
        {"from": "/x/<p>", "to": "/y"},
        {"from": "/x/<q>", "to": "/z"},
    ]
    exported = EXPORTERS[fmt](rules, {"order": "first_match"})
    assert [item.index for item in exported.unsupported] == [1, 3]
    assert "never applies in 'order: first_match'" in exported.unsupported[0].reason
    assert exported.exported == 2
