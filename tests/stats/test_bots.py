"""waypost.stats.bots: crawlerdetect's verdict on real user agents, cached and bounded."""

from __future__ import annotations

import sys

import pytest

from waypost.stats.bots import BotDetector

pytest.importorskip("crawlerdetect")

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html) Chrome/120.0.6099.216 Safari/537.36",
            True,
        ),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", True),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0)", True),
        # Command-line clients and HTTP libraries count as bots in crawlerdetect's list.
        ("curl/8.5.0", True),
        ("Wget/1.21.4", True),
        ("python-requests/2.31.0", True),
        (CHROME, False),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", False),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            False,
        ),
        (CHROME + " Edg/120.0.0.0", False),
        (None, None),
        ("", None),
        ("   ", None),
    ],
    ids=[
        "googlebot",
        "googlebot-smartphone",
        "bingbot",
        "ahrefs",
        "gptbot",
        "curl",
        "wget",
        "requests",
        "chrome",
        "firefox",
        "safari-ios",
        "edge",
        "none",
        "empty",
        "blank",
    ],
)
def test_verdicts_on_real_user_agents(user_agent: str | None, bot: bool | None) -> None:
    detector = BotDetector()
    assert detector.available
    assert detector.is_bot(user_agent) is bot
    assert detector.is_bot(user_agent) is bot  # from the cache


def test_the_cache_stays_bounded() -> None:
    detector = BotDetector(cache_size=3)
    for n in range(20):
        assert detector.is_bot(f"{CHROME} build/{n}") is False
        assert len(detector._cache) <= 3


def test_without_crawlerdetect_every_verdict_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "crawlerdetect", None)  # makes the import fail
    detector = BotDetector()
    assert not detector.available
    assert detector.is_bot("curl/8.5.0") is None
    assert detector.library_cache_size == 0


def test_what_is_cached() -> None:
    detector = BotDetector()
    assert detector.cached("curl/8.5.0") is None
    assert detector.is_bot("curl/8.5.0") is True
    assert detector.cached("curl/8.5.0") is True
    assert detector.library_cache_size == 1024
    assert BotDetector(cache_size=0).is_bot("curl/8.5.0") is True


def test_repr() -> None:
    assert repr(BotDetector(10)) == "BotDetector(cache_size=10)"
