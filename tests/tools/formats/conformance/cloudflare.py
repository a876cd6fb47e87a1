"""Cloudflare's cases: Pages ``_redirects`` (workers-sdk's parser and handler tests) and Bulk
Redirects CSV (the examples of Cloudflare's documentation). Both files state the requests and
the answers, so the cases are read as they are."""

from __future__ import annotations

import json

from ._harness import DATA, Case, ask_from

__all__ = ["bulk_cases", "pages_runtime_cases"]


def pages_runtime_cases() -> list[Case]:
    """The handler and rules-engine tests: a ``_redirects`` file and the answers asserted."""
    data = json.loads((DATA / "cloudflare-pages" / "cases.json").read_text(encoding="utf-8"))
    return [
        Case(
            "cloudflare-pages",
            entry["test"],
            "_redirects",
            entry["input"],
            tuple(ask_from(ask) for ask in entry["requests"]),
            format="cloudflare-pages",
        )
        for entry in data["runtime"]
    ]


def bulk_cases() -> list[Case]:
    """The documentation's examples, each a CSV file and the redirects it makes."""
    data = json.loads((DATA / "cloudflare-bulk" / "docs_cases.json").read_text(encoding="utf-8"))
    return [
        Case(
            "cloudflare-bulk",
            entry["test"],
            entry.get("file") or "redirects.csv",
            entry["input"],
            tuple(ask_from(ask) for ask in entry["requests"]),
            format=None if entry.get("file") else "cloudflare",
        )
        for entry in data["cases"]
    ]
