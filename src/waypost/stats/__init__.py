"""Analytics, the sans-io core: what each rule does, and what visitors ask for that nothing answers.

So far the parts: which paths are noise (:mod:`waypost.stats.noise`) and whether a user agent is a
bot (:mod:`waypost.stats.bots`, the ``stats`` extra: ``pip install 'waypost[stats]'``).
"""

from __future__ import annotations

from waypost.stats.bots import BotDetector
from waypost.stats.noise import DEFAULT_NOISE, NoiseFilter

__all__ = [
    "DEFAULT_NOISE",
    "BotDetector",
    "NoiseFilter",
]
