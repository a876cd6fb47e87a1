"""The migration tools on the command line: check (outputs, exit codes, --fix), test, trace,
import and export; round trips judged by decisions; and real nginx against Waypost."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.tools.nginx_serving import SERVER_MARKER, serving_nginx
from waypost.cli import main
from waypost.engine import Decision, Engine
from waypost.rules.converters import (
    AnyConverter,
    FloatConverter,
    IntConverter,
    PathConverter,
    UUIDConverter,
)
from waypost.rules.model import Rule
from waypost.tools.check import Fix
from waypost.tools.fix import FixError, apply_fixes
from waypost.tools.formats import EXPORTERS, IMPORTERS, ImportResult, export_cloudflare

DATA = Path(__file__).parents[1] / "data" / "tools"
MIGRATION = str(DATA / "migration.yaml")
EXAMPLE = str(Path(__file__).parents[2] / "examples" / "rules.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def output(*args: str) -> tuple[int, str]:
    """The exit code and what a terminal shows (standard output and error, interleaved)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------------------------
# check


def test_check_clean_file_keeps_the_old_output() -> None:
    assert run("check", EXAMPLE) == (0, f"{EXAMPLE}: ok, 8 rules\n", "")


def test_check_loading_errors_keep_the_old_output(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "rules:\n  - from: /<itn:id>\n    to: /x\n")
    code, out, err = run("check", str(bad))
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"{bad}: 1 error"
    assert "did you mean 'int'?" in err
    code, out, _ = run("check", str(bad), "--json")
    data = json.loads(out)
    assert (code, data["ok"], data["rules"]) == (1, False, 0)
    assert data["errors"][0]["line"] == 2
    assert data["findings"][0]["kind"] == "load"


def test_check_human_output_lists_problems_with_file_and_line() -> None:
    code, out, _ = run("check", MIGRATION, "--host", "www.example.com")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"{MIGRATION}:8: error [loop] redirect loop: /promo/summer")
    assert f"{MIGRATION}:45: error [method-change] matches POST but answers 302" in out
    assert lines[-2].startswith(f"{MIGRATION}: 301 rules; 5 errors, 5 warnings, ")
    assert lines[-1] == "2 chains can be pointed straight at the destination with --fix"
    assert "[self-host]" not in out
    code, verbose, _ = run("check", MIGRATION, "--host", "www.example.com", "-v")
    assert f"{MIGRATION}:53: info [self-host]" in verbose


@pytest.mark.parametrize(
    ("text", "args", "code"),
    [
        ("rules:\n  - from: /a\n    to: /b\n    methods: [GET]\n", [], 0),
        ("rules:\n  - from: /a\n    to: /b\n", [], 0),
        ("rules:\n  - from: /a\n    to: /b\n  - from: /b\n    to: /c\n", [], 3),
        ("rules:\n  - from: /a\n    to: /b\n  - from: /b\n    to: /c\n", ["--fail-on", "error"], 0),
        ("rules:\n  - from: /a\n    to: /b\n  - from: /b\n    to: /a\n", [], 1),
        ("rules:\n  - from: /a\n    to: /b\n  - from: /b\n    to: /a\n", ["--fail-on", "error"], 1),
    ],
    ids=["clean", "notes-only", "warning", "warning-allowed", "error", "error-always"],
)
def test_check_exit_code_follows_the_worst_severity(
    tmp_path: Path, text: str, args: list[str], code: int
) -> None:
    path = write(tmp_path, "r.yaml", text)
    assert run("check", str(path), *args)[0] == code


def test_check_json() -> None:
    code, out, _ = run("check", MIGRATION, "--json", "--host", "www.example.com")
    data = json.loads(out)
    assert code == 1
    assert (data["ok"], data["rules"], data["errors"]) == (False, 301, [])
    assert data["counts"]["error"] == 5 and data["counts"]["warning"] == 5
    chain = next(f for f in data["findings"] if f["kind"] == "chain" and f["line"] == 24)
    assert chain["fix"] == {"to": "/help/{rest}", "status": None}
    assert chain["related"][0]["source"] == f"{MIGRATION}:26"
    assert run("check", MIGRATION, "--format", "json", "--host", "www.example.com")[1] == out


def test_check_github_annotations() -> None:
    code, out, _ = run("check", MIGRATION, "--format", "github", "--host", "www.example.com")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(
        f"::error file={MIGRATION},line=8,title=waypost loop::redirect loop: /promo/summer"
    )
    levels = {line.split(" ", 1)[0] for line in lines}
    assert levels == {"::error", "::warning", "::notice"}


def test_github_escapes_what_workflow_commands_need() -> None:
    from waypost.tools.annotations import render_github
    from waypost.tools.check import Finding

    text = render_github([Finding("error", "loop", "50%\nnext", "a,b:c.yaml", 3)])
    assert text == "::error file=a%2Cb%3Ac.yaml,line=3,title=waypost loop::50%25%0Anext"


def test_check_gitlab_code_quality_report() -> None:
    code, out, _ = run("check", MIGRATION, "--format", "gitlab", "--host", "www.example.com")
    issues = json.loads(out)
    assert code == 1
    loop = issues[0]
    assert loop["check_name"] == "waypost-loop"
    assert loop["severity"] == "major"
    assert loop["location"] == {"path": MIGRATION, "lines": {"begin": 8}}
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert {i["severity"] for i in issues} == {"major", "minor", "info"}


# --------------------------------------------------------------------------------------------
# check --fix

FIX_CASES: list[tuple[str, str, str, str]] = [
    (
        "yaml",
        "r.yaml",
        "# migration\nrules:\n  - from: /a   # the old page\n    to: /b\n"
        "  - from: /b\n    to: '/c'\n    status: 302\n"
        "  - {from: /x, to: /y}\n  - {from: /y, to: /z, status: 308}\n",
        "# migration\nrules:\n  - from: /a   # the old page\n    to: /c\n    status: 302\n"
        "  - from: /b\n    to: '/c'\n    status: 302\n"
        "  - {from: /x, to: /z}\n  - {from: /y, to: /z, status: 308}\n",
    ),
    (
        "yaml-pattern",
        "r.yaml",
        "rules:\n  - from: /docs/<path:rest>\n    to: /manual/{rest}\n    status: 308\n"
        "  - from: /manual/<path:rest>\n    to: /help/{rest}\n    status: 308\n",
        "rules:\n  - from: /docs/<path:rest>\n    to: /help/{rest}\n    status: 308\n"
        "  - from: /manual/<path:rest>\n    to: /help/{rest}\n    status: 308\n",
    ),
    (
        "json",
        "r.json",
        '{\n  "rules": [\n    {"from": "/a", "to": "/b"},\n'
        '    {"from": "/b", "to": "/c", "status": 307}\n  ]\n}\n',
        '{\n  "rules": [\n    {"from": "/a", "to": "/c", "status": 302},\n'
        '    {"from": "/b", "to": "/c", "status": 307}\n  ]\n}\n',
    ),
    (
        "toml",
        "r.toml",
        '[[rules]]\nfrom = "/a"\nto = "/b"   # old\n\n[[rules]]\nfrom = "/b"\nto = "/c"\n'
        "status = 302\n",
        '[[rules]]\nfrom = "/a"\nto = "/c"   # old\nstatus = 302\n\n[[rules]]\nfrom = "/b"\n'
        'to = "/c"\nstatus = 302\n',
    ),
    (
        "csv",
        "r.csv",
        "from,to,status\r\n# keep me\r\n/a,/b,301\r\n/b,/c,302\r\n",
        "from,to,status\r\n# keep me\r\n/a,/c,302\r\n/b,/c,302\r\n",
    ),
]


@pytest.mark.parametrize(
    ("name", "before", "after"), [c[1:] for c in FIX_CASES], ids=[c[0] for c in FIX_CASES]
)
def test_fix_rewrites_only_the_target_and_status(
    tmp_path: Path, name: str, before: str, after: str
) -> None:
    path = write(tmp_path, name, before)
    code, out, err = run("check", str(path), "--fix")
    assert path.read_bytes().decode("utf-8") == after
    assert "fixed 1 chain" in err or "fixed 2 chains" in err
    assert "[chain]" not in out
    assert code in (0, 3)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_fix_keeps_the_file_mode(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "rules:\n  - from: /a\n    to: /b\n  - from: /b\n    to: /c\n")
    path.chmod(0o640)
    assert run("check", str(path), "--fix")[0] == 0
    assert path.stat().st_mode & 0o777 == 0o640


def test_fix_refuses_what_it_cannot_edit_safely(tmp_path: Path) -> None:
    text = 'rules = [{from = "/a", to = "/b"}, {from = "/b", to = "/c"}]\n'
    path = write(tmp_path, "r.toml", text)
    code, _, err = run("check", str(path), "--fix")
    assert code == 1
    assert "no [[rules]] header on this line" in err
    assert path.read_text(encoding="utf-8") == text


def test_fix_with_nothing_to_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "rules:\n  - from: /a\n    to: /b\n")
    assert run("check", str(path), "--fix") == (
        0,
        f"{path}: ok, 1 rule\n",
        f"{path}: nothing to fix\n",
    )


def _rule(text: str, format: str) -> Rule:
    from waypost.rules.load import parse_rules

    ruleset, errors = parse_rules(text, format=format, file="r")
    assert errors == []
    return ruleset.rules[0]


def test_fix_adds_a_status_column_to_a_csv_without_one() -> None:
    text = "from,to\n/a,/b\n/x,/y\n"
    fixed = apply_fixes(text, "csv", [Fix(_rule(text, "csv"), "/c", 302)], file="r.csv")
    assert fixed == "from,to,status\n/a,/c,302\n/x,/y,\n"


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ("rules:\n  - {from: /a, to: /b}\n", "/c,d", 'rules:\n  - {from: /a, to: "/c,d"}\n'),
        ("rules:\n  - from: /a\n    to: /b\n", "/c,d", "rules:\n  - from: /a\n    to: /c,d\n"),
        (
            "rules:\n  - from: /a\n    to: '/b'\n",
            "/it's",
            "rules:\n  - from: /a\n    to: '/it''s'\n",
        ),
        (
            "rules:\n  - from: /a\n    to: /b\n",
            "/x{{y}}",
            "rules:\n  - from: /a\n    to: /x{{y}}\n",
        ),
    ],
    ids=["flow-comma", "block-comma", "single-quoted", "braces-plain-in-block"],
)
def test_fix_quotes_yaml_values_that_need_it(text: str, target: str, expected: str) -> None:
    assert apply_fixes(text, "yaml", [Fix(_rule(text, "yaml"), target)], file="r.yaml") == expected


def test_fix_refuses_a_file_changed_since_the_check() -> None:
    rule = _rule("rules:\n  - from: /a\n    to: /b\n", "yaml")
    with pytest.raises(FixError, match="the file changed since it was checked"):
        apply_fixes("rules:\n\n  - from: /a\n    to: /b\n", "yaml", [Fix(rule, "/c")])


# --------------------------------------------------------------------------------------------
# test and trace


@pytest.mark.parametrize(
    ("cases", "code", "last"),
    [
        ("migration_cases.csv", 0, "7 passed, 0 failed"),
        ("migration_cases.yaml", 1, "2 passed, 2 failed"),
    ],
    ids=["csv-all-pass", "yaml-failures"],
)
def test_test_command(cases: str, code: int, last: str) -> None:
    result = run("test", MIGRATION, str(DATA / cases))
    assert result[0] == code
    assert result[1].splitlines()[-1] == last


def test_test_command_table_names_each_failure() -> None:
    _, out, _ = run("test", MIGRATION, str(DATA / "migration_cases.yaml"))
    assert "migration_cases.yaml:6" in out
    assert "308 /newsletter/subscribe" in out and "redirect 301 /newsletter/subscribe" in out


def test_test_command_json() -> None:
    code, out, _ = run("test", MIGRATION, str(DATA / "migration_cases.yaml"), "--json")
    data = json.loads(out)
    assert code == 1
    assert [r["passed"] for r in data] == [True, False, True, False]
    assert data[1]["problems"] == ["status is 301, expected 308"]


def test_test_command_reports_a_broken_cases_file(tmp_path: Path) -> None:
    cases = write(tmp_path, "c.csv", "url,stauts\n/a,301\n")
    code, _, err = run("test", MIGRATION, str(cases))
    assert code == 1
    assert f"{cases}:1: unknown column 'stauts'; did you mean 'status'?" in err


def test_test_command_wants_csv_or_yaml(tmp_path: Path) -> None:
    assert run("test", MIGRATION, str(write(tmp_path, "c.txt", "x")))[0] == 2


@pytest.mark.parametrize(
    ("args", "code", "last"),
    [
        (["/about-us"], 0, "final: /company/about after 2 redirects; no rule applies"),
        (["/promo/summer"], 1, "redirect loop: /promo/summer comes back (first asked at hop 1)"),
        (["/spring-campaign"], 0, "final: /campaign-2019 after 1 redirect; it answers 410"),
        (["-X", "POST", "/forms/contact"], 0, "final: /contact/send after 1 redirect; no rule"),
        (["/press", "--host", "www.example.com"], 0, "final: https://www.example.com/newsroom"),
        (["/out/evil.example.net/x"], 0, "final: /out/evil.example.net/x after 0 redirects; it an"),
        (["/promo/summer", "--max-hops", "1"], 1, "more than 1 redirects"),
    ],
    ids=["chain", "loop", "gone", "post-307", "own-host", "refused", "max-hops"],
)
def test_trace_command(args: list[str], code: int, last: str) -> None:
    result = run("trace", MIGRATION, *args)
    assert result[0] == code
    assert result[1].splitlines()[-1].startswith(last)


def test_trace_command_prints_every_hop_and_json() -> None:
    _, out, _ = run("trace", MIGRATION, "/about-us")
    assert out.splitlines()[:2] == [
        " 1. GET /about-us",
        f"    redirect 301 /about  [{MIGRATION}:18]",
    ]
    code, out, _ = run("trace", MIGRATION, "/about-us", "--json")
    data = json.loads(out)
    assert (code, data["outcome"], data["redirects"]) == (0, "final", 2)
    assert run("trace", MIGRATION, "/a", "-H", "nocolon")[0] == 2


# --------------------------------------------------------------------------------------------
# import and export

NGINX_CONF = """\
map $uri $new_uri {
    /old-page /new-page;
    /summer   /sale;
}
server {
    server_name example.com;
    if ($new_uri) { return 301 $new_uri; }
    location = /gone { return 410; }
    return 301 https://$host$request_uri;
}
"""


def test_import_reports_and_writes(tmp_path: Path) -> None:
    source = write(tmp_path, "site.conf", NGINX_CONF)
    out = tmp_path / "rules.yaml"
    code, stdout, err = run("import", str(source), "-o", str(out))
    assert (code, stdout) == (0, "")
    assert err.splitlines()[0] == f"{source} (nginx): 3 imported, 1 skipped"
    assert f"{source}:9: " in err  # the server-wide redirect, with its line and reason
    engine = Engine.from_file(out)
    assert engine.resolve("GET", "/old-page", {"Host": "example.com"}).location == "/new-page"


def test_import_dry_run_writes_nothing(tmp_path: Path) -> None:
    source = write(tmp_path, "site.conf", NGINX_CONF)
    code, stdout, err = run("import", str(source), "--dry-run", "-o", str(tmp_path / "r.yaml"))
    assert (code, stdout) == (0, "")
    assert "3 imported, 1 skipped" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.conf"]


def test_import_to_stdout_and_strict(tmp_path: Path) -> None:
    source = write(tmp_path, "_redirects", "/a /b 302\n/c\n")
    code, stdout, err = run("import", str(source))
    assert code == 0
    assert "from: /a" in stdout and "1 imported, 1 skipped" in err
    assert run("import", str(source), "--strict")[0] == 1


def test_import_needs_a_format_it_can_tell(tmp_path: Path) -> None:
    source = write(tmp_path, "mystery.txt", "hello\n")
    code, _, err = run("import", str(source))
    assert code == 2
    assert "pass --format" in err


@pytest.mark.parametrize(
    "command",
    [
        ["import", "{source}", "-o", "{out}"],
        ["export", EXAMPLE, "--format", "nginx", "-o", "{out}"],
        ["export", "--db", "sqlite:///{tmp}/w.db", "--format", "csv", "-o", "{out}"],
    ],
    ids=["import", "export", "export-db"],
)
def test_a_named_output_file_is_not_overwritten_without_force(
    tmp_path: Path, command: list[str]
) -> None:
    source = write(tmp_path, "_redirects", "/a /b 302\n")
    out = write(tmp_path, "precious.txt", "keep me\n")
    args = [a.format(source=source, out=out, tmp=tmp_path) for a in command]
    code, stdout, err = run(*args)
    assert (code, stdout) == (2, "")
    assert err.splitlines()[-1] == f"error: {out} already exists; add --force to overwrite it"
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    code, _, err = run(*args, "--force")
    assert code == 0, err
    assert out.read_text(encoding="utf-8") != "keep me\n"


HTACCESS = "RewriteEngine On\nRewriteRule ^old$ /new [R=301,L]\nRewriteRule ^/gone$ /x [R=301,L]\n"


def test_a_file_named_htaccess_is_read_as_one(tmp_path: Path) -> None:
    # In .htaccess mod_rewrite sees 'old' for '/old', so '^/gone$' never matches.
    source = write(tmp_path, ".htaccess", HTACCESS)
    code, stdout, err = run("import", str(source))
    assert code == 0
    assert err.splitlines()[0] == f"{source} (htaccess): 1 imported, 1 skipped"
    assert f"{source}:3: in .htaccess the path a RewriteRule matches has no leading '/'" in err
    assert "from: /old" in stdout


def test_format_htaccess_says_a_file_is_one(tmp_path: Path) -> None:
    source = write(tmp_path, "site-rules.txt", HTACCESS)
    code, _stdout, err = run("import", str(source), "--format", "htaccess", "--dry-run")
    assert code == 0
    assert err.splitlines()[0] == f"{source} (htaccess): 1 imported, 1 skipped"
    code, _stdout, err = run("import", str(source), "--format", "apache", "--dry-run")
    assert err.splitlines()[0] == f"{source} (apache): 2 imported, 0 skipped"


def test_export_reports_what_the_format_cannot_express() -> None:
    code, stdout, err = run("export", str(DATA / "roundtrip.yaml"), "--format", "csv")
    assert code == 0
    assert stdout.startswith("from,to,status,name\n")
    assert f"{DATA / 'roundtrip.yaml'}:6: not exported: " in err
    assert err.splitlines()[-1].endswith("3 exported, 8 not expressible in csv")
    assert run("export", str(DATA / "roundtrip.yaml"), "--format", "csv", "--strict")[0] == 1


def test_export_to_a_file_and_cloudflare_host(tmp_path: Path) -> None:
    out = tmp_path / "bulk.csv"
    code, stdout, _ = run(
        "export", str(DATA / "nginx_diff.yaml"), "--format", "cloudflare", "--host", "example.com",
        "-o", str(out),
    )  # fmt: skip
    assert (code, stdout) == (0, "")
    assert "example.com/old-page" in out.read_text(encoding="utf-8")
    assert run("export", EXAMPLE, "--format", "nginx", "--host", "x")[0] == 2


def test_cli_round_trip(tmp_path: Path) -> None:
    exported = tmp_path / "out.conf"
    back = tmp_path / "back.yaml"
    assert (
        run("export", str(DATA / "nginx_diff.yaml"), "--format", "nginx", "-o", str(exported))[0]
        == 0
    )
    assert run("import", str(exported), "-o", str(back))[0] == 0
    before, after = Engine.from_file(DATA / "nginx_diff.yaml"), Engine.from_file(back)
    for url in generated_urls(before.rules, random.Random(1), per_rule=20):
        assert outcome(before.resolve("GET", url)) == outcome(after.resolve("GET", url)), url


# --------------------------------------------------------------------------------------------
# Round trips by decision: import(export(rules)) decides like the rules, for what a format can
# express, on generated requests.

_WORDS = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def _value(converter: Any, rng: random.Random) -> Any:
    if isinstance(converter, AnyConverter):
        return rng.choice(converter.items)
    if isinstance(converter, IntConverter):
        return rng.randint(converter.min or 0, converter.max or 99_999)
    if isinstance(converter, FloatConverter):
        return round(rng.uniform(0, 1000), rng.randint(1, 3))
    if isinstance(converter, UUIDConverter):
        import uuid

        return uuid.UUID(int=rng.getrandbits(128))
    word = "".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 10)))
    if isinstance(converter, PathConverter):
        more = ["".join(rng.choice(_WORDS) for _ in range(3)) for _ in range(rng.randint(0, 2))]
        return "/".join([word, *more])
    return word


def generated_urls(rules: tuple[Rule, ...], rng: random.Random, *, per_rule: int) -> list[str]:
    """Requests around every rule: random values, trailing slashes, query strings, upper case,
    near misses; plain ASCII only (nginx and Waypost encode other characters differently)."""
    urls: list[str] = ["/", "/nothing-here", "/a/b/c"]
    for rule in rules:
        for _ in range(per_rule):
            if rule.pattern is None:
                path = rule.path
            else:
                values = {v.name: _value(v.converter, rng) for v in rule.pattern.variables}
                try:
                    path = rule.pattern.build(values)
                except ValueError:
                    continue
            variant = rng.random()
            if variant < 0.2 and not path.endswith("/"):
                path += "/"
            elif variant < 0.3:
                path = path.upper()
            elif variant < 0.35:
                path += "x"
            if rng.random() < 0.3:
                path += rng.choice(["?a=1", "?a=1&b=two", "?q=term", "?"])
            urls.append(path)
    return urls


def outcome(decision: Decision) -> tuple[Any, ...]:
    """What a client sees: redirect (status, Location), respond (status), or the app (200)."""
    if decision.action == "redirect":
        return decision.status, decision.location
    if decision.action == "respond":
        return decision.status, None
    if decision.action == "rewrite":
        return "app", decision.path, decision.query
    return 200, None


ROUND_TRIPS = [
    (rules, fmt) for rules in ("nginx_diff.yaml", "roundtrip.yaml") for fmt in sorted(EXPORTERS)
]


@pytest.mark.parametrize(
    ("rules_file", "fmt"),
    ROUND_TRIPS,
    ids=[f"{r.removesuffix('.yaml')}-{f}" for r, f in ROUND_TRIPS],
)
def test_import_of_export_decides_the_same(rules_file: str, fmt: str) -> None:
    engine = Engine.from_file(DATA / rules_file)
    mappings = [rule.to_mapping() for rule in engine.rules]
    defaults = dict(engine.ruleset.defaults)
    if fmt == "cloudflare":
        exported = export_cloudflare(mappings, defaults, host="example.com")
    else:
        exported = EXPORTERS[fmt](mappings, defaults)
    refused = {item.index for item in exported.unsupported}
    kept = [m for index, m in enumerate(mappings) if index not in refused]
    assert kept, "nothing to compare"
    original = Engine(kept, defaults=defaults)
    imported = IMPORTERS[fmt](exported.text)
    back = Engine(imported.rules, defaults=imported.defaults or None)
    rng = random.Random(fmt)
    for url in generated_urls(original.rules, rng, per_rule=25):
        for method in ("GET", "POST"):
            host = "shop.example.com" if url.lower().startswith("/shop") else "example.com"
            headers = {"Host": host}
            want = outcome(original.resolve(method, url, headers))
            got = outcome(back.resolve(method, url, headers))
            assert got == want, f"{method} {url}\n{exported.text}"


# --------------------------------------------------------------------------------------------
# The differential test: the nginx configuration Waypost exports, served by a real nginx on
# loopback, answers exactly like Waypost.


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """A private nginx serving the nginx export of nginx_diff.yaml; yields its URL."""
    engine = Engine.from_file(DATA / "nginx_diff.yaml")
    exported = EXPORTERS["nginx"](
        [r.to_mapping() for r in engine.rules], dict(engine.ruleset.defaults)
    )
    assert exported.unsupported == []
    http, marker, server = exported.text.partition(SERVER_MARKER)
    assert marker, "the nginx export no longer marks its server {} part"
    with serving_nginx(tmp_path_factory.mktemp("nginx"), http, server) as base:
        yield base, engine


@pytest.fixture(scope="module")
def nginx_imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """A private nginx serving nginx_import_diff.conf, and the Engine of its Waypost import."""
    text = (DATA / "nginx_import_diff.conf").read_text(encoding="utf-8")
    imported = IMPORTERS["nginx"](text)
    assert imported.skipped == []
    engine = Engine(imported.rules, defaults=imported.defaults or None)
    http, marker, server = text.partition(SERVER_MARKER)
    assert marker
    with serving_nginx(tmp_path_factory.mktemp("nginx-import"), http, server) as base:
        yield base, engine


def _differences(base: str, engine: Engine, urls: list[str]) -> list[str]:
    import httpx

    found: list[str] = []
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        for url in urls:
            response = client.get(url)
            decision = engine.resolve("GET", url)
            want = outcome(decision)
            if decision.action == "rewrite":  # pragma: no cover - nginx_diff.yaml has none
                continue
            got = (response.status_code, response.headers.get("location"))
            if got != want:
                found.append(f"GET {url}: nginx {got}, waypost {want}")
    return found


def test_nginx_answers_like_waypost(nginx: tuple[str, Engine]) -> None:
    base, engine = nginx
    urls = generated_urls(engine.rules, random.Random(7), per_rule=200)
    assert len(urls) > 3000
    assert _differences(base, engine, urls) == []


def test_nginx_keeps_waypost_trailing_slash_rule_for_path_variables(
    nginx: tuple[str, Engine],
) -> None:
    # '<path:rest>' never takes the trailing slash ('/files/a/' -> '/archive/a'), as in Waypost.
    base, engine = nginx
    assert _differences(base, engine, ["/files/a/b/", "/docs/guide/"]) == []


def test_nginx_matches_exact_paths_case_sensitively_like_waypost(
    nginx: tuple[str, Engine],
) -> None:
    # nginx compares 'map' strings ignoring case; Waypost's default is case-sensitive.
    base, engine = nginx
    assert _differences(base, engine, ["/OLD-PAGE", "/Team/Lead"]) == []


def test_nginx_exact_paths_win_and_ignore_case_only_when_told(nginx: tuple[str, Engine]) -> None:
    base, engine = nginx
    urls = ["/staff/boss", "/staff/boss/", "/staff/bob", "/STAFF/boss", "/legal", "/LEGAL/",
            "/Legal?x=1", "/promo/", "/PROMO/", "/promo", "/closed", "/closed/"]  # fmt: skip
    assert _differences(base, engine, urls) == []


def test_imported_nginx_rules_answer_like_the_nginx_they_came_from(
    nginx_imported: tuple[str, Engine],
) -> None:
    base, engine = nginx_imported
    urls = generated_urls(engine.rules, random.Random(11), per_rule=150)
    assert len(urls) > 1500
    # The prefix location '/pre' also matches '/prex', which the import notes and leaves out.
    urls = [url for url in urls if not url.startswith("/prex")]
    assert _differences(base, engine, urls) == []


@pytest.mark.parametrize(
    "url",
    ["/blog/a/", "/blog/a/b/", "/docs/x/", "/legacy/a/b/", "/prefix/", "/prefix/a/", "/pre/"],
)
def test_imported_greedy_groups_keep_the_trailing_slash_like_nginx(
    nginx_imported: tuple[str, Engine], url: str
) -> None:
    # nginx keeps the slash in '(.*)$' and in $uri: '/blog/a/' goes to '/posts/a/'.
    base, engine = nginx_imported
    assert _differences(base, engine, [url]) == []


@pytest.mark.parametrize(
    "url",
    ["/OLD-PAGE", "/Old-Page", "/mixed-case", "/MIXED-case", "/About-Us/", "/about-us", "/upper",
     "/TWIN/", "/Legacy/a"],
)  # fmt: skip
def test_imported_plain_map_keys_ignore_case_like_nginx(
    nginx_imported: tuple[str, Engine], url: str
) -> None:
    # nginx compares plain map keys ignoring case; '~' regex keys stay case-sensitive.
    base, engine = nginx_imported
    assert _differences(base, engine, [url]) == []


def test_export_reports_the_notes_of_rules_exported_with_a_difference(tmp_path: Path) -> None:
    rules = tmp_path / "moves.yaml"
    rules.write_text("rules:\n  - from: /blog/<path:rest>\n    to: /new/{rest}\n", "utf-8")
    code, out, err = run("export", str(rules), "--format", "apache")
    assert code == 0
    assert "RewriteRule" in out
    assert f"{rules}:2: note: a ',' in {{rest}} is sent as %2C" in err
    assert err.rstrip().endswith(f"{rules}: 1 exported, 0 not expressible in apache, 1 with a note")


def test_export_narrows_a_host_from_the_request_to_the_allowed_hosts(tmp_path: Path) -> None:
    rules = tmp_path / "out.yaml"
    rules.write_text(
        'allowed_hosts: ["*.example.org"]\n'
        "rules:\n  - from: /out/<site>/<path:rest>\n    to: https://{site}/{rest}\n",
        "utf-8",
    )
    for fmt in ("nginx", "apache", "vercel"):
        code, out, err = run("export", str(rules), "--format", fmt)
        assert code == 0, err
        assert "[eE][xX][aA][mM][pP][lL][eE]" in out, fmt  # only the allowed hosts match
        assert "1 exported, 0 not expressible" in err, fmt
    code, out, err = run("export", str(rules), "--format", "netlify")
    assert "not exported" in err and "leads off-site" in err


def test_check_clean_exits_0() -> None:
    code, out = output("check", EXAMPLE)
    assert (code, out.strip()) == (0, f"{EXAMPLE}: ok, 8 rules")


def test_check_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n"
        "  - from: /a\n    to: /b\n    status: 404\n"
        "  - from: /<itn:id>\n    to: /x\n"
        "  - from: /c\n    to: ftp://example.com/x\n"
        "  - from: /a\n    to: /c\n",
        encoding="utf-8",
    )
    code, out = output("check", str(bad), "--json")
    data = json.loads(out)
    assert code == 1
    assert data["ok"] is False
    assert [e["line"] for e in data["errors"]] == [4, 5, 8]
    assert "did you mean 'int'?" in data["errors"][1]["message"]
    assert "only http and https" in data["errors"][2]["message"]


def test_check_reports_duplicates(tmp_path: Path) -> None:
    bad = tmp_path / "dup.csv"
    bad.write_text("from,to,status\n/a,/b,301\n/a,/c,302\n", encoding="utf-8")
    code, out = output("check", str(bad))
    assert code == 1
    assert "dup.csv:3: duplicate rule: '/a'" in out
    assert "dup.csv:2" in out


def test_unknown_file_type(tmp_path: Path) -> None:
    path = tmp_path / "rules.ini"
    path.write_text("x", encoding="utf-8")
    code, out = output("check", str(path))
    assert code == 1
    assert "unknown rules file type '.ini'" in out


def test_import_writes_the_importers_proxy_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = {"from": "/api/<path:rest>", "rewrite": "https://api.example.com/v1/{rest}"}
    found = ImportResult([rule], [], "netlify", proxy_hosts=["api.example.com"])
    monkeypatch.setitem(IMPORTERS, "netlify", lambda text: found)
    source = write(tmp_path, "_redirects", "/api/* https://api.example.com/v1/:splat 200\n")
    _, stdout, _ = run("import", str(source), "--format", "netlify")
    assert stdout.startswith("proxy_hosts:\n- api.example.com\nrules:\n")
