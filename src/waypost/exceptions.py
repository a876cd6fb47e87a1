"""Every error Waypost raises on purpose.

::

    WaypostError                 the root: catch this to catch anything Waypost raises on purpose
    ├── RuleError                one problem in one rule, with file:line:col and a hint
    │   └── RuleSyntaxError      a pattern or target that does not parse ('/<itn:id>', '/<id')
    ├── RulesError               a rules file or rule list with one or more RuleErrors (all of them)
    ├── UrlBuildError            url_for() could not build a URL: unknown name, missing or bad value
    ├── ConverterError           a converter was registered wrongly
    ├── StoreError               the rule store (waypost.store): a bad URL, a missing driver
    │   ├── StoreUnavailable     the database cannot be reached or opened; retry later
    │   ├── SchemaError          the database schema is missing or out of date: `waypost db upgrade`
    │   ├── NotFoundError        no rule, revision or API key with that id
    │   ├── ConflictError        a stale version (If-Match); carries the current state
    │   ├── ConfirmationError    an import would delete more rules than it keeps; confirm it
    │   └── ValidationError      a change the loader rejects; every problem with its field path
    ├── AuthError                an API key or session was refused; ``reason`` says why
    ├── FixError                 ``waypost check --fix`` cannot edit a file safely; says why
    └── SettingsError            a server setting (a flag or a WAYPOST_* variable) is not usable;
                                 also a ValueError

Messages are written for people: what is wrong, the offending text quoted with ``!r``, where it is
(``file:line:col``), and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuthError",
    "ConfirmationError",
    "ConflictError",
    "ConverterError",
    "FixError",
    "NotFoundError",
    "RuleError",
    "RuleSyntaxError",
    "RulesError",
    "SchemaError",
    "SettingsError",
    "StoreError",
    "StoreUnavailable",
    "UrlBuildError",
    "ValidationError",
    "WaypostError",
]


class WaypostError(Exception):
    """The root of every error Waypost raises on purpose."""


class RuleError(WaypostError):
    """One problem in one rule.

    ``file``, ``line`` and ``col`` locate it as precisely as the input allows (any may be None when
    rules come from Python rather than a file). ``str()`` gives ``file:line:col: message``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(self.__str__())

    @property
    def location(self) -> str:
        """``file:line:col`` with whatever parts are known ('' when none are)."""
        parts = [self.file or "<rules>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def located(
        self, *, file: str | None = None, line: int | None = None, col: int | None = None
    ) -> RuleError:
        """A copy with missing location parts filled in."""
        return type(self)(
            self.message,
            file=self.file or file,
            line=self.line if self.line is not None else line,
            col=self.col if self.col is not None else col,
        )

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, file={self.file!r}, "
            f"line={self.line!r}, col={self.col!r})"
        )


class RuleSyntaxError(RuleError):
    """A pattern or a target that does not parse."""


class RulesError(WaypostError):
    """A rules file (or list) with problems: ``errors`` holds every one of them, in file order."""

    def __init__(self, errors: Iterable[RuleError], *, file: str | None = None) -> None:
        self.errors: tuple[RuleError, ...] = tuple(errors)
        self.file = file
        super().__init__(self.__str__())

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.file or 'rules'}: {count} error{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {e}" for e in self.errors)])


class UrlBuildError(WaypostError):
    """``url_for()`` could not build a URL: unknown rule name, missing value or ill-typed value."""


class ConverterError(WaypostError):
    """A custom converter is not usable (bad name, bad regex, missing methods)."""


class StoreError(WaypostError):
    """A problem with the rule store (:mod:`waypost.store`): a bad URL, a missing driver."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened; a server keeps serving its last snapshot."""


class SchemaError(StoreError):
    """The database schema is missing or out of date; ``waypost db upgrade --db URL`` fixes it."""


class NotFoundError(StoreError):
    """No rule, revision or API key with the id asked for."""


class ConflictError(StoreError):
    """A write named a stale version (an ``If-Match`` that no longer matches); nothing was written.

    ``current`` is the current state (a ``StoredRule``, the settings, or None when it was deleted);
    ``expected`` is the version the writer named.
    """

    def __init__(self, message: str, *, current: Any = None, expected: int | None = None) -> None:
        self.current = current
        self.expected = expected
        super().__init__(message)


class ConfirmationError(StoreError):
    """An import in ``replace`` mode would delete more stored rules than it keeps, and the caller
    did not confirm that many deletions; nothing was written.

    ``deleted`` and ``kept`` count the stored rules the import deletes and keeps: the caller
    shows them and asks (``--yes`` on the command line, ``confirm_deletes`` in the admin API).
    """

    def __init__(self, message: str, *, deleted: int, kept: int) -> None:
        self.deleted = deleted
        self.kept = kept
        super().__init__(message)


class ValidationError(StoreError):
    """A change the rule loader rejects; nothing was written.

    ``problems`` holds every ``(path, message)``: ``path`` locates the field in the change (like
    ``changes[3].rule.to``), ``message`` is the loader's own.
    """

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"the change was rejected: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {path or '(change)'}: {msg}" for path, msg in self.problems)])


class AuthError(WaypostError):
    """An API key or a sign-in session was refused. ``reason`` is one of ``malformed``,
    ``unknown``, ``bad_secret``, ``expired``, ``revoked``, ``wrong_host`` or
    ``insufficient_scope``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class FixError(WaypostError):
    """``waypost check --fix`` cannot edit the file safely; the message says why and what to do."""


class SettingsError(WaypostError, ValueError):
    """A server setting's value (from a flag or a ``WAYPOST_*`` variable) is not usable.

    Also a :class:`ValueError`: it is raised where a value does not parse, and was one before it
    joined the hierarchy.
    """
