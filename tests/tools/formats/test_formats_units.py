"""The helpers under the importers: reading text, converting regexes, reports, detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.tools.formats import (
    EXPORTERS,
    IMPORTERS,
    ExportNote,
    ExportResult,
    ImportResult,
    Note,
    Skipped,
    Unsupported,
    detect_format,
    export_yaml,
    normalise_rule,
)
from waypost.tools.formats._regex import RegexNotSupported, convert_regex, pattern_regex
from waypost.tools.formats._text import clean_text, parse_bool, read_csv_rows, sniff_delimiter

# -- text ---------------------------------------------------------------------------------------


def test_clean_text_drops_the_bom_and_normalises_line_endings() -> None:
    assert clean_text("\ufeffa\r\nb\rc\n") == "a\nb\nc\n"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("from,to,status\n/a,/b,301\n", ","),
        ("from;to;status\n/a;/b;301\n", ";"),
        ("from\tto\tstatus\n/a\t/b\t301\n", "\t"),
        ("from|to\n/a|/b\n", "|"),
        ('"a,b";c\n"d,e";f\n', ";"),
        ("# comment, with, commas\nfrom;to\n/a;/b\n", ";"),
        ("/only-one-column\n", ","),
    ],
    ids=["comma", "semicolon", "tab", "pipe", "quoted-commas", "comment-ignored", "one-column"],
)
def test_sniff_delimiter(text: str, delimiter: str) -> None:
    assert sniff_delimiter(text) == delimiter


def test_csv_rows_keep_the_line_where_a_multi_line_row_starts() -> None:
    text = '\ufeffa,b\r\n\r\n# note\r\n"multi\r\nline",x\r\nlast,y\r\n'
    rows = read_csv_rows(text)
    assert [(line, fields) for line, _raw, fields in rows] == [
        (1, ["a", "b"]),
        (4, ["multi\nline", "x"]),
        (6, ["last", "y"]),
    ]
    assert rows[1][1] == '"multi\nline",x'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TRUE", True),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("FALSE", False),
        ("", False),
        ("0", False),
        ("maybe", None),
    ],
)
def test_parse_bool(value: str, expected: bool | None) -> None:
    assert parse_bool(value) is expected


@settings(max_examples=50, deadline=None)
@given(
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    rows=st.lists(
        st.lists(st.from_regex(r"/[a-z0-9,;|-]{0,6}", fullmatch=True), min_size=3, max_size=3),
        min_size=1,
        max_size=5,
    ),
)
def test_quoted_csv_reads_back_whatever_the_delimiter(
    delimiter: str, rows: list[list[str]]
) -> None:
    text = "\r\n".join(delimiter.join(f'"{cell}"' for cell in row) for row in rows)
    assert [fields for _line, _raw, fields in read_csv_rows(text, delimiter)] == rows


# -- regexes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regex", "relative", "patterns", "optional_slash"),
    [
        ("^/old$", False, ["/old"], False),
        ("^old/?$", True, ["/old"], True),
        ("^/?old$", True, ["/old"], False),
        ("^/old/(.*)$", False, ["/old/<path:p1>", "/old/"], False),
        ("^/old/(.+)", False, ["/old/<path:p1>"], False),
        (r"^/blog/(\d+)/([^/]+)$", False, ["/blog/<int:p1>/<p2>"], False),
        (r"^/(?<lang>de|fr)/(?P<page>[^/]+)$", False, ["/<any(de,fr):lang>/<page>"], False),
        (r"^/v/(\d+\.\d+)$", False, ["/v/<float:p1>"], False),
        (r"^/shop/item\-(\d+)\.html$", False, ["/shop/item-<int:p1>.html"], False),
        ("^/about.html$", False, ["/about.html"], False),
        ("^/files/.*$", False, ["/files/<path:rest>", "/files/"], False),
    ],
    ids=[
        "literal",
        "optional-slash",
        "optional-leading-slash",
        "star-group",
        "plus-unanchored",
        "int-and-segment",
        "named-groups",
        "float",
        "escapes",
        "bare-dot",
        "non-capturing-tail",
    ],
)
def test_convert_regex(
    regex: str, relative: bool, patterns: list[str], optional_slash: bool
) -> None:
    converted = convert_regex(regex, relative=relative)
    assert [pattern for pattern, _ in converted.variants()] == patterns
    assert converted.optional_slash is optional_slash


@pytest.mark.parametrize(
    ("regex", "reason"),
    [
        (
            "/old",
            "regex '/old' is not anchored with '^', so it also matches in the middle of a path",
        ),
        (
            "^/old",
            "regex '^/old' is not anchored with '$', so it matches every path that begins "
            "the same way; end it with '$' or '(.*)$'",
        ),
        (
            "^/p/([a-z]+)$",
            "the group ([a-z]+) in regex '^/p/([a-z]+)$' has no Waypost converter "
            "(supported: (.*), (.+), ([^/]+), (\\d+) and (a|b|c))",
        ),
        (
            "^/img/(.*)\\.png$",
            "regex '^/img/(.*)\\\\.png$' has text after a (.*) group; Waypost's "
            "path variable must end the pattern",
        ),
        (
            "^/old(.*)$",
            "regex '^/old(.*)$' captures (.*) in the middle of a path segment; "
            "Waypost's path variable must start a segment",
        ),
        (
            "^/20[0-9]{2}/x$",
            "regex '^/20[0-9]{2}/x$' uses '[' outside a supported group; Waypost "
            "patterns match literal text",
        ),
        (
            "^/a|^/b$",
            "regex '^/a|^/b$' uses '|' outside a supported group; Waypost patterns match "
            "literal text",
        ),
        ("^/(x)?$", "regex '^/(x)?$' repeats or makes optional a group ('?')"),
        ("^old$", "regex '^old$' never matches: request paths begin with '/'"),
    ],
    ids=[
        "unanchored",
        "prefix",
        "charset",
        "suffix-after-path",
        "mid-segment",
        "quantifier",
        "alternation",
        "optional-group",
        "no-slash",
    ],
)
def test_unconvertible_regexes_are_refused_with_the_regex_quoted(regex: str, reason: str) -> None:
    with pytest.raises(RegexNotSupported) as caught:
        convert_regex(regex)
    assert str(caught.value) == reason


_SEGMENT = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,6}", fullmatch=True),
    st.sampled_from(["<a>", "<int:b>", "<float:c>", "<uuid:d>", "<any(x,y.z):e>"]),
)


@settings(max_examples=100, deadline=None)
@given(
    segments=st.lists(_SEGMENT, max_size=5, unique=True),
    tail=st.booleans(),
    named=st.booleans(),
)
def test_pattern_regex_converts_back_to_the_pattern(
    segments: list[str], tail: bool, named: bool
) -> None:
    pattern = "/" + "/".join([*segments, "<path:f>"] if tail else segments)
    regex, names = pattern_regex(pattern, named=named)
    converted = convert_regex(regex)
    back = converted.variants()[0][0]
    if named:
        assert back == pattern
    else:
        assert len(converted.refs) == len(names)


# -- reports ------------------------------------------------------------------------------------


def test_import_summary_and_skip_rendering() -> None:
    result = ImportResult(
        rules=[{"from": "/a", "to": "/b"}],
        skipped=[Skipped(7, "/x  /y  999", "status 999 is not a redirect")],
        format="netlify",
        notes=[Note(2, "/a /b", "assumed 301")],
    )
    assert result.summary("_redirects") == (
        "1 imported, 1 skipped, 1 note\n"
        "_redirects:2: note: assumed 301: '/a /b'\n"
        "_redirects:7: status 999 is not a redirect: '/x  /y  999'"
    )
    assert ImportResult([], [], "csv").summary() == "0 imported, 0 skipped"


def test_export_summary_names_each_unsupported_rule() -> None:
    result = ExportResult(
        "", [Unsupported(2, {"from": "/c", "pass": True}, "cannot express 'pass'")], 2
    )
    assert (
        result.summary() == "2 exported, 1 unsupported\nrule 3 (from '/c'): cannot express 'pass'"
    )


def test_export_summary_lists_notes_and_unsupported_rules_in_rule_order() -> None:
    result = ExportResult(
        "",
        [Unsupported(2, {"from": "/c", "pass": True}, "cannot express 'pass'")],
        2,
        [ExportNote(0, {"from": "/a/<x>", "to": "/b/{x}"}, "a ',' in {x} is sent as %2C")],
    )
    assert result.summary() == (
        "2 exported, 1 unsupported, 1 note\n"
        "rule 1 (from '/a/<x>'): note: a ',' in {x} is sent as %2C\n"
        "rule 3 (from '/c'): cannot express 'pass'"
    )


def test_normalise_rule_fills_defaults_and_evens_out_spellings() -> None:
    rule = {"from": "/a/", "to": "/b", "name": "x", "when": {"host": "A.example", "query": {}}}
    assert normalise_rule(rule) == {
        "from": "/a",
        "to": "/b",
        "status": 301,
        "query": "keep",
        "trailing_slash": "ignore",
        "case": "sensitive",
        "only_if_missing": False,
        "when": {"host": ["a.example"]},
    }
    strict = normalise_rule({"from": "/a/", "rewrite": "/b"}, {"trailing_slash": "strict"})
    assert strict == {
        "from": "/a/",
        "rewrite": "/b",
        "query": "keep",
        "trailing_slash": "strict",
        "case": "sensitive",
        "only_if_missing": False,
    }
    assert normalise_rule({"from": "/a", "respond": {"status": 410}})["respond"] == 410


def test_normalise_rule_keeps_the_slash_option_of_a_path_variable_the_target_uses() -> None:
    # Strict, '/a/<path:p>' on '/a/b/' gives p='b/'; ignoring the slash gives 'b'.
    used = {"from": "/a/<path:p>", "to": "/b/{p}"}
    assert normalise_rule(used) != normalise_rule({**used, "trailing_slash": "strict"})
    unused = {"from": "/a/<path:p>", "to": "/b"}
    assert normalise_rule(unused) == normalise_rule({**unused, "trailing_slash": "strict"})
    gone = {"from": "/a/<path:p>", "respond": 410}
    assert normalise_rule(gone) == normalise_rule({**gone, "trailing_slash": "strict"})


# -- registry -----------------------------------------------------------------------------------


def test_registry_names() -> None:
    assert sorted(IMPORTERS) == sorted(
        [
            "netlify",
            "netlify-toml",
            "vercel",
            "cloudflare",
            "cloudflare-pages",
            "nginx",
            "apache",
            "htaccess",
            "wordpress-csv",
            "wordpress-json",
            "django-redirects",
            "wagtail",
            "csv",
            "yaml",
        ]
    )
    assert sorted(EXPORTERS) == sorted(
        ["netlify", "vercel", "cloudflare", "nginx", "apache", "csv", "yaml"]
    )


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        ("site/_redirects", "/a /b 301\n", "netlify"),
        ("netlify.toml", "[[redirects]]\nfrom='/a'\n", "netlify-toml"),
        ("config/settings.toml", "[[redirects]]\n", "netlify-toml"),
        ("vercel.json", "{}", "vercel"),
        ("public/.htaccess", "", "htaccess"),
        ("rules.yaml", "rules: []", "yaml"),
        (
            "export.json",
            '{"redirects": [{"url": "/a", "action_data": {"url": "/b"}}]}',
            "wordpress-json",
        ),
        ("other.json", '{"redirects": [{"source": "/a", "destination": "/b"}]}', "vercel"),
        ("redirection.csv", "source,target,regex,code,type,hits,title,status\n", "wordpress-csv"),
        ("bulk.csv", "example.com/a,https://example.com/b,301\n", "cloudflare"),
        ("bulk.csv", "source_url,target_url\n", "cloudflare"),
        ("wagtail.csv", "from;to;permanent\n", "wagtail"),
        ("generic.csv", "\ufefffrom,to,status\n", "csv"),
        ("unknown.csv", "a,b\n", None),
        ("redirects.conf", "location = /a { return 301 /b; }\n", "nginx"),
        ("redirects.conf", "map $uri $new { /a /b; }\n", "nginx"),
        ("httpd.conf", "<VirtualHost *:80>\nRedirect 301 /a /b\n</VirtualHost>\n", "apache"),
        ("notes.txt", "nothing to see", None),
        ("rules.txt", "/old /new 302\n", "netlify"),
    ],
    ids=[
        "netlify",
        "netlify-toml",
        "toml-content",
        "vercel",
        "htaccess",
        "yaml",
        "wp-json",
        "vercel-json-content",
        "wp-csv",
        "cloudflare-no-header",
        "cloudflare-header",
        "wagtail",
        "generic-csv",
        "unknown-csv",
        "nginx-location",
        "nginx-map",
        "apache-conf",
        "unknown",
        "netlify-content",
    ],
)
def test_detect_format(filename: str, text: str, expected: str | None) -> None:
    assert detect_format(filename, text) == expected


_NOISE = st.lists(
    st.sampled_from(
        [
            *list("/:*!?=,;\t\"'{}()[]<>$^.\\#@%&+ \n\r-_aZ09"),
            "301",
            "200",
            "410",
            "location",
            "rewrite",
            "return",
            "map",
            "server",
            "Redirect",
            "RewriteRule",
            "RewriteCond",
            "~",
            "(.*)",
            "[R=301]",
            "http://",
            "source",
            "from",
            "\ufeff",
            "<IfModule x>",
            "</IfModule>",
            "[[redirects]]",
            '"redirects":',
            '{"',
            "]",
        ]
    ),
    max_size=50,
).map("".join)


@pytest.mark.parametrize("fmt", sorted(IMPORTERS), ids=sorted(IMPORTERS))
@settings(max_examples=80, deadline=None)
@given(text=_NOISE)
def test_importers_never_raise_on_garbage(fmt: str, text: str) -> None:
    result = IMPORTERS[fmt](text)
    for skip in result.skipped:
        assert skip.line >= 1 and skip.reason


def test_import_result_carries_proxy_hosts_into_the_yaml_export() -> None:
    assert ImportResult([], [], "netlify").proxy_hosts == []
    rules = [{"from": "/api/<path:rest>", "rewrite": "https://api.example.com/v1/{rest}"}]
    text = EXPORTERS["yaml"](rules, None).text
    assert "proxy_hosts" not in text
    text = export_yaml(rules, None, proxy_hosts=["api.example.com", "*.backend.example.org"]).text
    assert text.startswith("proxy_hosts:\n- api.example.com\n- '*.backend.example.org'\nrules:\n")
    back = IMPORTERS["yaml"](text)
    assert back.proxy_hosts == ["api.example.com", "*.backend.example.org"]
    assert back.rules == rules
