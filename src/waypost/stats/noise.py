"""Paths whose 404s are never worth a look: the not-found log ignores them.

:data:`DEFAULT_NOISE` is the list a site starts with; the user can replace or extend it. Each
entry is an :mod:`fnmatch` glob matched against the whole path (``*`` matches ``/`` too, ``?`` one
character, ``[...]`` a set), case-sensitively as paths are. Why each default is noise:

- ``/favicon.ico``: browsers ask for it by themselves on every site, linked or not;
- ``/apple-touch-icon*``: Safari and iOS ask for ``/apple-touch-icon.png``, the ``-precomposed``
  and the sized variants by themselves, in that order, until one answers;
- ``/.well-known/*``: RFC 8615 locations that clients and tools probe (``security.txt``,
  ``change-password``, app links, ACME): a 404 there is an answer, not a broken link;
- ``*.map``: source maps, asked for only by a browser's developer tools when a script names one;
- ``/robots.txt``: asked for by every crawler, and a 404 is a valid answer ("crawl everything",
  RFC 9309 section 2.3.1.3).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from waypost.exceptions import SettingsError

__all__ = ["DEFAULT_NOISE", "NoiseFilter"]

DEFAULT_NOISE: tuple[str, ...] = (
    "/favicon.ico",
    "/apple-touch-icon*",
    "/.well-known/*",
    "*.map",
    "/robots.txt",
)

_MAGIC = frozenset("*?[")


class NoiseFilter:
    """Tells whether a path is noise: ``path in noise``.

    The globs are compiled once: plain paths go into a set, the rest into one regular expression,
    so a check is a set look-up and at most one match, however long the list.
    """

    __slots__ = ("_exact", "_pattern", "globs")

    def __init__(self, globs: Iterable[str] = DEFAULT_NOISE) -> None:
        self.globs = tuple(globs)
        for glob in self.globs:
            if not glob.startswith(("/", "*", "?", "[")):
                raise SettingsError(
                    f"the noise path {glob!r} can never match: a path starts with '/' "
                    f"(did you mean {'/' + glob!r}?)"
                )
        self._exact = frozenset(g for g in self.globs if not _MAGIC & set(g))
        wild = [fnmatch.translate(g) for g in self.globs if _MAGIC & set(g)]
        self._pattern = re.compile("|".join(wild)) if wild else None

    def __repr__(self) -> str:
        return f"NoiseFilter({list(self.globs)!r})"

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        if path in self._exact:
            return True
        return self._pattern is not None and self._pattern.match(path) is not None
