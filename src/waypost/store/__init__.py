"""Rules in a database: SQLite (the embedded default) or PostgreSQL, with revisions, rollback,
change notification and API keys.

::

    store = open_store("sqlite:///waypost.db")          # or "postgresql://user@host/db"
    rule = store.create_rule({"from": "/old", "to": "/new"}, key_id=key.id, message="move")
    store.update_rule(rule.id, {"from": "/old", "to": "/newer"}, expected_version=rule.version)
    snapshot = store.load_snapshot()
    engine.replace(
        snapshot.rules,
        defaults=snapshot.defaults,
        allowed_hosts=snapshot.allowed_hosts,
        proxy_hosts=snapshot.proxy_hosts,
        guards=snapshot.guards,  # and any Python checks: {**snapshot.guards, name: check}
    )

Layers: ``model`` (values), ``_state`` and ``_validate`` (pure bookkeeping and checks),
``_sql`` (the shared SQL store; its commit path, rule queries, history, watching, keys and
sessions are mixins in ``_sql_commit``, ``_sql_rules``, ``_sql_revisions``, ``_sql_watch``,
``_sql_keys``, ``_sql_sessions``),
``sqlite`` / ``postgres`` (connections and notification),
``migrations`` (the schema), ``keys`` (API keys), ``sessions`` (admin sign-in sessions),
``stats`` and ``_sql_stats`` (analytics: what the servers' counters flush, and its queries),
``transfer`` (rules files in and out).
"""

from __future__ import annotations

from waypost.store import model, stats
from waypost.store._validate import check_rule_set, to_json_value
from waypost.store.base import Store
from waypost.store.connect import open_store
from waypost.store.keys import ApiKey, KeyScope
from waypost.store.model import *  # noqa: F403 -- every value; model.__all__ lists them once
from waypost.store.recorder import StatsRecorder
from waypost.store.stats import *  # noqa: F403 -- the analytics' values, likewise

# The values are model's public names, as asyncio's __init__ adds up its modules' __all__.
__all__ = [
    "ApiKey",
    "KeyScope",
    "StatsRecorder",
    "Store",
    "check_rule_set",
    "open_store",
    "to_json_value",
]
__all__ += model.__all__
__all__ += stats.__all__
