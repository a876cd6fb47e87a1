"""Converters: the typed variables of a pattern (``<int:year>``), as in Flask and Werkzeug.

A converter says what text a variable matches (``regex``), how that text becomes a Python value
(``to_python``, which may raise ``ValueError`` to reject a match), how a value is written back into
a URL (``to_url``), and how it ranks against other converters when two patterns could match the same
path (``weight``: lower is more specific and is tried first).

Built-in weights, and so the order in which candidates are tried at one path segment::

    static text        0    (not a converter: /blog/archive beats /blog/<slug>)
    any(a,b,c)        30
    uuid              40
    int, float        50
    string           100    (the default: <name> is <string:name>)
    path             200    (may span slashes, so it is always the last resort)

A segment that mixes text and a variable (``item-<int:id>.html``) ranks 5 below its converter: the
literal text makes it more specific than the bare variable.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from waypost.exceptions import ConverterError

__all__ = [
    "DEFAULT_CONVERTERS",
    "AnyConverter",
    "BaseConverter",
    "FloatConverter",
    "IntConverter",
    "PathConverter",
    "StringConverter",
    "UUIDConverter",
]


def _check_bounds(**bounds: Any) -> None:
    # A pattern argument written without quotes arrives as text ('<int(min=x):n>'); refuse it at
    # load time rather than fail every match later comparing an int with a str.
    for name, value in bounds.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be a whole number, got {value!r}")


class BaseConverter:
    """Base class for converters; subclass it to register your own.

    Subclasses set ``regex`` (no capturing groups; it must not match ``/`` unless ``spans_slashes``
    is true) and ``weight``, and override ``to_python`` / ``to_url`` when the value is not a string.
    Arguments written in a pattern (``<int(min=1):id>``) arrive in ``__init__``.
    """

    regex: str = "[^/]+"
    weight: int = 100
    #: True for converters whose text may contain '/', like ``path``.
    spans_slashes: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__} takes no arguments")

    def to_python(self, value: str) -> Any:
        """Turn matched text into a value; raise ValueError to refuse the match."""
        return value

    def to_url(self, value: Any) -> str:
        """Turn a value into (unencoded) URL text; raise ValueError/TypeError if ill-typed."""
        return str(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StringConverter(BaseConverter):
    """One path segment: ``<name>`` or ``<string:name>``; ``minlength``/``maxlength``/``length``."""

    def __init__(
        self, minlength: int = 1, maxlength: int | None = None, length: int | None = None
    ) -> None:
        _check_bounds(minlength=minlength, maxlength=maxlength, length=length)
        if length is not None:
            minlength = maxlength = length
        self.minlength = minlength
        self.maxlength = maxlength

    def to_python(self, value: str) -> str:
        if len(value) < self.minlength or (
            self.maxlength is not None and len(value) > self.maxlength
        ):
            raise ValueError("length out of range")
        return value

    def to_url(self, value: Any) -> str:
        text = str(value)
        self.to_python(text)
        if "/" in text:
            raise ValueError("a one-segment value cannot contain '/'")
        return text


class PathConverter(BaseConverter):
    """The rest of a path, slashes included: ``<path:rest>``. Never empty."""

    regex = "[^/].*"
    weight = 200
    spans_slashes = True


class IntConverter(BaseConverter):
    """Digits only, as an int: ``<int:year>``; ``min``/``max`` bound it."""

    regex = r"\d+"
    weight = 50

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        _check_bounds(min=min, max=max)
        self.min = min
        self.max = max

    def to_python(self, value: str) -> int:
        number = int(value)
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise ValueError("out of range")
        return number

    def to_url(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an int, got {type(value).__name__}")
        number = int(value) if isinstance(value, str) and value.isdecimal() else value
        if not isinstance(number, int) or number < 0:
            raise ValueError(f"expected a non-negative int, got {value!r}")
        self.to_python(str(number))
        return str(number)


class FloatConverter(BaseConverter):
    r"""A decimal number with a point, as a float: ``<float:price>`` matches ``1.5``, not ``1``."""

    regex = r"\d+\.\d+"
    weight = 50

    def to_python(self, value: str) -> float:
        return float(value)

    def to_url(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a float, got {type(value).__name__}")
        number = float(value)
        if number < 0 or not math.isfinite(number):
            raise ValueError(f"expected a non-negative finite float, got {value!r}")
        # Positional notation, so the text matches the regex again: repr(1e20) is '1e+20', which
        # <float:x> would not match. Decimal(repr()) keeps the shortest round-tripping digits.
        text = format(Decimal(repr(number)), "f")
        return text if "." in text else text + ".0"


class UUIDConverter(BaseConverter):
    """A UUID in its canonical 8-4-4-4-12 form, as ``uuid.UUID``."""

    regex = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    weight = 40

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: Any) -> str:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            return str(uuid.UUID(value))
        raise TypeError(f"expected a UUID, got {type(value).__name__}")


class AnyConverter(BaseConverter):
    """One of a fixed set of words: ``<any(about,help,imprint):page>``."""

    weight = 30

    def __init__(self, *items: Any) -> None:
        if not items:
            raise TypeError("any() needs at least one item, like any(a,b)")
        words = [str(item) for item in items]
        for word in words:
            if not word or "/" in word:
                raise ValueError(f"any() item {word!r} must be non-empty and contain no '/'")
        self.items = tuple(words)
        # Longest first, so 'ab' is not cut short by 'a' inside a larger segment regex.
        self.regex = "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self.regex += ")"

    def to_url(self, value: Any) -> str:
        text = str(value)
        if text not in self.items:
            raise ValueError(f"{text!r} is not one of {', '.join(map(repr, self.items))}")
        return text

    def __repr__(self) -> str:
        return f"AnyConverter({', '.join(map(repr, self.items))})"


#: The converters every pattern can use; pass ``converters=`` to add your own.
DEFAULT_CONVERTERS: Mapping[str, type[BaseConverter]] = {
    "string": StringConverter,
    "default": StringConverter,
    "path": PathConverter,
    "int": IntConverter,
    "float": FloatConverter,
    "uuid": UUIDConverter,
    "any": AnyConverter,
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def merge_converters(
    extra: Mapping[str, type[BaseConverter]] | None,
) -> Mapping[str, type[BaseConverter]]:
    """The built-ins plus ``extra``, each checked to be usable."""
    if not extra:
        return DEFAULT_CONVERTERS
    merged = dict(DEFAULT_CONVERTERS)
    for name, cls in extra.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConverterError(f"converter name {name!r} must be an identifier, like 'lang'")
        if not (isinstance(cls, type) and issubclass(cls, BaseConverter)):
            raise ConverterError(
                f"converter {name!r} must be a subclass of waypost.BaseConverter, got {cls!r}"
            )
        try:
            compiled = re.compile(cls.regex)
        except re.error as exc:
            raise ConverterError(
                f"converter {name!r} has a bad regex {cls.regex!r}: {exc}"
            ) from None
        if compiled.groups:
            raise ConverterError(
                f"converter {name!r} regex {cls.regex!r} has capturing groups; use (?:...) instead"
            )
        merged[name] = cls
    return merged
