"""The :class:`Store`: what the admin API and the server may rely on.

It is :class:`~waypost.store._sql.SqlStore` under its public name: the one class that declares
the store's methods, with their docstrings, and implements them over SQL;
:class:`~waypost.store.sqlite.SqliteStore` and :class:`~waypost.store.postgres.PostgresStore`
subclass it with their connections. It is not a ``Protocol`` of its own: that restated every
signature of the one implementation there is.
"""

from __future__ import annotations

from waypost.store._sql import SqlStore

__all__ = ["Store"]

#: Rules in a database: revisions, change notification, API keys and sign-in sessions.
Store = SqlStore
