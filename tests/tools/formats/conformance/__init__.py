"""The peers' own redirect-parser tests as Waypost's conformance suite (issue #14).

``tests/data/peer-formats/`` holds them as data, copied from ``../shared/peer-formats`` (its
README names each source and commit). Each suite module turns its peer's tests into
:class:`~._harness.Case`\\ s; ``test_conformance.py`` runs them all and fails on any case that
neither agrees with the peer nor is refused or skipped with a reason. ``python -m
tests.tools.formats.conformance`` prints the per-suite figures docs/migrations.md gives.
"""

from __future__ import annotations

from ._harness import Case
from .cloudflare import bulk_cases, pages_parse_cases, pages_runtime_cases
from .netlify import netlify_cases
from .vercel import superstatic_cases, transformed_cases

__all__ = ["all_cases"]


def all_cases() -> list[Case]:
    """Every case of every suite, in suite order."""
    return [
        *netlify_cases(),
        *pages_parse_cases(),
        *pages_runtime_cases(),
        *bulk_cases(),
        *superstatic_cases(),
        *transformed_cases(),
    ]
