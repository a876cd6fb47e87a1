"""Every example in the README and in the documentation pages made from it (docs/, in the
order of the README they came from) is exercised here.

- a ```yaml or ```csv block preceded by ``<!-- file: NAME -->`` is written to NAME (the block
  naming examples/rules.yaml must equal the shipped file);
- a ```console block: each ``$ waypost ...`` line is run and its output must match the lines after
  it exactly (exit codes may be non-zero: ``check`` of a broken file exits 1);
- a ```python block is executed with the files in place.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from waypost.cli import main

ROOT = Path(__file__).parents[1]
#: The documents whose examples run, in order (a file one defines may be used further on).
DOCUMENTS = [
    "README.md",
    *(
        f"docs/{name}.md"
        for name in (
            "server", "rules", "python-api", "migrations", "store", "admin-page", "admin-api",
            "analytics", "middleware", "django", "speed", "development", "coming-from",
        )
    ),
]  # fmt: skip
README = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in DOCUMENTS)
BLOCK = re.compile(r"(?:<!-- file: (?P<file>[^ ]+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def _blocks() -> list[tuple[str, str | None, str]]:
    return [(m["lang"], m["file"], m["body"]) for m in BLOCK.finditer(README)]


def _files() -> dict[str, str]:
    return {name: body for lang, name, body in _blocks() if name}


def _commands() -> list[tuple[str, str]]:
    commands: list[tuple[str, str]] = []
    for lang, _, body in _blocks():
        if lang != "console":
            continue
        current: str | None = None
        output: list[str] = []
        skipping = False
        for line in body.splitlines():
            if line.startswith("$ ") and not line.startswith("$ waypost "):
                # Another program (curl, in the admin API section): tests/admin/test_docs.py
                # replays those.
                if current is not None:
                    commands.append((current, "\n".join(output)))
                current, output = None, []
                skipping = True
                continue
            if line.startswith("$ "):
                skipping = False
                if current is not None:
                    commands.append((current, "\n".join(output)))
                current, output = line[2:], []
            elif not skipping:
                output.append(line)
        if current is not None:
            commands.append((current, "\n".join(output)))
    return commands


#: What the guards example expects of the environment, as a server or an app has it (the app's
#: Flask SECRET_KEY, the JWT shared secret).
GUARD_ENVIRONMENT = {
    "FLASK_SECRET_KEY": "change-me",
    "JWT_SECRET": "a-shared-secret-of-at-least-32-bytes!",
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in GUARD_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name, body in _files().items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_shows_the_shipped_example_file() -> None:
    assert _files()["examples/rules.yaml"] == (ROOT / "examples" / "rules.yaml").read_text()


def test_readme_has_examples() -> None:
    assert len(_commands()) >= 10
    assert sum(1 for lang, _, _ in _blocks() if lang == "python") >= 3


@pytest.mark.parametrize(("command", "expected"), _commands(), ids=[c for c, _ in _commands()])
def test_console_example(workdir: Path, command: str, expected: str) -> None:
    argv = shlex.split(command)
    assert argv[0] == "waypost"
    result = CliRunner().invoke(main, argv[1:])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.output.rstrip("\n") == expected.rstrip("\n")


@pytest.mark.parametrize(
    "code",
    [body for lang, _, body in _blocks() if lang == "python"],
    ids=lambda code: code.strip().splitlines()[-1][:60],
)
def test_python_example(workdir: Path, code: str) -> None:
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


@pytest.mark.parametrize(
    # Another tool's files (peers/, in docs/coming-from.md) are imported, not loaded.
    "name",
    sorted(n for n in _files() if n.endswith((".yaml", ".csv")) and not n.startswith("peers/")),
)
def test_example_files_check_as_shown(workdir: Path, name: str) -> None:
    result = CliRunner().invoke(main, ["check", name])
    # The examples of mistakes must be caught; the others must load cleanly.
    expected = {"broken.yaml": 1, "moves.yaml": 1, "first.yaml": 3}.get(name, 0)
    assert result.exit_code == expected, result.output


#: Pages whose console and Python blocks are sketches, not runnable as they stand (they name a
#: database and keys of the reader's own); the same features are run from the pages above.
SKETCHES = {"docs/guards.md": "a PostgreSQL URL, a made key and a lookup_session() of yours"}


def test_every_page_with_examples_has_them_run() -> None:
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} | {"README.md"}
    with_examples = {
        page
        for page in pages
        if re.search(r"^```(?:console|python)$", (ROOT / page).read_text(), re.M)
    }
    assert with_examples - set(SKETCHES) <= set(DOCUMENTS), with_examples - set(DOCUMENTS)
    assert set(SKETCHES) <= with_examples  # a sketch that became runnable joins DOCUMENTS
