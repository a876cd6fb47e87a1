"""``manage.py waypost COMMAND ...``: Waypost's command line, with the project's rules file.

A thin door onto ``waypost`` (:mod:`waypost.cli`): ``manage.py waypost check`` is ``waypost
check RULES`` with ``RULES`` from ``settings.WAYPOST["RULES"]`` (or ``--rules FILE`` before the
command), and so are ``resolve``, ``explain``, ``trace``, ``test`` and ``export``; every other
argument is passed on as written (``manage.py waypost resolve /old --json``). ``manage.py
waypost import`` without a file reads the project's own ``django.contrib.redirects`` rows (and
the sites they belong to) from the database, as ``dumpdata`` would write them, through the
``django-redirects`` importer; with a file it is ``waypost import FILE``. The exit status is
the command's: 1 when the rules have errors, 2 for a usage mistake.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, ClassVar

import click
from django.apps import apps  # type: ignore[import-untyped]
from django.core import serializers  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.management.base import (  # type: ignore[import-untyped]
    BaseCommand,
    CommandError,
)

from waypost.cli import main as waypost_main
from waypost.cli.tools import import_command
from waypost.contrib.django._config import django_routes, waypost_settings
from waypost.engine import Engine
from waypost.exceptions import WaypostError

__all__ = ["RULES_FIRST", "Command"]

#: The commands whose first argument is the rules file.
RULES_FIRST = frozenset({"check", "resolve", "explain", "trace", "test", "export"})


class _Stream(io.TextIOBase):
    """A text stream writing to a command's ``self.stdout`` / ``self.stderr`` exactly as given
    (Django's OutputWrapper would end every write with a newline)."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> int:
        self.wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self.wrapper.flush()


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type information
    """``manage.py waypost``; see the module docstring."""

    help = (
        "Waypost's command line with the project's rules file: check, resolve, explain, trace, "
        "test, import, export (manage.py waypost COMMAND --help for each)."
    )
    # The rules are what it checks: it must run when the system checks fail on them.
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``[--rules FILE] COMMAND [ARGUMENTS...]``."""
        parser.add_argument("--rules", help="The rules file (default: settings.WAYPOST['RULES']).")
        parser.add_argument(
            "--database",
            default="default",
            help="With 'import' and no file: the database to read the redirects from.",
        )
        parser.add_argument("command", metavar="COMMAND", help="check, resolve, import, ...")
        parser.add_argument(
            "arguments", nargs=argparse.REMAINDER, help="Passed on to 'waypost COMMAND'."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run ``waypost COMMAND`` with the rules file put in."""
        command: str = options["command"]
        arguments: list[str] = list(options["arguments"])
        with tempfile.TemporaryDirectory(prefix="waypost-") as scratch:
            if command in RULES_FIRST and not (command == "export" and "--db" in arguments):
                arguments = [self._rules(options["rules"]), *arguments]
            elif command == "import" and _import_file(arguments) is None:
                dump = self._database_dump(Path(scratch), options["database"])
                arguments = [dump, *arguments]
                if "--format" not in arguments:
                    arguments += ["--format", "django-redirects"]
            self._run([command, *arguments])

    def _rules(self, given: str | None) -> str:
        if given:
            return given
        try:
            rules = waypost_settings().rules
        except ImproperlyConfigured as exc:
            raise CommandError(f"{exc}; or pass --rules FILE") from None
        if isinstance(rules, Engine):
            raise CommandError(
                "settings.WAYPOST['RULES'] is an Engine, not a file: pass --rules FILE"
            )
        return str(rules)

    def _database_dump(self, folder: Path, database: str) -> str:
        """The ``django.contrib.redirects`` rows and their sites in ``database``, as
        ``dumpdata`` JSON in ``folder``; the file's path."""
        if not apps.is_installed("django.contrib.redirects"):
            raise CommandError(
                "'import' without a file reads django.contrib.redirects, which is not in "
                "INSTALLED_APPS: give a file (manage.py waypost import FILE)"
            )
        redirect = apps.get_model("redirects", "Redirect")
        site = apps.get_model("sites", "Site")
        sites = list(site.objects.using(database).order_by("pk"))
        redirects = list(redirect.objects.using(database).order_by("pk"))
        rows = [*sites, *redirects]
        path = folder / "django.contrib.redirects.json"
        path.write_text(serializers.serialize("json", rows, indent=2), encoding="utf-8")
        self.stderr.write(
            f"read {len(redirects)} redirects of django.contrib.redirects from the database"
        )
        return str(path)

    def _run(self, argv: list[str]) -> None:
        out, err = _Stream(self.stdout), _Stream(self.stderr)
        code: Any = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                # Route targets are built by the project's reverse(), as the middleware does.
                waypost_main.main(
                    args=argv,
                    prog_name="manage.py waypost",
                    standalone_mode=True,
                    obj={"routes": django_routes},
                )
            except SystemExit as exc:
                code = exc.code
            except WaypostError as exc:  # as 'waypost' itself reports one (waypost.cli.run)
                click.echo(f"error: {exc}", err=True)
                code = 1
        if code not in (0, None):
            raise CommandError(
                f"waypost {argv[0]} exited with status {code}",
                returncode=code if isinstance(code, int) else 1,
            )


def _import_file(arguments: list[str]) -> str | None:
    """The FILE of ``waypost import`` in ``arguments``, None when none is given."""
    with redirect_stderr(io.StringIO()):  # a usage mistake is reported when the command runs
        try:
            context = import_command.make_context("import", list(arguments), resilient_parsing=True)
        except click.ClickException:
            return None
    file: str | None = context.params.get("file")
    return file
