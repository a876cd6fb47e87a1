"""An internal error that knows where in a rule it belongs; the loader turns it into a RuleError."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FieldError"]


class FieldError(Exception):
    """A problem at ``keys`` inside one rule mapping (e.g. ``("when", "host")``).

    ``offset`` is the 0-based position of the offending text inside that value's string, when known.
    """

    def __init__(
        self,
        message: str,
        keys: Sequence[str | int] = (),
        offset: int | None = None,
        *,
        at_key: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.keys = tuple(keys)
        self.offset = offset
        #: Point at the key itself rather than its value (for unknown keys).
        self.at_key = at_key

    def under(self, *prefix: str | int) -> FieldError:
        """The same error, located under ``prefix``."""
        return FieldError(self.message, (*prefix, *self.keys), self.offset, at_key=self.at_key)
