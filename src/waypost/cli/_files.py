"""What ``waypost import``, ``waypost export`` and ``waypost db ...`` share: writing a file the
user named (never over an existing one without ``--force``) and importing rules into the store
(saying what the import did and how to undo it; never deleting more than it keeps without
``--yes``).

Exit codes: 1 the store refused (a replace that needs ``--yes``); 2 a usage mistake (an output
file that exists, without ``--force``). Every refusal is one line that says how to go ahead.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from waypost.cli._progress import stage_bars
from waypost.cli._report import fail
from waypost.exceptions import ConfirmationError
from waypost.store import open_store
from waypost.store.model import ImportMode, ImportOutcome
from waypost.store.postgres import redact_url

__all__ = [
    "check_output",
    "import_into_store",
    "mode_option",
    "write_atomically",
    "write_output",
    "yes_option",
]

mode_option = click.option(
    "--mode",
    type=click.Choice(["merge", "append", "replace"]),
    default="merge",
    show_default=True,
    help=(
        "merge: put the file's rules into the store's (a rule with the same name, or the same from "
        "and conditions, is replaced in place; nothing is deleted); append: add them at the end; "
        "replace: the store's rules become exactly the file's."
    ),
)
yes_option = click.option(
    "--yes",
    is_flag=True,
    help="--mode replace: go ahead even when it deletes more rules than it keeps.",
)


def check_output(path: str | None, *, force: bool) -> None:
    """Refuse (exit 2, one line) to go on when ``path`` exists and ``force`` is not given: called
    before any work, so that nothing is done for an output that will be refused."""
    if path is not None and not force and os.path.lexists(path):
        fail(f"{path} already exists; add --force to overwrite it", 2)


def write_atomically(path: str | Path, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` through a temporary file: a reader (or a crash) sees the old
    file or the new one, never half of it. The file's mode is kept.

    With ``overwrite=False`` an existing file is left alone (FileExistsError): the new file is
    put in place with a hard link, which fails when the name is taken, so a file that appears
    meanwhile is not overwritten either.
    """
    target = Path(path)
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(target.stat().st_mode)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        if overwrite:
            os.replace(temporary, target)
            return
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: check, then rename
            if os.path.lexists(target):
                raise FileExistsError(str(target)) from None
            os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_output(path: str, text: str, *, force: bool) -> None:
    """Write ``text`` to the file the user named: atomically, and over an existing file only
    with ``force`` (exit 2 otherwise)."""
    try:
        write_atomically(path, text, overwrite=force)
    except FileExistsError:
        fail(f"{path} already exists; add --force to overwrite it", 2)
    except OSError as exc:
        fail(f"{path}: cannot write the file: {exc.strerror}", 1)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def import_into_store(
    db: str,
    rules: Sequence[Mapping[str, Any]],
    *,
    defaults: Mapping[str, Any] | None,
    allowed_hosts: Sequence[str] | None,
    mode: ImportMode,
    yes: bool,
    dry_run: bool,
    message: str,
    source: str,
    err: bool = False,
    order: str | None = None,
    proxy_hosts: Sequence[str] | None = None,
    guards: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> ImportOutcome:
    """Import ``rules`` into the store ``db`` in ``mode`` and say what it did (on stderr with
    ``err``): the counts, the revision and the ``waypost db rollback`` command that undoes it.
    Its progress is shown on a terminal unless ``quiet`` (see :mod:`waypost.cli._progress`).

    A replace that deletes more stored rules than it keeps stops with exit 1 and the counts,
    unless ``yes``. Store errors propagate (the caller turns them into messages).
    """
    shown = redact_url(db)
    with open_store(db) as store:

        def run(confirm: int | None) -> ImportOutcome:
            with stage_bars(source, quiet=quiet) as progress:
                return store.import_rules(
                    rules,
                    mode=mode,
                    defaults=defaults,
                    allowed_hosts=allowed_hosts,
                    proxy_hosts=proxy_hosts,
                    guards=guards,
                    order=order,
                    confirm_deletes=confirm,
                    dry_run=dry_run,
                    message=message,
                    progress=progress,
                )

        try:
            outcome = run(None)
        except ConfirmationError as exc:
            if not yes:
                fail(
                    f"{source}: --mode replace deletes {_plural(exc.deleted, 'stored rule')} "
                    f"and keeps {exc.kept}; nothing was written: add --yes to delete "
                    f"{_plural(exc.deleted, 'rule')} and keep {exc.kept} (or use --mode merge, "
                    "which deletes nothing)",
                    1,
                )
            try:
                outcome = run(exc.deleted)
            except ConfirmationError as again:
                fail(
                    f"{source}: the store changed while importing (the replace now deletes "
                    f"{_plural(again.deleted, 'rule')}); nothing was written: run the command "
                    "again",
                    1,
                )
    count = _plural(len(rules), "rule")
    if dry_run:
        click.echo(
            f"{source}: {count}; --mode {mode} would make {outcome.summary()} "
            "(dry run: nothing written)",
            err=err,
        )
    elif outcome.revision is None:
        if not rules and mode != "replace":
            what = f"the file has no rules, so --mode {mode} changes nothing"
        else:
            what = f"{count}, no changes"
        click.echo(
            f"{source}: {what}; the store stays at revision {outcome.previous_revision} "
            f"({_plural(outcome.kept, 'rule')})",
            err=err,
        )
    else:
        click.echo(
            f"{source}: {count} imported as revision {outcome.revision.number} "
            f"({outcome.summary()}; --mode {mode}); undo it with: "
            f"waypost db rollback {outcome.previous_revision} --db {shown}",
            err=err,
        )
    return outcome
