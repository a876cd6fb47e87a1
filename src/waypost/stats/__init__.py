"""Analytics, the sans-io core: what each rule does, and what visitors ask for that nothing answers.

- :class:`RuleHits` counts hits per rule (count, first and last hit, hits per hour) on the request
  path without a lock, and drains them as :class:`RuleHitDelta` increments
  (:mod:`waypost.stats.rules`);
- :class:`NotFoundLog` aggregates 404s by path in bounded memory (Space-Saving top-k, referrers,
  user agents, bot counts by crawlerdetect, a noise filter) and drains them as a
  :class:`NotFoundDrain` (:mod:`waypost.stats.notfound`).

Both are in-memory values with no I/O: the server and the middlewares record into them through a
:class:`StatsSink` (:mod:`waypost.stats.sink`), and a flusher hands their drains to the store.
Drains are increments, so those of many workers and instances add up (:func:`merge_rule_deltas`,
:func:`merge_not_found`). Bot verdicts need the ``stats`` extra (``pip install
'waypost[stats]'``, crawlerdetect).
"""

from __future__ import annotations

from waypost.stats.bots import BotDetector
from waypost.stats.noise import DEFAULT_NOISE, NoiseFilter
from waypost.stats.notfound import NotFoundDelta, NotFoundDrain, NotFoundLog, merge_not_found
from waypost.stats.rules import RuleHitDelta, RuleHits, merge_rule_deltas
from waypost.stats.sink import StatsSink

__all__ = [
    "DEFAULT_NOISE",
    "BotDetector",
    "NoiseFilter",
    "NotFoundDelta",
    "NotFoundDrain",
    "NotFoundLog",
    "RuleHitDelta",
    "RuleHits",
    "StatsSink",
    "merge_not_found",
    "merge_rule_deltas",
]
