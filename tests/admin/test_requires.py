"""A missing extra is one line saying what to install, for the admin app and for `waypost serve
--db`, which serves it (tried in a fresh interpreter where the package cannot be imported)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from waypost.admin._requires import REQUIRED

# Makes ``blocked`` unimportable in the child, as if it were not installed.
_BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""


def run(blocked: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = _BLOCK.format(blocked=blocked) + code
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(("module", "distribution"), sorted(REQUIRED.items()))
def test_importing_the_admin_app_names_the_extra(module: str, distribution: str) -> None:
    result = run(module, "import waypost.admin")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"ImportError: the admin page and API need {distribution}: pip install "
        "'waypost[admin]' (waypost[server] brings it)"
    )


def test_serve_with_a_store_says_what_to_install_without_a_traceback(tmp_path: Path) -> None:
    code = "from waypost.cli import run; sys.argv = ['waypost'] + sys.argv[1:]; run()"
    db = f"sqlite:///{tmp_path / 'w.db'}"
    result = run("fastapi", code, "serve", "--db", db, "--port", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "the admin page and API need fastapi: pip install 'waypost[admin]'" in result.stderr
