"""House rules the codebase keeps: the public API, the import layers, lint, documented settings."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import waypost
from waypost.server.config import SETTINGS, Settings

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def test_all_matches_the_public_imports() -> None:
    tree = ast.parse((ROOT / "src" / "waypost" / "__init__.py").read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
    }
    assert set(waypost.__all__) == imported | {"__version__"}
    assert list(waypost.__all__) == sorted(waypost.__all__)
    for name in waypost.__all__:
        assert getattr(waypost, name) is not None


def test_public_objects_have_docstrings() -> None:
    for name in waypost.__all__:
        obj = getattr(waypost, name)
        if callable(obj):
            assert obj.__doc__, f"waypost.{name} has no docstring"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in SETTINGS:
        assert setting.env in readme, f"{setting.env} is not in the README"
        assert f"--{setting.name.replace('_', '-')}" in readme
    assert {s.name for s in SETTINGS} == set(Settings.__dataclass_fields__)


def test_settings_come_from_environment_then_flags() -> None:
    settings = Settings.from_env(
        {"WAYPOST_PORT": "9000", "WAYPOST_ACCESS_LOG": "no"}, host="0.0.0.0"
    )
    assert (settings.port, settings.access_log, settings.host) == (9000, False, "0.0.0.0")


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -r requirements/dev.txt)")
    return found


def test_import_layers_hold() -> None:
    proc = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_core_imports_nothing_outside_the_standard_library_but_yaml() -> None:
    allowed = set(sys.stdlib_module_names) | {"yaml", "waypost"}
    for path in [
        *(ROOT / "src" / "waypost" / "rules").glob("*.py"),
        *(ROOT / "src" / "waypost" / "matching").glob("*.py"),
        *(ROOT / "src" / "waypost" / "engine").glob("*.py"),
        ROOT / "src/waypost/decision.py",
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
