"""Analytics through Redis: the workers of many instances add their counts to Redis, and the
counts are folded into the rule store from time to time (``waypost serve --stats --redis URL``).

:class:`RedisCounters` takes the same two calls a store does for analytics
(:meth:`~RedisCounters.add_rule_hits`, :meth:`~RedisCounters.add_not_found`), so a
:class:`~waypost.store.recorder.StatsRecorder` flushes to it as it would to the store: each flush
is one Lua script, atomic, adding hits and hours and widening first and last seen. Nothing reaches
Redis from the request path: a Redis that is down costs no request, only the flushes, which are
held and retried as for a store (``held``, then ``dropped``, in health and metrics).

:meth:`RedisCounters.fold_into` moves what Redis holds into the store: a script renames the
counters to a batch of their own in one step (so two instances folding at once never take the
same counts), the batch is added to the store, and only then deleted. A batch the store refused
stays in Redis and is folded first next time; a fold that stopped after the store took the batch
but before Redis deleted it adds that batch again at the next fold (at least once, never lost).

Keys are under ``prefix`` (by default ``waypost:stats:`` and a digest of the store's location, so
two sites sharing a Redis keep apart): hashes of rule hits, first and last hit, hours, and of the
404s (hits, bot hits, first and last seen, referrers and user agents, ``other`` by hour).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from waypost.exceptions import StoreError, StoreUnavailable
from waypost.store.base import Store
from waypost.store.stats import NotFoundDelta, RuleHitsDelta

__all__ = ["RedisCounters", "open_redis_counters"]

#: The hashes of one set of counters (a live one, or a batch being folded), by suffix.
_HASHES = (
    "rule:hits",
    "rule:first",
    "rule:last",
    "rule:hours",
    "nf:hits",
    "nf:bots",
    "nf:first",
    "nf:last",
    "nf:sources",
    "nf:other",
)
_SEP = "\x1f"  # between the parts of a field: no path, key or header value holds it

# KEYS: the live hashes, in _HASHES order. ARGV: triples of (hash index, field, value), where
# an index names the operation too: hits add, firsts keep the least, lasts the greatest.
_ADD = """
for i = 1, #ARGV, 3 do
  local k = KEYS[tonumber(ARGV[i])]
  local field, value = ARGV[i + 1], ARGV[i + 2]
  local kind = ARGV[i]
  if kind == '2' or kind == '7' then
    local old = redis.call('HGET', k, field)
    if not old or tonumber(value) < tonumber(old) then redis.call('HSET', k, field, value) end
  elseif kind == '3' or kind == '8' then
    local old = redis.call('HGET', k, field)
    if not old or tonumber(value) > tonumber(old) then redis.call('HSET', k, field, value) end
  else
    redis.call('HINCRBY', k, field, value)
  end
end
return #ARGV / 3
"""

# KEYS: the live hashes, then the batch's (same order), then the batch's lock. Renames those
# that exist and, when there were any, takes the lock (ARGV[1]: its seconds), in one step.
_TAKE = """
local n = (#KEYS - 1) / 2
local taken = 0
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + n])
    taken = taken + 1
  end
end
if taken > 0 then redis.call('SET', KEYS[#KEYS], '1', 'EX', ARGV[1]) end
return taken
"""
# Lock a batch left in Redis (KEYS: its hashes, then its lock) if it is still there: a batch
# the folder that took it has just folded and deleted (hashes and lock in one DEL) must not be
# locked again and counted as folded by another that saw its keys a moment before.
_CLAIM = """
for i = 1, #KEYS - 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('SET', KEYS[#KEYS], '1', 'NX', 'EX', ARGV[1]) then return 1 end
    return 0
  end
end
return 0
"""
#: Seconds a folder holds a batch: past them (it died), another may fold the batch.
LOCK_SECONDS = 300


def _prefix_for(location: str) -> str:
    return "waypost:stats:" + hashlib.sha256(location.encode("utf-8")).hexdigest()[:12] + ":"


class RedisCounters:
    """Analytics counters in Redis at ``url``, under ``prefix``; see the module docstring."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self.prefix = prefix
        self._add = client.register_script(_ADD)
        self._take = client.register_script(_TAKE)
        self._claim = client.register_script(_CLAIM)

    def __repr__(self) -> str:
        return f"RedisCounters(prefix={self.prefix!r})"

    def _keys(self, batch: str | None = None) -> list[str]:
        middle = "" if batch is None else f"batch:{batch}:"
        return [f"{self.prefix}{middle}{name}" for name in _HASHES]

    @contextmanager
    def _reached(self) -> Iterator[None]:
        """Redis's errors as the store's: StoreUnavailable, which a recorder holds a batch for."""
        import redis

        try:
            yield
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {self.prefix!r}: {exc}") from exc

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        with self._reached():
            return script(keys=keys, args=args)

    # -- what a recorder flushes ------------------------------------------------------------

    def add_rule_hits(self, deltas: Sequence[RuleHitsDelta]) -> None:
        """Add one flush of rule hits (one script: all or nothing)."""
        args: list[Any] = []
        for d in deltas:
            args += [1, d.rule_key, d.hits, 2, d.rule_key, repr(d.first)]
            args += [3, d.rule_key, repr(d.last)]
            for hour, hits in d.hours.items():
                args += [4, f"{d.rule_key}{_SEP}{int(hour // 3600) * 3600}", hits]
        if args:
            self._call(self._add, self._keys(), args)

    def add_not_found(
        self, deltas: Sequence[NotFoundDelta], other: int = 0, when: float | None = None
    ) -> None:
        """Add one flush of 404s and ``other`` (in the hour of ``when``; None: now)."""
        args: list[Any] = []
        for d in deltas:
            args += [5, d.path, d.hits, 6, d.path, d.bot_hits, 7, d.path, repr(d.first)]
            args += [8, d.path, repr(d.last)]
            for kind, values in (("referrer", d.referrers), ("user_agent", d.user_agents)):
                for value, hits in values.items():
                    args += [9, f"{d.path}{_SEP}{kind}{_SEP}{value}", hits]
        if other:
            hour = int((time.time() if when is None else when) // 3600) * 3600
            args += [10, str(hour), other]
        if args:
            self._call(self._add, self._keys(), args)

    # -- folding into the store -------------------------------------------------------------

    def fold_into(self, store: Store) -> int:
        """Move what Redis holds (batches left by a fold that failed first) into ``store``;
        the number of batches folded. StoreError when Redis or the store fails (what was not
        added stays in Redis)."""
        start = len(self.prefix) + len("batch:")
        with self._reached():
            left = self._client.scan_iter(match=f"{self.prefix}batch:*", count=100)
            found = {_text(key)[start:].split(":", 1)[0] for key in left}
            # A batch another folder holds (its lock), or has folded since, is not this one's.
            batches = [
                batch
                for batch in sorted(found)
                if self._claim(keys=[*self._keys(batch), self._lock(batch)], args=[LOCK_SECONDS])
            ]
        token = secrets.token_hex(8)
        keys = [*self._keys(), *self._keys(token), self._lock(token)]
        if self._call(self._take, keys, [LOCK_SECONDS]):
            batches.append(token)
        for batch in batches:
            try:
                self._fold_batch(store, batch)
            except StoreError:
                # Left for a later fold (this one's or another instance's).
                self._delete([self._lock(batch)])
                raise
        return len(batches)

    def _lock(self, batch: str) -> str:
        return f"{self.prefix}lock:{batch}"

    def _fold_batch(self, store: Store, batch: str) -> None:
        keys = self._keys(batch)
        with self._reached():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            tables = [{_text(f): _text(v) for f, v in table.items()} for table in pipe.execute()]
        hits, firsts, lasts, hours, nf_hits, bots, nf_firsts, nf_lasts, sources, other = tables
        per_hour: dict[str, dict[int, int]] = defaultdict(dict)
        for field, count in hours.items():
            key, _, hour = field.rpartition(_SEP)
            per_hour[key][int(hour)] = int(count)
        rule_deltas = [
            RuleHitsDelta(key, int(n), float(firsts[key]), float(lasts[key]), per_hour[key])
            for key, n in hits.items()
        ]
        found: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: {"referrer": {}, "user_agent": {}}
        )
        for field, count in sources.items():
            path, kind, value = field.split(_SEP, 2)
            found[path][kind][value] = int(count)
        nf_deltas = [
            NotFoundDelta(
                path,
                int(n),
                int(bots.get(path, 0)),
                float(nf_firsts[path]),
                float(nf_lasts[path]),
                found[path]["referrer"],
                found[path]["user_agent"],
            )
            for path, n in nf_hits.items()
        ]
        if rule_deltas:
            store.add_rule_hits(rule_deltas)
            # Taken in: not added twice if the not-found part fails and the batch is retried.
            self._delete(keys[:4])
        if nf_deltas:
            store.add_not_found(nf_deltas)
            self._delete(keys[4:9])
        for hour, count in other.items():
            store.add_not_found([], other=int(count), when=float(hour))
            with self._reached():
                self._client.hdel(keys[9], hour)
        self._delete([*keys, self._lock(batch)])

    def _delete(self, keys: list[str]) -> None:
        with self._reached():
            self._client.delete(*keys)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def open_redis_counters(url: str, store_location: str, prefix: str | None = None) -> RedisCounters:
    """The counters at the Redis ``url`` for the store at ``store_location``: StoreError with a
    one-line reason for a bad URL or a missing ``redis`` package."""
    try:
        import redis
    except ImportError:
        raise StoreError("--redis needs the redis package: pip install 'waypost[redis]'") from None
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    except ValueError as exc:
        raise StoreError(
            f"--redis {url!r} is not a Redis URL ({exc}); e.g. redis://127.0.0.1:6379/0"
        ) from None
    return RedisCounters(client, prefix if prefix is not None else _prefix_for(store_location))
