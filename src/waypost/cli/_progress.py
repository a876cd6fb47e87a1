"""Progress bars for the long commands (``import``, ``db import``, ``db export``, ``check``,
``test``): click's bar on standard error, with the rows done and an estimate of the time left.

A bar is shown only to a person watching: when standard error is a terminal and ``--quiet`` was
not given. In a pipe, a log or CI, nothing is written (a bar redrawn there is noise), and the
output on standard output is the same either way. The decision takes the stream, so that it is
tested without a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

import click

__all__ = ["Advance", "progress_bar", "quiet_option", "shows_progress", "stage_bars"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Called with the number of rows done since the last call.
Advance = Callable[[int], None]

quiet_option: Callable[[_F], _F] = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress bar (it is shown only when standard error is a terminal).",
)


def _ignore(done: int) -> None:
    """The ``advance`` of a bar that is not shown."""


def shows_progress(stream: TextIO | None = None, *, quiet: bool = False) -> bool:
    """Whether a long command shows its progress on ``stream`` (standard error by default):
    only on a terminal, and never with ``--quiet``."""
    if quiet:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False


@contextmanager
def progress_bar(
    label: str, length: int, *, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[Advance]:
    """A bar of ``length`` rows labelled ``label`` on ``stream`` (standard error); yields the
    function that advances it by a number of rows. Shown only when :func:`shows_progress`
    says so; otherwise the function does nothing and nothing is written."""
    stream = sys.stderr if stream is None else stream
    if length <= 0 or not shows_progress(stream, quiet=quiet):
        yield _ignore
        return
    bar: Any = click.progressbar(
        length=length,
        label=label,
        file=stream,
        show_pos=True,
        show_eta=True,
        show_percent=True,
    )
    with bar:
        yield bar.update


@contextmanager
def stage_bars(
    label: str, *, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[Callable[[str, int, int], None]]:
    """A bar per stage of a long operation that reports ``(stage, done, total)`` (the store's
    import: ``checking``, then ``writing``): each stage gets its own bar, ``label: stage``,
    when its first report comes. Nothing is shown when :func:`shows_progress` says no."""
    stream = sys.stderr if stream is None else stream
    if not shows_progress(stream, quiet=quiet):
        yield _ignore_stage
        return
    current: dict[str, Any] = {}

    def close() -> None:
        bar = current.pop("bar", None)
        if bar is not None:
            bar.__exit__(None, None, None)

    def report(stage: str, done: int, total: int) -> None:
        if current.get("stage") != stage:
            close()
            current["stage"] = stage
            if total > 0:
                bar: Any = click.progressbar(
                    length=total, label=f"{label}: {stage}", file=stream, show_pos=True
                )
                bar.__enter__()
                current["bar"] = bar
                current["done"] = 0
        bar = current.get("bar")
        if bar is not None and done > current["done"]:
            bar.update(done - current["done"])
            current["done"] = done

    try:
        yield report
    finally:
        close()


def _ignore_stage(stage: str, done: int, total: int) -> None:
    """The report of a stage no bar shows."""
