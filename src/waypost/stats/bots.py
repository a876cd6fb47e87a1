"""Is a user agent a bot? The `crawlerdetect` package's verdict, cached.

`crawlerdetect <https://pypi.org/project/crawlerdetect/>`_ is the Python port of the maintained
CrawlerDetect list (PHP, JavaScript, Go and Python share its patterns): over a thousand crawlers,
tools and HTTP clients, with exclusions for browsers that look like them. It is an optional
dependency (``pip install 'waypost[stats]'``); without it every verdict is None, "not known".
Telling bots apart is the list maintainers' job, so there is no home-made pattern here to fall back
on.

Its check runs two large regular expressions over the user agent: about 100 microseconds for a
browser's, but some 25 microseconds per character of letters it does not know (7 ms for 256 random
ones). So verdicts are cached per user-agent string, a site seeing few distinct ones, in a bounded
cache (emptied when full); and :class:`~waypost.stats.notfound.NotFoundLog` asks for them off the
request path, a bounded number per drain.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BotDetector"]


def _crawlerdetect() -> Any:
    try:
        from crawlerdetect import CrawlerDetect
    except ImportError:
        return None
    return CrawlerDetect()


class BotDetector:
    """``is_bot(user_agent)``: True for a crawler, False for a browser, None when not known (no
    user agent, or no crawlerdetect installed).

    ``cache_size`` bounds the verdicts kept; crawlerdetect keeps its own cache besides
    (``CrawlerDetect.CACHE_SIZE`` strings). Safe to share between threads: the cache is one dict
    read and written in single steps, and crawlerdetect returns its verdict without reading back
    its shared state.
    """

    __slots__ = ("_cache", "_detector", "cache_size")

    def __init__(self, cache_size: int = 4096) -> None:
        self.cache_size = cache_size
        self._cache: dict[str, bool] = {}
        self._detector = _crawlerdetect()

    def __repr__(self) -> str:
        return f"BotDetector(cache_size={self.cache_size!r})"

    @property
    def available(self) -> bool:
        """Whether crawlerdetect is installed, so verdicts can be known."""
        return self._detector is not None

    @property
    def library_cache_size(self) -> int:
        """How many user agents crawlerdetect caches itself (the strings it is given: ours)."""
        return 0 if self._detector is None else int(self._detector.CACHE_SIZE)

    def cached(self, user_agent: str) -> bool | None:
        """The verdict on ``user_agent`` if one is cached, else None: no pattern is run."""
        return self._cache.get(user_agent)

    def is_bot(self, user_agent: str | None) -> bool | None:
        """The verdict on ``user_agent``; None without one (an empty header says nothing: the
        library answers False to it only because it has nothing to match)."""
        if not user_agent or self._detector is None:
            return None
        verdict = self._cache.get(user_agent)
        if verdict is None:
            if user_agent.isspace():
                return None
            verdict = bool(self._detector.is_crawler(user_agent))
            cache = self._cache
            if len(cache) >= self.cache_size:
                cache.clear()
            if self.cache_size:
                cache[user_agent] = verdict
        return verdict
