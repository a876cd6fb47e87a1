"""Keeping an engine's rules in step with where they come from, on a background thread: a rules
file reloaded when it changes (:mod:`~waypost.follow.reloading`, with its shrink guard) or a
rule store followed revision by revision (:mod:`~waypost.follow.store_sync`), the sources
described by :mod:`~waypost.follow.sources`. The standalone server and the middlewares use the
same followers: an engine is swapped atomically, the last good rules keep serving when a file
does not load or the database is away, and ``degraded`` says why.
"""

from __future__ import annotations

from waypost.follow.reloading import RulesWatcher
from waypost.follow.sources import FileSource, RulesSource, StoreSource
from waypost.follow.store_sync import StoreSync

__all__ = ["FileSource", "RulesSource", "RulesWatcher", "StoreSource", "StoreSync"]
