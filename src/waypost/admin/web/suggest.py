"""Where a path that answered 404 most likely moved to: the rule targets of the stored rules
closest to it, by rapidfuzz's similarity of the paths (the last segments weigh most: ``/blog/
old-title`` is near ``/articles/old-title``).

The targets of a revision are gathered once and kept until the store's revision moves.
"""

from __future__ import annotations

import threading

from rapidfuzz import fuzz, process, utils

from waypost.admin.service import EngineCache
from waypost.rules.model import Redirect, Rewrite

__all__ = ["TargetIndex"]

#: Targets below this similarity (0 to 100) are not suggested.
MIN_SCORE = 50.0


class TargetIndex:
    """The distinct literal targets of the stored rules (a target with ``{placeholders}`` is a
    template, not a page), per revision."""

    def __init__(self, engines: EngineCache) -> None:
        self._engines = engines
        self._lock = threading.Lock()
        self._revision = -1
        self._targets: list[str] = []

    def targets(self) -> list[str]:
        """The targets at the store's current revision."""
        resolved = self._engines.get()
        with self._lock:
            if resolved.revision != self._revision:
                seen: dict[str, None] = {}
                for rule in resolved.engine.rules:
                    action = rule.action
                    if isinstance(action, Redirect | Rewrite):
                        text = action.text
                        if "{" not in text:
                            seen[text] = None
                self._targets = list(seen)
                self._revision = resolved.revision
            return self._targets

    def suggest(self, path: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` targets most like ``path``, best first."""
        if not path:
            return []
        found = process.extract(
            path,
            self.targets(),
            scorer=fuzz.WRatio,
            processor=utils.default_process,
            limit=limit,
            score_cutoff=MIN_SCORE,
        )
        return [choice for choice, _score, _index in found]
