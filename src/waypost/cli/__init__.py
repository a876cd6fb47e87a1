"""The ``waypost`` command: thin click commands over the library; the only place that reads argv.

One module per group of commands, registered on :func:`main` here:

- :mod:`~waypost.cli.resolve`: ``resolve`` and ``explain`` (what the rules do with a request);
- :mod:`~waypost.cli.serve`: ``serve``, its flags made from :mod:`waypost.server.config`;
- :mod:`~waypost.cli.tools`: ``check``, ``test``, ``trace``, ``import``, ``export``;
- :mod:`~waypost.cli.store`: ``db ...``, ``keys ...``, ``sessions ...`` (the rule store);
- :mod:`~waypost.cli.stats`: ``stats ...`` (the store's analytics: hits per rule, paths answered
  404), on the store commands' ``--db`` option and helpers;
- :mod:`~waypost.cli._report` (errors for people) and :mod:`~waypost.cli._files` (output files,
  imports into the store), which they share.

Exit codes: 0 success; 1 the rules have errors (or ``check`` found problems); 2 a usage mistake
(bad flag, unreadable header). A user mistake never shows a traceback.
"""

from __future__ import annotations

import sys

import click

from waypost.cli.resolve import explain_command, resolve_command
from waypost.cli.serve import serve_command
from waypost.cli.stats import stats_group
from waypost.cli.store import db_group, keys_group, sessions_group
from waypost.cli.tools import (
    check_command,
    export_command,
    import_command,
    test_command,
    trace_command,
)
from waypost.exceptions import WaypostError

__all__ = ["main", "run", "version_text"]


def version_text() -> str:
    """``waypost --version``: the version, the Python running it, and whether the compiled
    store (``waypost._plainstore``) is in use, or why not."""
    import importlib
    import platform

    import waypost

    try:
        importlib.import_module("waypost._plainstore")
        compiled = "compiled store: in use"
    except ImportError:
        compiled = (
            "compiled store: not built (no C compiler when installed): pure Python, the same "
            "answers with more memory at a million rules"
        )
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"waypost {waypost.__version__} (Python {python}; {compiled})"


def _show_version(context: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not context.resilient_parsing:
        click.echo(version_text())
        context.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version, the Python and whether the compiled store is in use.",
)
def main() -> None:
    """Waypost: redirects and rewrites, declared, tested and fast."""


for _command in (
    resolve_command,
    explain_command,
    serve_command,
    check_command,
    test_command,
    trace_command,
    import_command,
    export_command,
    db_group,
    keys_group,
    sessions_group,
    stats_group,
):
    main.add_command(_command)


def run() -> None:
    """The ``waypost`` console script and ``python -m waypost``: :func:`main`, with any
    WaypostError a command did not turn into a message shown as one line (exit 1)."""
    try:
        main(standalone_mode=True)
    except WaypostError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
