"""``waypost serve``: the standalone server, over a rules file or the rule store.

Its flags are made from :mod:`waypost.server.config`, one per setting (the environment and the
defaults are resolved there too): a setting declared there is a flag here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from waypost.cli._report import exit_with_rule_errors, load_engine
from waypost.engine import Engine
from waypost.exceptions import RulesError, SettingsError, ValidationError, WaypostError
from waypost.follow.sources import FileSource, RulesSource, StoreSource
from waypost.server.config import SETTINGS, Settings
from waypost.store.keyring import StoreKeyRing
from waypost.store.model import Snapshot

__all__ = ["serve_command"]


def _serve_options(func: Any) -> Any:
    """One flag per setting of :mod:`waypost.server.config`, in its order."""
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


@click.command("serve")
@click.argument("rules", type=click.Path(dir_okay=False), required=False)
@_serve_options
def serve_command(rules: str | None, **flags: Any) -> None:
    """Serve RULES (or the rule store --db) over HTTP: redirects and responses from the
    engine, the rest proxied to --upstream or answered 404; changes are picked up while serving.

    With both RULES and --db, RULES is imported into the store first if the store is empty."""
    try:
        from waypost.server.run import ListenError, check_serve_settings, listen, run_server
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs {exc.name}: pip install 'waypost[server]'"
        ) from None

    try:
        settings = Settings.from_env(**flags)
        check_serve_settings(settings)
    except (SettingsError, WaypostError) as exc:
        raise click.UsageError(str(exc)) from None
    if rules is None and settings.db is None:  # before the port is taken
        raise click.UsageError(
            "nothing to serve; start it one of two ways:\n"
            "  waypost serve rules.yaml                   serve a rules file (reloaded when it "
            "changes)\n"
            "  waypost serve --db sqlite:///waypost.db    serve a rule store, with the admin "
            "page at /_waypost/\n"
            "(both: the file seeds an empty store)"
        )
    if settings.db is not None or settings.stats:
        # A store is served with the admin page and API (and a file's statistics with their
        # API): say what to install now, not with a traceback from a worker.
        try:
            import waypost.admin  # noqa: F401
        except ImportError as exc:
            raise click.ClickException(str(exc)) from None
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
    keys = _keyring(settings.keys or settings.db)
    source: RulesSource
    if settings.db is None:
        assert rules is not None  # checked above, before the port was taken
        from waypost.follow.reloading import file_signature

        signature = file_signature(rules)  # before loading: a change from now on is reloaded
        engine = load_engine(rules, pack_rules=settings.pack_rules, keys=keys)
        source = FileSource(rules, signature=signature)
        click.echo(f"waypost: {len(engine)} rules from {Path(rules)}; {address}", err=True)
    else:
        db = settings.db
        engine, snapshot, location = _store_engine(
            db, rules, pack_rules=settings.pack_rules, keys=keys
        )
        revision = snapshot.revision
        source = StoreSource(db, revision, snapshot.rule_ids)
        click.echo(
            f"waypost: {len(engine)} rules from {location} (revision {revision}); {address}",
            err=True,
        )
    run_server(engine, source, settings, listener=listener, redirect_listener=redirect_listener)


def _keyring(url: str | None) -> StoreKeyRing | None:
    """The access keys of the store at ``url`` for the api_key guards (None without one)."""
    if url is None:
        return None
    from waypost.store.keyring import open_keyring

    try:
        return open_keyring(url)
    except WaypostError as exc:
        raise click.ClickException(f"cannot read the access keys: {exc}") from None


def _store_engine(
    url: str, seed: str | None, *, pack_rules: bool, keys: StoreKeyRing | None
) -> tuple[Engine, Snapshot, str]:
    """The engine for the store at ``url`` (importing ``seed`` into an empty store first)."""
    from waypost.follow.store_sync import engine_and_snapshot
    from waypost.store import open_store
    from waypost.store.transfer import read_document

    try:
        store = open_store(url)
        try:
            if seed is not None and store.current_revision() == 0:
                document = read_document(seed)
                try:
                    store.replace_rules(
                        document.rules,
                        defaults=document.defaults,
                        allowed_hosts=document.allowed_hosts,
                        proxy_hosts=document.proxy_hosts,
                        guards=document.guards,
                        message=f"seeded from {Path(seed).name}",
                    )
                except ValidationError as exc:
                    raise document.located(exc) from None
        finally:
            store.close()
        engine, snapshot, location = engine_and_snapshot(url, pack_rules=pack_rules, keys=keys)
    except RulesError as exc:
        exit_with_rule_errors(exc.errors, exc.file or "rules")
    except WaypostError as exc:
        raise click.ClickException(str(exc)) from None
    return engine, snapshot, location
