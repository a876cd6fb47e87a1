"""The command group (waypost.cli.main, and ``python -m waypost``): usage mistakes exit 2, and a
user's mistake is a message, never a traceback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from waypost.cli import main

EXAMPLE = str(Path(__file__).parents[2] / "examples" / "rules.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [["resolve", EXAMPLE, "/x", "-H", "no-colon"], ["resolve", EXAMPLE], ["frobnicate"]],
    ids=["bad-header", "missing-url", "unknown-command"],
)
def test_usage_mistakes_exit_2(args: list[str]) -> None:
    code, _ = run(*args)
    assert code == 2


def test_missing_file_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "waypost", "resolve", str(tmp_path / "nope.yaml"), "/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "cannot read the file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_says_the_python_and_whether_the_compiled_store_is_in_use() -> None:
    import platform

    from click.testing import CliRunner

    import waypost
    from waypost.cli import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    line = result.output.strip()
    assert line.startswith(f"waypost {waypost.__version__} (Python ")
    assert platform.python_version() in line
    compiled = importlib.util.find_spec("waypost._plainstore") is not None
    assert ("compiled store: in use" in line) is compiled


def test_serve_with_nothing_to_serve_shows_the_two_ways_to_start() -> None:
    from click.testing import CliRunner

    from waypost.cli import main

    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "waypost serve rules.yaml" in result.output
    assert "waypost serve --db sqlite:///waypost.db" in result.output
