"""What the mixins of :class:`~waypost.store._sql.SqlStore` need from the store they are mixed
into: its transaction, its time conversions and its key and session checkers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from waypost.store.keys import KeyChecker
from waypost.store.sessions import SessionChecker

if TYPE_CHECKING:
    from waypost.store._sql import Conn

__all__ = ["SqlMixin"]


class SqlMixin(ABC):
    """The store's own members the key and session mixins use."""

    keys: KeyChecker
    sessions: SessionChecker

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Conn]: ...

    @abstractmethod
    def _time_param(self, moment: datetime | None) -> Any: ...

    @abstractmethod
    def _time_value(self, value: Any) -> datetime | None: ...
