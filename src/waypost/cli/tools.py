"""The migration tools on the command line: ``check``, ``test``, ``trace``, ``import``, ``export``.

Thin click commands over :mod:`waypost.tools`; :mod:`waypost.cli` registers them on ``waypost``.
Exit codes: 0 fine; 1 the rules have errors, ``check`` found an error, a test case failed, a
trace loops; 2 a usage mistake; 3 ``check`` found warnings but no error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from waypost.cli._files import (
    check_output,
    import_into_store,
    mode_option,
    write_atomically,
    write_output,
    yes_option,
)
from waypost.cli._progress import progress_bar, quiet_option
from waypost.cli._report import (
    exit_with_rule_errors,
    fail,
    load_engine,
    pack_rules_setting,
)
from waypost.cli.resolve import parse_headers
from waypost.engine import Engine
from waypost.exceptions import RulesError, ValidationError, WaypostError
from waypost.follow.store_sync import engine_from_store
from waypost.guards import KeyRing
from waypost.rules.load import FORMATS, collector_paused, parse_rules
from waypost.store import open_store
from waypost.store.model import ImportMode, Snapshot
from waypost.store.transfer import RulesDocument, read_document
from waypost.tools.annotations import render_github, render_gitlab, render_human, render_json
from waypost.tools.casetest import CaseResult, parse_cases, render_failures, run_cases
from waypost.tools.check import Finding, Fix, check_rules, load_findings, worst_severity
from waypost.tools.fix import FixError, apply_fixes
from waypost.tools.formats import (
    EXPORTERS,
    IMPORTERS,
    ImportResult,
    detect_format,
    export_rules,
    export_yaml,
    guarded_rules,
)
from waypost.tools.trace import MAX_REDIRECTS, follow

__all__ = ["check_command", "export_command", "import_command", "test_command", "trace_command"]

_F = TypeVar("_F", bound=Callable[..., Any])
# How many cases run between two moves of the progress bar.
_CASES_PER_STEP = 500
_CASE_FORMATS = {".csv": "csv", ".yaml": "yaml", ".yml": "yaml"}


def _store_engine(db: str) -> tuple[Engine, str]:
    """An engine for the store's rules, and how to name them in messages."""
    try:
        engine, revision, location = engine_from_store(db, pack_rules=pack_rules_setting())
    except RulesError as exc:
        exit_with_rule_errors(exc.errors, db)
    except WaypostError as exc:
        raise click.ClickException(str(exc)) from None
    return engine, f"{location}@{revision}"


def _store_snapshot(db: str) -> tuple[Snapshot, str]:
    """The store's rule set, and how to name it in messages."""
    try:
        with open_store(db) as store:
            return store.load_snapshot(), f"{store.location}@{store.current_revision()}"
    except WaypostError as exc:
        raise click.ClickException(str(exc)) from None


def _guarded_refusal(rules: str, fmt: str) -> str:
    return (
        f"{rules}: rules with guards (require:) cannot be exported as {fmt}: the format has no "
        "equivalent, and an export without them would serve the guarded areas open; export "
        "--format yaml, which keeps the guards"
    )


def _export_guarded_store(
    snapshot: Snapshot, label: str, fmt: str, output: str | None, force: bool
) -> None:
    """Export a stored rule set that has guards: as Waypost's YAML with them, or not at all.

    The guards are not built: the declarations and the rules are written as stored, so an
    export needs neither the htpasswd files, the secrets nor the access keys the server reads.
    """
    if fmt != "yaml":
        for index in guarded_rules(snapshot.rules):
            rule_id = snapshot.rule_ids[index] if index < len(snapshot.rule_ids) else index
            click.echo(f"{label} rules[{rule_id}]: not exported: it requires a guard", err=True)
        raise click.ClickException(_guarded_refusal(label, fmt))
    result = export_rules(
        fmt,
        snapshot.rules,
        dict(snapshot.defaults) or None,
        allowed_hosts=snapshot.allowed_hosts,
        proxy_hosts=snapshot.proxy_hosts,
        guards=snapshot.guards,
    )
    for item in result.unsupported:
        click.echo(f"{label} rule {item.index + 1}: not exported: {item.reason}", err=True)
    if output is None:
        click.echo(result.text, nl=not result.text.endswith("\n"))
    else:
        write_output(output, result.text, force=force)
    click.echo(f"{label}: {result.exported} exported, {len(result.unsupported)} not", err=True)
    sys.exit(1 if result.unsupported else 0)


def _file_guards(path: str, read: Mapping[str, Any]) -> dict[str, Any]:
    """The guards of the Waypost rules file at ``path`` as written, a relative path in them made
    absolute (it is relative to that file, and the output goes elsewhere); ``read`` (what the
    importer read) when ``path`` does not load."""
    try:
        return dict(read_document(path).guards)
    except (RulesError, OSError, ValueError):
        return dict(read)


def _read_text(path: str) -> str:
    """The file's text exactly as stored (line endings kept); a clear error when unreadable."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read the file: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise click.ClickException(
            f"{path}:{line}: not UTF-8 text; save the file as UTF-8"
        ) from None


# --------------------------------------------------------------------------------------------
# check


def _exit_code(findings: list[Finding], fail_on: str) -> int:
    worst = worst_severity(findings)
    if worst == "error":
        return 1
    if worst == "warning" and fail_on == "warning":
        return 3
    return 0


def _emit(findings: list[Finding], output: str, *, file: str, count: int, verbose: bool) -> None:
    if output == "json":
        click.echo(render_json(findings, file=file, rule_count=count))
    elif output == "github":
        if findings:
            click.echo(render_github(findings))
    elif output == "gitlab":
        click.echo(render_gitlab(findings))
    else:
        click.echo(render_human(findings, file=file, rule_count=count, verbose=verbose))


@click.command("check")
@click.argument("rules", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (same as --format json).")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "github", "gitlab"]),
    default="text",
    show_default=True,
    help="text for people; github: workflow annotations; gitlab: a Code Quality report.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="One of the site's own hosts (besides allowed_hosts); repeat for several.",
)
@click.option("--fix", is_flag=True, help="Point every chained rule straight at its destination.")
@click.option("-v", "--verbose", is_flag=True, help="Also show notes (info findings).")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="warning",
    show_default=True,
    help="The least severity that makes the exit code non-zero.",
)
@quiet_option
# A large table makes millions of objects and no cycle (see collector_paused()); between the
# steps that pause the collector themselves, it walked them again and again.
@collector_paused()
def check_command(
    rules: str,
    as_json: bool,
    output: str,
    hosts: tuple[str, ...],
    fix: bool,
    verbose: bool,
    fail_on: str,
    quiet: bool,
) -> None:
    """Check RULES: loading errors, loops, chains, shadowed rules, POST turned into GET, unsafe
    targets. Exit 0 clean, 1 errors, 3 warnings only."""
    if as_json:
        output = "json"
    try:
        # compiled=False: the checks ask for candidates, rarely a whole resolve(), and building
        # the compiled road of a million-row table costs a second.
        engine = Engine.from_file(
            rules, pack_rules=pack_rules_setting(), keys=KeyRing(), compiled=False
        )
    except RulesError as exc:
        errors = list(exc.errors)
        if output == "json":
            click.echo(render_json(load_findings(errors), file=rules, rule_count=0, errors=errors))
            sys.exit(1)
        if output in ("github", "gitlab"):
            _emit(load_findings(errors), output, file=rules, count=0, verbose=verbose)
        exit_with_rule_errors(errors, rules)
    with progress_bar(f"{rules}: checking", len(engine), quiet=quiet) as advance:
        findings = check_rules(engine, site_hosts=hosts, progress=advance)
    if fix:
        fixes = [f.fix for f in findings if f.fix is not None]
        if fixes:
            engine, findings = _fix(rules, fixes, hosts)
        else:
            click.echo(f"{rules}: nothing to fix", err=True)
    _emit(findings, output, file=rules, count=len(engine), verbose=verbose)
    sys.exit(_exit_code(findings, fail_on))


def _fix(rules: str, chosen: list[Fix], hosts: tuple[str, ...]) -> tuple[Engine, list[Finding]]:
    format = FORMATS.get(Path(rules).suffix.lower())
    if format is None:  # pragma: no cover - the file loaded, so its type is known
        fail(f"{rules}: --fix cannot edit this file type")
    text = _read_text(rules)
    try:
        fixed = apply_fixes(text, format, chosen, file=rules)
    except FixError as exc:
        fail(str(exc))
    write_atomically(rules, fixed)
    count = len(chosen)
    click.echo(f"{rules}: fixed {count} chain{'s' if count != 1 else ''}", err=True)
    engine = load_engine(rules)
    return engine, check_rules(engine, site_hosts=hosts)


# --------------------------------------------------------------------------------------------
# test and trace


@click.command("test")
@click.argument("rules", type=click.Path(dir_okay=False))
@click.argument("cases", type=click.Path(dir_okay=False))
@click.option("--host", "hosts", multiple=True, help="One of the site's own hosts (for 'final').")
@click.option("--json", "as_json", is_flag=True, help="Print every result as JSON.")
@quiet_option
def test_command(
    rules: str, cases: str, hosts: tuple[str, ...], as_json: bool, quiet: bool
) -> None:
    """Run the CASES file (CSV or YAML: requests and what must happen) against RULES.

    Prints a table of the failures; exit 0 when every case passes, 1 otherwise."""
    format = _CASE_FORMATS.get(Path(cases).suffix.lower())
    if format is None:
        raise click.BadParameter(
            f"{cases!r}: a cases file is .csv, .yaml or .yml", param_hint="'CASES'"
        )
    engine = load_engine(rules)
    parsed, errors = parse_cases(_read_text(cases), format=format, file=cases)
    if errors:
        exit_with_rule_errors(errors, cases)
    results: list[CaseResult] = []
    with progress_bar(f"{cases}: testing", len(parsed), quiet=quiet) as advance:
        for start in range(0, len(parsed), _CASES_PER_STEP):
            part = parsed[start : start + _CASES_PER_STEP]
            results.extend(run_cases(engine, part, site_hosts=hosts))
            advance(len(part))
    if as_json:
        import json

        click.echo(
            json.dumps(
                [
                    {
                        "line": r.case.line,
                        "request": r.case.request_text(),
                        "passed": r.passed,
                        "problems": list(r.problems),
                        "decision": r.decision.to_dict(),
                        "final_url": r.final_url,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        click.echo(render_failures(results, file=cases))
    sys.exit(0 if all(r.passed for r in results) else 1)


@click.command("trace")
@click.argument("rules", type=click.Path(dir_okay=False))
@click.argument("url")
@click.option("-X", "--method", default="GET", show_default=True, help="HTTP method.")
@click.option("-H", "--header", "headers", multiple=True, help="A request header, 'Name: value'.")
@click.option("--ip", "client_ip", default=None, help="The client's IP address.")
@click.option("--host", "hosts", multiple=True, help="One of the site's own hosts; repeatable.")
@click.option(
    "--max-hops",
    default=MAX_REDIRECTS,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Give up after this many redirects (browsers: 20).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def trace_command(
    rules: str,
    url: str,
    method: str,
    headers: tuple[str, ...],
    client_ip: str | None,
    hosts: tuple[str, ...],
    max_hops: int,
    as_json: bool,
) -> None:
    """Follow the redirects of URL hop by hop, as a browser would; exit 1 when they loop."""
    pairs = parse_headers(headers)
    engine = load_engine(rules)
    site = (*engine.ruleset.allowed_hosts, *hosts)
    walk = follow(engine, method, url, pairs, client_ip, site_hosts=site, limit=max_hops)
    if as_json:
        import json

        click.echo(json.dumps(walk.to_dict(), indent=2))
    else:
        click.echo(walk.render())
    sys.exit(1 if walk.outcome in ("loop", "too-many") else 0)


# --------------------------------------------------------------------------------------------
# import and export


def _format_option(
    choices: Iterable[str], help: str, *, required: bool = False
) -> Callable[[_F], _F]:
    return click.option(
        "--format", "fmt", type=click.Choice(sorted(choices)), required=required, help=help
    )


def _output_option(help: str) -> Callable[[_F], _F]:
    return click.option("-o", "--output", type=click.Path(dir_okay=False), help=help)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@_format_option(IMPORTERS, "The format of FILE (guessed from its name and content when left out).")
@_output_option("Write the rules here (YAML); stdout when left out.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--dry-run", is_flag=True, help="Show the report; write nothing.")
@click.option("--strict", is_flag=True, help="Exit 1 when a line was skipped.")
@click.option(
    "--db",
    default=None,
    help="Import into this rule store, as one revision (instead of writing YAML).",
)
@mode_option
@yes_option
@click.option("-m", "--message", default=None, help="With --db: the revision's message.")
@quiet_option
def import_command(
    file: str,
    fmt: str | None,
    output: str | None,
    force: bool,
    dry_run: bool,
    strict: bool,
    db: str | None,
    mode: str,
    yes: bool,
    message: str | None,
    quiet: bool,
) -> None:
    """Read redirects from FILE (nginx, Apache, Netlify, Vercel, Cloudflare Bulk Redirects and
    Pages, WordPress, Wagtail, CSV, or Waypost's own formats) as a Waypost YAML rules file, or
    into the rule store with --db (merged into its rules unless --mode says otherwise). Every
    skipped line is reported with its reason. A _redirects file is read as Netlify's; pass
    --format cloudflare-pages for Cloudflare Pages' dialect (302 by default, first match)."""
    if db is not None and output is not None:
        raise click.UsageError("give --db or --output, not both")
    if not dry_run:
        check_output(output, force=force)
    text = _read_text(file)
    if fmt is None:
        fmt = detect_format(file, text)
        if fmt is None:
            raise click.UsageError(
                f"cannot tell the format of {file!r}; pass --format, one of "
                + ", ".join(sorted(IMPORTERS))
            )
        if fmt == "netlify" and Path(file).name == "_redirects":
            # The name is the same on both platforms; the meaning differs (302, first match).
            click.echo(
                f"{file}: read as Netlify's _redirects; for Cloudflare Pages pass "
                "--format cloudflare-pages",
                err=True,
            )
    result = IMPORTERS[fmt](text)
    click.echo(f"{file} ({fmt}): {result.summary(file)}", err=True)
    exported = export_yaml(
        result.rules,
        result.defaults or None,
        proxy_hosts=result.proxy_hosts,
        guards=_file_guards(file, result.guards) if result.guards else None,
    )
    for item in exported.unsupported:
        click.echo(f"{file}: not written: {item.render()}", err=True)
    name = output or "<stdout>"
    _, errors = parse_rules(exported.text, format="yaml", file=name)
    for error in errors:
        click.echo(f"warning: the imported rules do not load: {error}", err=True)
    if db is not None:
        if errors or exported.unsupported:
            click.echo(
                f"{file}: nothing written to the store: the rules above do not load", err=True
            )
            sys.exit(1)
        _import_into_store(db, file, fmt, result, mode, yes, dry_run, message, quiet)
        sys.exit(1 if strict and result.skipped else 0)
    if not dry_run:
        if output is None:
            click.echo(exported.text, nl=not exported.text.endswith("\n"))
        else:
            write_output(output, exported.text, force=force)
            click.echo(f"wrote {len(result.rules)} rules to {output}", err=True)
    failed = bool(errors) or bool(exported.unsupported) or (strict and bool(result.skipped))
    sys.exit(1 if failed else 0)


def _import_into_store(
    db: str,
    file: str,
    fmt: str,
    result: ImportResult,
    mode: str,
    yes: bool,
    dry_run: bool,
    message: str | None,
    quiet: bool = False,
) -> None:
    """Import ``result`` into the store in ``mode`` (Waypost's own files exactly as written, with
    their settings; other formats keep the stored settings, but for the order their peer applies
    rules in and the origins their rules proxy to, which are the file's proxy hosts)."""
    rules: Sequence[Any] = result.rules
    defaults: Mapping[str, Any] | None = None
    order = result.defaults.get("order")
    hosts = None
    proxy: Sequence[str] | None = result.proxy_hosts
    guards: Mapping[str, Any] | None = None
    document: RulesDocument | None = None
    if FORMATS.get(Path(file).suffix.lower()) == fmt or fmt == "yaml":
        try:
            document = read_document(file)
        except RulesError as exc:
            exit_with_rule_errors(exc.errors, exc.file or file)
        rules = document.rules
        order = None
        proxy = None
        if fmt != "csv":  # a CSV table has no settings of its own
            defaults, hosts = document.defaults, document.allowed_hosts
            proxy, guards = document.proxy_hosts, document.guards
    try:
        import_into_store(
            db,
            rules,
            defaults=defaults,
            allowed_hosts=hosts,
            proxy_hosts=proxy,
            guards=guards,
            mode=cast(ImportMode, mode),
            yes=yes,
            dry_run=dry_run,
            message=message or f"import {Path(file).name} ({fmt})",
            source=file,
            err=True,
            order=order,
            quiet=quiet,
        )
    except RulesError as exc:
        exit_with_rule_errors(exc.errors, db)
    except ValidationError as exc:
        # A CSV table's rows are checked by the store: its problems at their lines.
        error = exc if document is None else document.located(exc)
        if isinstance(error, RulesError):
            exit_with_rule_errors(error.errors, file)
        fail(str(error))
    except WaypostError as exc:
        fail(str(exc))


@click.command("export")
@click.argument("rules", type=click.Path(dir_okay=False), required=False)
@_format_option(EXPORTERS, "The format to write.", required=True)
@_output_option("Write here; stdout when left out.")
@click.option(
    "--host",
    default=None,
    help="cloudflare: the host of rules without a host condition (Cloudflare needs one).",
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Exit 0 even when some rules cannot be expressed (each is still reported on stderr); "
    "without it the export is written and the exit code is 1.",
)
@click.option("--strict", is_flag=True, hidden=True, help="The default now; kept for scripts.")
@click.option("--db", default=None, help="Export this rule store's rules instead of RULES.")
def export_command(
    rules: str | None,
    fmt: str,
    output: str | None,
    force: bool,
    host: str | None,
    allow_partial: bool,
    strict: bool,
    db: str | None,
) -> None:
    """Write RULES (or the rule store --db) in another format, to stdout or to --output (which
    must not exist unless --force). A rule the format cannot express is reported on stderr
    with its file:line and the reason, never dropped silently, and the exit code is 1 (the
    rest is still written) unless --allow-partial."""
    check_output(output, force=force)
    guards: Mapping[str, Any] = {}
    if rules is not None and db is None:
        engine = load_engine(rules)
        if fmt == "yaml" and engine.ruleset.guards:
            # The declarations as written (paths made absolute), not the loader's expansion.
            guards = _file_guards(rules, {})
    elif db is not None and rules is None:
        snapshot, label = _store_snapshot(db)
        if snapshot.guards or guarded_rules(snapshot.rules):
            _export_guarded_store(snapshot, label, fmt, output, force)
            return
        engine, rules = _store_engine(db)
    else:
        raise click.UsageError("give a RULES file or --db, one of the two")
    guarded = engine.ruleset.guard_rules
    if guarded and fmt != "yaml":
        # Exported without its guard, a guarded area would be served open: refused, not dropped.
        for rule in guarded:
            click.echo(f"{rule.source}: not exported: it requires a guard", err=True)
        raise click.ClickException(_guarded_refusal(rules, fmt))
    source = list(engine.rules)
    mappings = [r.to_mapping() for r in source]
    defaults = dict(engine.ruleset.defaults)
    if host is not None and fmt != "cloudflare":
        raise click.UsageError("--host is for --format cloudflare only")
    # allowed_hosts: Waypost's own format keeps them; nginx, Apache and Vercel narrow a target
    # host taken from the request to them (a host they do not allow is refused, as Waypost does).
    result = export_rules(
        fmt,
        mappings,
        defaults,
        allowed_hosts=engine.ruleset.allowed_hosts,
        host=host,
        proxy_hosts=engine.ruleset.proxy_hosts,
        guards=guards,
    )
    for item in result.unsupported:
        where = source[item.index].source if 0 <= item.index < len(source) else rules
        click.echo(f"{where}: not exported: {item.reason}", err=True)
    for note in result.notes:
        where = source[note.index].source if 0 <= note.index < len(source) else rules
        click.echo(f"{where}: note: {note.message}", err=True)
    exported = len(source) - len(result.unsupported)
    summary = f"{rules}: {exported} exported, {len(result.unsupported)} not expressible in {fmt}"
    if result.notes:
        summary += f", {len(result.notes)} with a note"
    if output is None:
        click.echo(result.text, nl=not result.text.endswith("\n"))
    else:
        write_output(output, result.text, force=force)
    click.echo(summary, err=True)
    sys.exit(1 if result.unsupported and (strict or not allow_partial) else 0)
