"""``python -m waypost``: the same as the ``waypost`` command."""

from waypost.cli import run

run()
