"""Analytics, the sans-io core: what each rule does, and what visitors ask for that nothing answers.

- :class:`RuleHits` counts hits per rule (count, first and last hit, hits per hour) on the request
  path without a lock, and drains them as :class:`RuleHitDelta` increments
  (:mod:`waypost.stats.rules`);
- which paths are noise (:mod:`waypost.stats.noise`) and whether a user agent is a bot
  (:mod:`waypost.stats.bots`, the ``stats`` extra: ``pip install 'waypost[stats]'``).

In-memory values with no I/O: the server and the middlewares record into them, and a flusher hands
their drains to the store. Drains are increments, so those of many workers and instances add up
(:func:`merge_rule_deltas`).
"""

from __future__ import annotations

from waypost.stats.bots import BotDetector
from waypost.stats.noise import DEFAULT_NOISE, NoiseFilter
from waypost.stats.rules import RuleHitDelta, RuleHits, merge_rule_deltas

__all__ = [
    "DEFAULT_NOISE",
    "BotDetector",
    "NoiseFilter",
    "RuleHitDelta",
    "RuleHits",
    "merge_rule_deltas",
]
