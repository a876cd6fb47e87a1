"""Progress bars of the long commands: shown on a terminal only, never with --quiet, and the
commands' output the same either way."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from waypost.cli import _progress, main
from waypost.cli._progress import progress_bar, shows_progress, stage_bars


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Closed(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


@pytest.mark.parametrize(
    ("stream", "quiet", "shown"),
    [
        (Terminal(), False, True),
        (Terminal(), True, False),
        (io.StringIO(), False, False),
        (Closed(), False, False),
        (object(), False, False),
    ],
    ids=["terminal", "terminal-quiet", "pipe", "closed", "no-isatty"],
)
def test_a_bar_is_shown_on_a_terminal_only_and_never_quiet(
    stream: object, quiet: bool, shown: bool
) -> None:
    assert shows_progress(stream, quiet=quiet) is shown  # type: ignore[arg-type]


def test_a_bar_counts_the_rows_done_with_an_estimate() -> None:
    stream = Terminal()
    with progress_bar("rules.csv: checking", 3000, stream=stream) as advance:
        for _ in range(3):
            advance(1000)
    text = stream.getvalue()
    assert "rules.csv: checking" in text
    assert "3000/3000" in text


@pytest.mark.parametrize(
    ("stream", "quiet"),
    [(io.StringIO(), False), (Terminal(), True)],
    ids=["pipe", "quiet"],
)
def test_nothing_is_written_off_a_terminal_or_with_quiet(stream: io.StringIO, quiet: bool) -> None:
    with progress_bar("rules.csv: checking", 10, stream=stream, quiet=quiet) as advance:
        advance(10)
    with stage_bars("rules.csv", stream=stream, quiet=quiet) as report:
        report("writing", 10, 10)
    assert stream.getvalue() == ""


def test_each_stage_gets_its_own_bar() -> None:
    stream = Terminal()
    with stage_bars("big.csv", stream=stream) as report:
        report("checking", 0, 5)
        report("checking", 5, 5)
        report("writing", 4, 10)
        report("writing", 10, 10)
    text = stream.getvalue()
    assert "big.csv: checking" in text
    assert "5/5" in text
    assert "big.csv: writing" in text
    assert "10/10" in text
    assert text.index("big.csv: checking") < text.index("big.csv: writing")


def _as_if_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # CliRunner's stderr is no terminal: decide as a terminal would (click then writes the
    # bar's label once, as it does on a stream it cannot redraw).
    monkeypatch.setattr(_progress, "shows_progress", lambda stream=None, *, quiet=False: not quiet)


@pytest.fixture
def csv_rules(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    rows = "".join(f"/old/{n},/new/{n},301\n" for n in range(50))
    path.write_text("from,to,status\n" + rows, encoding="utf-8")
    return path


@pytest.mark.parametrize(("quiet", "shown"), [(False, True), (True, False)], ids=["bar", "quiet"])
def test_db_import_shows_its_progress_unless_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, csv_rules: Path, quiet: bool, shown: bool
) -> None:
    _as_if_on_a_terminal(monkeypatch)
    db = f"sqlite:///{tmp_path / 'rules.db'}"
    args = ["db", "import", str(csv_rules), "--db", db] + (["--quiet"] if quiet else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert ("big.csv: writing" in result.stderr) is shown
    assert "50 rules imported as revision 1" in result.stdout


def test_db_import_off_a_terminal_shows_no_bar(tmp_path: Path, csv_rules: Path) -> None:
    db = f"sqlite:///{tmp_path / 'rules.db'}"
    result = CliRunner().invoke(main, ["db", "import", str(csv_rules), "--db", db])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


@pytest.mark.parametrize(("quiet", "shown"), [(False, True), (True, False)], ids=["bar", "quiet"])
def test_check_test_import_and_export_show_their_progress_unless_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, csv_rules: Path, quiet: bool, shown: bool
) -> None:
    _as_if_on_a_terminal(monkeypatch)
    flag = ["--quiet"] if quiet else []
    cases = tmp_path / "cases.csv"
    cases.write_text("method,url,status,location\nGET,/old/1,301,/new/1\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'rules.db'}"
    runs = {
        "checking": ["check", str(csv_rules), *flag],
        "testing": ["test", str(csv_rules), str(cases), *flag],
        "writing": ["import", str(csv_rules), "--db", db, *flag],
        "reading": ["db", "export", "--db", db, *flag],
    }
    for label, args in runs.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert (f": {label}" in result.stderr) is shown, (args, result.stderr)
