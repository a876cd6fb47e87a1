"""The ``waypost`` command: thin click commands over the library; the only place that reads argv.

Exit codes: 0 success; 1 the rules have errors (or ``check`` found problems); 2 a usage mistake
(bad flag, unreadable header). A user mistake never shows a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from waypost.cli_store import db_group, keys_group, sessions_group
from waypost.cli_tools import (
    check_command,
    export_command,
    import_command,
    parse_headers,
    test_command,
    trace_command,
)
from waypost.engine import Decision, Engine
from waypost.exceptions import RulesError, WaypostError
from waypost.settings import SETTINGS, Settings

__all__ = ["main"]

_SETTING = {s.name: s for s in SETTINGS}


def _engine(rules: str) -> Engine:
    try:
        return Engine.from_file(rules)
    except RulesError as exc:
        _print_errors(exc)
        sys.exit(1)


def _print_errors(exc: RulesError) -> None:
    count = len(exc.errors)
    click.echo(f"{exc.file or 'rules'}: {count} error{'s' if count != 1 else ''}", err=True)
    for error in exc.errors:
        click.echo(f"  {error}", err=True)


def _describe(decision: Decision) -> str:
    rule = decision.rule
    where = f"  [{rule.source}{' ' + rule.name if rule and rule.name else ''}]" if rule else ""
    if decision.action == "redirect":
        return f"redirect {decision.status} {decision.location}{where}"
    if decision.action == "rewrite":
        query = f"?{decision.query}" if decision.query else ""
        headers = "".join(f"\n  {k}: {v}" for k, v in decision.headers)
        return f"rewrite {decision.path}{query}{where}{headers}"
    if decision.action == "respond":
        headers = "".join(f"\n  {k}: {v}" for k, v in decision.headers)
        body = f"\n\n{decision.body}" if decision.body else ""
        return f"respond {decision.status}{where}{headers}{body}"
    return f"pass{where or '  (no rule applies)'}"


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value.startswith("/") or re.match(r"https?://", value, re.IGNORECASE):
        return value
    hint = f"did you mean {'/' + value!r}?" if "://" not in value else "use http:// or https://"
    raise click.BadParameter(f"{value!r} is not a path or an http(s) URL; {hint}")


def _check_method(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _TOKEN.match(value):
        raise click.BadParameter(f"{value!r} is not an HTTP method, like GET or POST")
    return value


def _check_ip(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an IP address, like 203.0.113.7 or 2001:db8::1"
        ) from None


_request_options = [
    click.argument("rules", type=click.Path(dir_okay=False)),
    click.argument("url", callback=_check_url),
    click.option(
        "-X",
        "--method",
        default="GET",
        show_default=True,
        callback=_check_method,
        help="HTTP method.",
    ),
    click.option(
        "-H", "--header", "headers", multiple=True, help="A request header, 'Name: value'."
    ),
    click.option(
        "--ip", "client_ip", default=None, callback=_check_ip, help="The client's IP address."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
]


def _with_request_options(func: Any) -> Any:
    for option in reversed(_request_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="waypost")
def main() -> None:
    """Waypost: redirects and rewrites, declared, tested and fast."""


@main.command()
@_with_request_options
def resolve(
    rules: str,
    url: str,
    method: str,
    headers: tuple[str, ...],
    client_ip: str | None,
    as_json: bool,
) -> None:
    """Print what RULES do with a request for URL."""
    engine = _engine(rules)
    decision = engine.resolve(method, url, parse_headers(headers), client_ip)
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        click.echo(_describe(decision))


@main.command()
@_with_request_options
def explain(
    rules: str,
    url: str,
    method: str,
    headers: tuple[str, ...],
    client_ip: str | None,
    as_json: bool,
) -> None:
    """Print every rule tried for URL, and why each did or did not apply."""
    engine = _engine(rules)
    trace = engine.explain(method, url, parse_headers(headers), client_ip)
    if as_json:
        click.echo(json.dumps(trace.to_dict(), indent=2))
    else:
        click.echo(trace.render())


def _serve_options(func: Any) -> Any:
    """One flag per setting, mirroring waypost.settings (env and defaults are resolved there)."""
    for setting in reversed(SETTINGS):
        shown = "off" if setting.default is None else setting.default
        help_text = f"{setting.help} [env {setting.env}; default {shown}]"
        if setting.kind is bool:
            flag = f"{setting.flag}/--no-{setting.flag[2:]}"
            func = click.option(flag, setting.name, default=None, help=help_text)(func)
        else:
            kind = {int: click.INT, float: click.FLOAT}.get(setting.kind)
            option = click.option(setting.flag, setting.name, type=kind, help=help_text)
            func = option(func)
    return func


@main.command()
@click.argument("rules", type=click.Path(dir_okay=False), required=False)
@_serve_options
def serve(rules: str | None, **flags: Any) -> None:
    """Serve RULES (or the rule store --db) over HTTP (uvicorn): redirects and responses from the
    engine, the rest proxied to --upstream or answered 404; changes are picked up while serving.

    With both RULES and --db, RULES is imported into the store first if the store is empty."""
    try:
        from waypost.server.run import ListenError, check_serve_settings, listen, run_server
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs {exc.name}: pip install 'waypost[server]'"
        ) from None
    from waypost.settings import SettingsError

    try:
        settings = Settings.from_env(**flags)
        check_serve_settings(settings)
    except (SettingsError, WaypostError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        listener = listen(settings.host, settings.port)
        redirect_listener = None
        if settings.http_redirect_port is not None:
            redirect_listener = listen(settings.host, settings.http_redirect_port)
    except ListenError as exc:
        raise click.ClickException(str(exc)) from None
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    upstream = f"; upstream {settings.upstream}" if settings.upstream else ""
    if settings.http_redirect_port is not None:
        upstream += f"; http://{settings.host}:{settings.http_redirect_port}/ redirects to HTTPS"
    address = f"{settings.scheme}://{settings.host}:{settings.port}/{workers}{upstream}"
    if settings.db is None:
        if rules is None:
            raise click.UsageError("give a RULES file to serve, or --db to serve a rule store")
        from waypost.server.reloading import file_signature

        signature = file_signature(rules)  # before loading: a change from now on is reloaded
        engine = _engine(rules)
        click.echo(f"waypost: {len(engine)} rules from {Path(rules)}; {address}", err=True)
        run_server(
            engine,
            rules,
            settings,
            rules_signature=signature,
            listener=listener,
            redirect_listener=redirect_listener,
        )
        return
    engine, revision, location = _store_engine(settings.db, rules)
    click.echo(
        f"waypost: {len(engine)} rules from {location} (revision {revision}); {address}",
        err=True,
    )
    run_server(
        engine,
        None,
        settings,
        store_url=settings.db,
        store_revision=revision,
        listener=listener,
        redirect_listener=redirect_listener,
    )


def _store_engine(url: str, seed: str | None) -> tuple[Engine, int, str]:
    """The engine for the store at ``url`` (importing ``seed`` into an empty store first)."""
    from waypost.server.store_sync import engine_from_store
    from waypost.store import open_store
    from waypost.store.transfer import read_document

    try:
        store = open_store(url)
        try:
            location = store.location
            if seed is not None and store.current_revision() == 0:
                document = read_document(seed)
                store.replace_rules(
                    document.rules,
                    defaults=document.defaults,
                    allowed_hosts=document.allowed_hosts,
                    message=f"seeded from {Path(seed).name}",
                )
        finally:
            store.close()
        engine, revision = engine_from_store(url)
    except RulesError as exc:
        _print_errors(exc)
        sys.exit(1)
    except WaypostError as exc:
        raise click.ClickException(str(exc)) from None
    return engine, revision, location


def run() -> None:  # pragma: no cover - console entry for `python -m waypost`
    """Run the CLI, turning any WaypostError that escapes into a one-line message."""
    try:
        main(standalone_mode=True)
    except WaypostError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


for _command in (check_command, test_command, trace_command, import_command, export_command):
    main.add_command(_command)
main.add_command(db_group)
main.add_command(keys_group)
main.add_command(sessions_group)
