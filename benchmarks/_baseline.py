"""``--baseline-src DIR``: run a benchmark on the code of another source tree in the same run.

``DIR`` holds an older ``src/`` tree, the code before a change::

    git archive main src | tar -x -C /tmp/base
    cp src/waypost/_plainstore*.so /tmp/base/src/waypost/   # when _plainstore.c is unchanged
    # otherwise: build it there (python setup.py build_ext --inplace from a full checkout)

A process of the baseline runs with ``DIR/src`` first on its ``PYTHONPATH``, ahead of the editable
install of this tree. The benchmarks then time both trees in the same rounds, so that what a change
costs is measured under the same noise as the change itself (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

HELP = (
    "a source tree (a directory with an older src/ and its built compiled store: "
    "git archive OLD src | tar -x -C DIR) to measure beside this one, in the same run"
)


def add_baseline_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--baseline-src DIR`` option, the same in every benchmark."""
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR", help=HELP)


def checked_baseline_src(path: Path | None) -> Path | None:
    """``path`` made absolute, or exit with a message when it holds no ``src/waypost``."""
    if path is None:
        return None
    path = path.resolve()
    if not (path / "src" / "waypost").is_dir():
        hint = " (give the directory above src/)" if (path / "waypost").is_dir() else ""
        sys.exit(f"--baseline-src {path}: no src/waypost there{hint}")
    if not any((path / "src" / "waypost").glob("_plainstore*.so")):
        print(
            f"warning: --baseline-src {path} has no built _plainstore module: the baseline runs "
            "without the compiled store (copy or build it, see benchmarks/_baseline.py)",
            file=sys.stderr,
            flush=True,
        )
    return path


def tree_env(tree: Path | None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process running the code of ``tree`` (None: the installed tree).

    Waypost's own settings (``WAYPOST_*`` but ``WAYPOST_BENCH*``) are dropped, so that both trees
    run as shipped, whatever the shell that started the benchmark has set.
    """
    out = dict(os.environ if env is None else env)
    for key in [k for k in out if k.startswith("WAYPOST_") and not k.startswith("WAYPOST_BENCH")]:
        del out[key]
    if tree is not None:
        out["PYTHONPATH"] = str(tree / "src")
    return out
