"""Exports never turn a rule into an open redirect: what each exporter writes for a target whose
host or leading path comes from the request, and why it refuses what it cannot constrain.

The real-server side (nginx, Apache, every payload of the corpus) is
tests/tools/test_export_safety_servers.py; Vercel cannot be run here, so its sources are matched
below as path-to-regexp matches them (``vercel_match``), against the corpus too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.test_security import PAYLOADS, browser_destination, needs_corpus
from waypost.engine import Engine
from waypost.tools.formats import (
    EXPORTERS,
    IMPORTERS,
    export_apache,
    export_cloudflare,
    export_csv,
    export_netlify,
    export_nginx,
    export_vercel,
)
from waypost.tools.formats._common import Refusal
from waypost.tools.formats._safety import HostSlot, exposure, host_regex
from waypost.tools.formats.vercel import _PARAM

ALLOWED = ["*.example.org", "www.whitelisteddomain.tld"]
GO = {"from": "/go/<path:to>", "to": "/{to}"}
OUT = {"from": "/out/<site>/<path:rest>", "to": "https://{site}/{rest}"}
SUB = {"from": "/h/<h>", "to": "https://{h}.example.org/"}
DOCS = {"from": "/docs/<path:rest>", "to": "https://docs.example.com/{rest}"}

# -- where a value lands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "host", "lead"),
    [
        ("/{to}", None, "to"),
        ("/{a}/{b}", None, "a"),
        ("/a/{x}", None, None),
        ("/a{x}", None, None),
        ("/?q={x}", None, None),
        ("https://example.com/{x}", None, None),
        ("https://{site}/{rest}", HostSlot("site", "", ""), None),
        ("https://{sub}.Example.org:8443/", HostSlot("sub", "", ".example.org"), None),
        ("http://www.{d}./", HostSlot("d", "www.", ""), None),
    ],
    ids=[
        "path",
        "first-of-two",
        "after-text",
        "glued",
        "query",
        "literal-host",
        "host",
        "label-and-port",
        "prefix-and-dot",
    ],
)
def test_exposure_finds_the_host_and_the_leading_placeholder(
    target: str, host: HostSlot | None, lead: str | None
) -> None:
    found = exposure(target)
    assert (found.host, found.lead) == (host, lead)


@pytest.mark.parametrize(
    "target", ["https://{a}.{b}/", "https://x{a}.example.org/", "https://{a}x.org/"]
)
def test_a_host_no_export_can_check_is_refused(target: str) -> None:
    with pytest.raises(Refusal, match=r"placeholder|labels of the host"):
        exposure(target)


# -- which host values are allowed -------------------------------------------------------------

HOSTS = [
    # (slot, allowed hosts, values that match, values that must not)
    (
        HostSlot("s", "", ""),
        ALLOWED,
        ["docs.example.org", "A.B.Example.ORG", "www.whitelisteddomain.tld", "x-1.example.org"],
        [
            "example.org",
            "evil.com",
            "example.org.evil.com",
            "docs.example.org.",
            "evil.com/.example.org",
            "a@b.example.org",
            "docs.example.org:80",
            "-a.example.org",
            "a_b.example.org",
            "docs.example.org\r\nX: y",
            "whitelisteddomain.tld",
            "",
        ],
    ),
    (
        HostSlot("s", "", ".example.org"),
        ["*.example.org"],
        ["a", "a.b", "A-1"],
        ["", "a.", ".a", "a/b", "a@evil.com", "a:1", "a\n"],
    ),
    (HostSlot("s", "", ".example.org"), ["example.org"], [], []),
    (HostSlot("s", "www.", ""), ["*.example.org"], ["example.org", "a.example.org"], ["org"]),
    (HostSlot("s", "", ".org"), ["*.example.org"], ["a.example", "A.Example"], ["example", "a"]),
    (
        HostSlot("s", "", ""),
        ["shop.example.com"],
        ["shop.example.com", "SHOP.example.com"],
        ["shop.example.com.evil", "example.com"],
    ),
]


@pytest.mark.parametrize(("slot", "allowed", "good", "bad"), HOSTS)
def test_host_regex_matches_exactly_the_allowed_hosts(
    slot: HostSlot, allowed: list[str], good: list[str], bad: list[str]
) -> None:
    if not good:
        with pytest.raises(Refusal, match="no host in allowed_hosts"):
            host_regex(slot, allowed, "nginx")
        return
    regex = re.compile(host_regex(slot, allowed, "nginx"))
    assert [value for value in good if not regex.fullmatch(value)] == []
    assert [value for value in bad if regex.fullmatch(value)] == []


def test_host_regex_needs_allowed_hosts() -> None:
    with pytest.raises(Refusal, match="no allowed_hosts were given to the export"):
        host_regex(HostSlot("site", "", ""), [], "nginx")


# -- the regex formats: what they write --------------------------------------------------------


def _server_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("location ~")]


def test_nginx_narrows_every_capture_a_target_uses() -> None:
    exported = export_nginx([GO, SUB, DOCS], allowed_hosts=ALLOWED)
    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    # A path value holds only what Waypost writes unencoded (nginx writes it as it is), which
    # leaves out the control characters too; in Waypost's priority order ('docs' is longer).
    kept = (
        r"[\x21\x24\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x2f0123456789\x3a\x3b\x3d\x40"
        r"ABCDEFGHIJKLMNOPQRSTUVWXYZ\x5fabcdefghijklmnopqrstuvwxyz\x7e]"
    )
    assert _server_lines(exported.text) == [
        rf"location ~ ^/docs/(?<rest>{kept}+?)/?$ "
        "{ return 301 https://docs.example.com/$rest$is_args$args; }",
        rf"location ~ ^/go/(?<to>(?![/\x5c]){kept}+?)/?$ "
        "{ return 301 /$to$is_args$args; }",
        rf"location ~ ^/h/(?<h>{label}(?:\.{label})*)/?$ "
        "{ return 301 https://$h.example.org/$is_args$args; }",
    ]


def test_apache_narrows_the_host_and_the_leading_value() -> None:
    exported = export_apache([GO, OUT], allowed_hosts=["docs.example.org"])
    rules = [line for line in exported.text.splitlines() if line.startswith("RewriteRule")]
    flags = "[R=301,B,BNE=/!$&'()*+;=:@-.~,BNP,NE,L]"
    assert rules == [
        rf"RewriteRule ^out/([dD][oO][cC][sS]\.[eE][xX][aA][mM][pP][lL][eE]\.[oO][rR][gG])/(.+?)/?$"
        f" https://$1/$2 {flags}",
        rf"RewriteRule ^go/((?![/\x5c]).+?)/?$ /$1 {flags}",
    ]


@pytest.mark.parametrize("fmt", ["nginx", "apache", "vercel"])
def test_a_host_placeholder_without_an_allowed_host_is_unsupported(fmt: str) -> None:
    platform = {"nginx": "nginx", "apache": "Apache", "vercel": "Vercel"}[fmt]
    assert [item.reason for item in EXPORTERS[fmt]([OUT], None).unsupported] == [
        "{site} fills in the target's host ({site}) and no allowed_hosts were given to the "
        f"export: {platform} would redirect to any host the request names, where Waypost "
        "answers 400 unless the host is in allowed_hosts"
    ]
    exporter: Any = EXPORTERS[fmt]
    assert [
        item.reason
        for item in exporter([SUB], None, allowed_hosts=["docs.example.com"]).unsupported
    ] == [
        "{h} fills in the target's host ({h}.example.org), and no host in allowed_hosts "
        f"['docs.example.com'] can be made with it: {platform} would redirect to any host the "
        "request names, where Waypost answers 400"
    ]


def test_an_any_variable_in_the_host_keeps_only_the_allowed_words() -> None:
    rule = {"from": "/l/<any(docs.example.org,evil.com):lang>", "to": "https://{lang}/"}
    exported = export_nginx([rule], allowed_hosts=ALLOWED)
    assert r"(?<lang>docs\.example\.org)/?$" in exported.text
    rule = {"from": "/l/<any(evil.com,x.net):lang>", "to": "https://{lang}/"}
    assert "no word of <any(evil.com,x.net):lang>" in (
        export_nginx([rule], allowed_hosts=ALLOWED).unsupported[0].reason
    )


@pytest.mark.parametrize("fmt", ["nginx", "apache", "vercel"])
def test_guarded_exports_import_back_as_the_same_rules(fmt: str) -> None:
    rules = [
        GO,
        {"from": "/r/<to>", "to": "/{to}", "status": 302},
        {"from": "/s/<path:to>", "rewrite": "/{to}", "trailing_slash": "strict"},
        DOCS,
    ]
    if fmt == "vercel":  # Vercel's rewrites wait for a missing file
        rules[2] = {**rules[2], "only_if_missing": True}
    exporter: Any = EXPORTERS[fmt]
    exported = exporter(rules, None, allowed_hosts=ALLOWED)
    assert exported.unsupported == []
    back = IMPORTERS[fmt](exported.text)
    assert [skip.reason for skip in back.skipped if "same rule" not in skip.reason] == []
    original, again = Engine(rules), Engine(back.rules, defaults=back.defaults)
    for url in ["/go/a/b", "/go/a/b/", "/r/x", "/s/a/b/", "/docs/a/"]:
        first, second = original.resolve("GET", url), again.resolve("GET", url)
        assert (first.action, first.location, first.path) == (
            second.action,
            second.location,
            second.path,
        ), (url, exported.text)


# -- Vercel: the sources matched as path-to-regexp (6.x) matches them ---------------------------


def vercel_match(source: str, path: str) -> dict[str, str] | None:
    """The parameters path-to-regexp gives for ``path`` (strict, case-sensitive), or None."""
    out, names, pos = [], [], 0
    default = r"[^/#?]+?"
    for param in _PARAM.finditer(source):
        literal = source[pos : param.start()]
        name, regex, modifier = param.groups()
        prefix = "/" if literal.endswith("/") else ""
        out.append(re.escape(literal[: len(literal) - len(prefix)]))
        body = regex or default
        # '+' repeats the parameter, each repetition after the prefix again.
        inner = f"(?:{body})(?:{re.escape(prefix)}(?:{body}))*" if modifier == "+" else body
        out.append(f"(?:{re.escape(prefix)}({inner}))")
        names.append(name)
        pos = param.end()
    out.append(re.escape(source[pos:]))
    found = re.fullmatch("".join(out), path)
    return None if found is None else dict(zip(names, found.groups(), strict=True))


def vercel_destinations(entry: dict[str, Any], path: str) -> list[str]:
    """Where ``entry`` sends ``path``: its values as matched and percent-decoded (Vercel does
    not document which it writes), for the path as sent and decoded (nor which it matches)."""
    out = []
    for seen in dict.fromkeys([path, unquote(path, errors="surrogateescape")]):
        params = vercel_match(entry["source"], seen)
        if params is None:
            continue
        for decode in (False, True):
            destination = entry["destination"]
            for name in sorted(params, key=len, reverse=True):
                value = unquote(params[name]) if decode else params[name]
                destination = destination.replace(f":{name}", value)
            out.append(destination)
    return out


def _vercel_problem(destination: str) -> str | None:
    if re.search(r"[\x00-\x1f\x7f]", destination):
        return "control character"
    scheme, host = browser_destination(destination)
    if scheme is None:
        return None
    if (
        scheme == "https"
        and host is not None
        and (host == "www.whitelisteddomain.tld" or (host.endswith(".example.org")))
    ):
        return None
    return f"{scheme} {host}"


def test_the_vercel_emulation_matches_as_path_to_regexp_does() -> None:
    assert vercel_match("/a/:x/:y+", "/a/b/c/d") == {"x": "b", "y": "c/d"}
    assert vercel_match("/a/:x", "/a/b/c") is None
    assert vercel_match("/a/:x(\\d+)", "/a/12") == {"x": "12"}


@needs_corpus
def test_no_corpus_payload_leads_off_site_through_a_vercel_export() -> None:
    rules = [
        GO,
        {"from": "/r/<to>", "to": "/{to}"},
        OUT,
        {**GO, "from": "/g/<path:to>", "trailing_slash": "strict"},
    ]
    entries = json_entries(export_vercel(rules, allowed_hosts=ALLOWED).text)
    failures = []
    for payload in PAYLOADS:
        for spelled in (payload.text, quote(payload.text, safe="", errors="surrogateescape")):
            for prefix, suffix in (("/go/", ""), ("/r/", ""), ("/g/", ""), ("/out/", "/x")):
                path = prefix + spelled + suffix
                for entry in entries:
                    for destination in vercel_destinations(entry, path):
                        problem = _vercel_problem(destination)
                        if problem:
                            failures.append(f"{path!r} -> {destination!r}: {problem}")
    assert failures == []


def json_entries(text: str) -> list[dict[str, Any]]:
    import json

    document = json.loads(text)
    return [*document.get("redirects", []), *document.get("rewrites", [])]


def test_vercel_still_sends_allowed_values() -> None:
    entries = json_entries(export_vercel([GO, OUT], allowed_hosts=ALLOWED).text)
    # In Waypost's priority order: '/out/...' (the longer first segment) before '/go/...'.
    assert vercel_destinations(entries[1], "/go/docs/start")[0] == "/docs/start"
    assert vercel_destinations(entries[0], "/out/Docs.example.org/a/b")[0] == (
        "https://Docs.example.org/a/b"
    )


# -- the formats that cannot constrain a value ---------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            GO,
            "{to} starts the target's path: Netlify cannot refuse a value that leads off-site "
            "(a value starting with '/' or '\\' makes '//host' or '/\\host', another site to a "
            "browser; Waypost never sends one)",
        ),
        (
            {"from": "/go/<path:to>", "rewrite": "/{to}"},
            "{to} starts the target's path: Netlify cannot refuse a value that leads off-site "
            "(a value starting with '/' or '\\' makes '//host' or '/\\host', another site to a "
            "browser; Waypost never sends one)",
        ),
        (
            OUT,
            "{site} fills in the target's host ({site}): Netlify cannot refuse a value that "
            "leads off-site (Waypost answers 400 unless the host is in allowed_hosts)",
        ),
        (
            SUB,
            "{h} fills in the target's host ({h}.example.org): Netlify cannot refuse a value "
            "that leads off-site (Waypost answers 400 unless the host is in allowed_hosts)",
        ),
    ],
    ids=["redirect-path", "rewrite-path", "host", "host-label"],
)
def test_netlify_reports_a_value_that_could_lead_off_site(
    rule: dict[str, Any], reason: str
) -> None:
    assert [item.reason for item in export_netlify([rule]).unsupported] == [reason]
    assert export_netlify([DOCS]).unsupported == []  # after a literal origin: any value is fine


def test_cloudflare_never_merges_a_suffix_that_starts_the_path() -> None:
    rules = [
        {"from": "/go/", "to": "/", "trailing_slash": "strict", "when": {"host": "a.com"}},
        {
            "from": "/go/<path:rest>",
            "to": "/{rest}",
            "trailing_slash": "strict",
            "when": {"host": "a.com"},
        },
    ]
    exported = export_cloudflare(rules)
    assert exported.text.splitlines() == ["a.com/go/,/,301,TRUE,FALSE,FALSE,FALSE"]
    assert [(item.index, item.reason) for item in exported.unsupported] == [
        (
            1,
            "{rest} starts the target's path: Cloudflare cannot refuse a value that leads "
            "off-site (a value starting with '/' or '\\' makes '//host' or '/\\host', another "
            "site to a browser; Waypost never sends one)",
        )
    ]
    glued = [
        {**rules[0], "to": "https://example.com"},
        {**rules[1], "to": "https://example.com{rest}"},
    ]
    assert "labels of the host" in export_cloudflare(glued).unsupported[0].reason


def test_csv_keeps_a_leading_value_for_waypost_to_check_but_not_a_host() -> None:
    exported = export_csv([GO, OUT])
    assert exported.text.splitlines()[1:] == ["/go/<path:to>,/{to},301,"]
    assert [item.reason for item in exported.unsupported] == [
        "{site} fills in the target's host ({site}), and the CSV has no place for "
        "allowed_hosts: Waypost would refuse every host"
    ]
    # Read back, Waypost refuses what would leave the site.
    engine = Engine(IMPORTERS["csv"](exported.text).rules)
    assert engine.resolve("GET", "/go/%5Cevil.com").location == "/%5Cevil.com"
    # '//' never reaches the rule: the engine sends the path to its normal form first.
    decision = engine.resolve("GET", "/go//evil.com")
    assert (decision.status, decision.location, decision.rule) == (308, "/go/evil.com", None)
