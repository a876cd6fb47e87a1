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

What the rest of Waypost needs to know of a converter it asks the converter, so that a user's
converter takes part like a built-in one: :meth:`BaseConverter.sample` (a value it accepts, for the
start-up check of route targets and the sample URLs of ``waypost check``), :meth:`~BaseConverter.
parser` (a quicker ``to_python`` the compiled index may use), :meth:`~BaseConverter.
segment_parser` (a whole segment read without the regex) and ``open_ended`` (whether two such
variables side by side are ambiguous).
"""

from __future__ import annotations

import importlib
import math
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from waypost.exceptions import ConverterError

__all__ = [
    "DEFAULT_CONVERTERS",
    "AnyConverter",
    "BaseConverter",
    "FloatConverter",
    "IntConverter",
    "PathConverter",
    "RegexConverter",
    "StringConverter",
    "UUIDConverter",
    "check_converter_regex",
]


#: Texts a converter without samples of its own is tried on (see BaseConverter.sample).
_SAMPLE_TEXTS = (
    "wpsample", "example", "sample", "x", "ab", "en", "de", "1", "7", "42", "2024", "1.5",
    "wp/sample", "a/b", "2024-01-01", "abc123",
)  # fmt: skip
_STRINGS = ("wpsample", "example", "third")
_PATHS = ("wp/sample", "other/page", "third/x")
_INTS = (4711, 8128, 9001)
_FLOATS = (47.5, 81.25, 90.125)
_UUIDS = (
    uuid.UUID("6f1c2a44-1b5e-4d3a-9c7e-0d2f4a6b8c10"),
    uuid.UUID("0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"),
    uuid.UUID("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"),
)

#: What :meth:`BaseConverter.parser` returns for "the value is the matched text itself".
SAME_TEXT: Callable[[str], Any] = str


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
    #: A few values the converter accepts, for :meth:`sample` (empty: found from the regex).
    samples: ClassVar[tuple[Any, ...]] = ()
    # A built-in's quick parser when it does not depend on arguments (see parser()).
    _quick: ClassVar[Callable[[str], Any] | None] = None
    #: True when the text has no set length or end (string, int, float; path spans slashes):
    #: two variables side by side with such a converter first ('<a><b>') are refused, as their
    #: split is ambiguous and their regex backtracks polynomially on a long hostile segment.
    open_ended: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__} takes no arguments")

    def to_python(self, value: str) -> Any:
        """Turn matched text into a value; raise ValueError to refuse the match."""
        return value

    def to_url(self, value: Any) -> str:
        """Turn a value into (unencoded) URL text; raise ValueError/TypeError if ill-typed."""
        return str(value)

    def sample(self, k: int = 0) -> Any:
        """A value this converter accepts; ``k`` picks among a few distinct ones.

        Used to try route targets at start-up and to make sample URLs for ``waypost check``. The
        default calls ``example()`` when the subclass defines one (for ``k == 0``), else takes
        one of ``samples``, else tries a few common texts on ``regex`` and ``to_python``; raises
        ValueError when none passes. Override it when none of these fits.
        """
        example = getattr(self, "example", None)
        if k == 0 and callable(example):
            return example()
        if self.samples:
            return self.samples[k % len(self.samples)]
        accepted: list[Any] = []
        for text in _SAMPLE_TEXTS:
            if not re.fullmatch(self.regex, text, re.DOTALL):
                continue
            try:
                accepted.append(self.to_python(text))
            except (ValueError, TypeError, OverflowError):
                continue
        if not accepted:
            raise ValueError(f"no sample value for {self!r}: give it a sample() method")
        return accepted[k % len(accepted)]

    def parser(self) -> Callable[[str], Any] | None:
        """A quicker equal of ``to_python`` for text ``regex`` matched, for the compiled index
        (:mod:`waypost.matching`); :data:`SAME_TEXT` when the value is the text itself.

        None (the default) keeps the rules using this converter out of the compiled index: it
        joins the regexes of a pattern's segments with '/', which is only right when the regex
        never matches '/'. A subclass whose regex never does may return ``self.to_python``.
        A built-in converter's answer (its ``_own_parser()``) holds for that class only: a
        subclass of it, which may change ``regex`` or ``to_python``, gets None unless it
        overrides this method.
        """
        return self._own_parser() if type(self) in _BUILT_IN else None

    def segment_parser(self) -> Callable[[str], list[Any] | None] | None:
        """For a segment that is this variable alone: a function from the segment's text to
        ``[value]``, or None when the text does not match, without running ``regex``; None (the
        default) when the regex must run. As for :meth:`parser`, a built-in's answer holds for
        that class only."""
        return self._own_segment_parser() if type(self) in _BUILT_IN else None

    def _own_parser(self) -> Callable[[str], Any] | None:
        return type(self)._quick

    def _own_segment_parser(self) -> Callable[[str], list[Any] | None] | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _whole_text(text: str) -> list[Any] | None:
    return [text] if text else None


def _whole_int(text: str) -> list[Any] | None:
    # What '\d+' and int() accept together, without the regex.
    if not text.isdecimal():
        return None
    try:
        return [int(text)]
    except ValueError:  # more digits than int() takes (sys.get_int_max_str_digits()): no match
        return None


class StringConverter(BaseConverter):
    """One path segment: ``<name>`` or ``<string:name>``; ``minlength``/``maxlength``/``length``."""

    open_ended = True

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

    def sample(self, k: int = 0) -> Any:
        if type(self).regex != StringConverter.regex:  # a subclass with its own regex
            return super().sample(k)
        text = _STRINGS[k % len(_STRINGS)]
        if len(text) < self.minlength:
            text = (text * self.minlength)[: self.minlength]
        if self.maxlength is not None and len(text) > self.maxlength:
            text = text[k : k + self.maxlength] or text[: self.maxlength]
        return text

    def _own_parser(self) -> Callable[[str], Any] | None:
        unbounded = self.minlength <= 1 and self.maxlength is None
        return SAME_TEXT if unbounded else self.to_python  # the regex never matches empty text

    def _own_segment_parser(self) -> Callable[[str], list[Any] | None] | None:
        return _whole_text if self.minlength == 1 and self.maxlength is None else None


class PathConverter(BaseConverter):
    """The rest of a path, slashes included: ``<path:rest>``. Never empty."""

    regex = "[^/].*"
    weight = 200
    spans_slashes = True
    open_ended = True
    samples = _PATHS
    _quick = SAME_TEXT


class IntConverter(BaseConverter):
    """Digits only, as an int: ``<int:year>``; as Werkzeug's, ``min``/``max`` bound it,
    ``signed=True`` takes a leading ``-``, and ``fixed_digits=4`` takes exactly that many
    characters (``0042``) and builds zero-padded."""

    regex = r"\d+"
    weight = 50
    open_ended = True

    def __init__(
        self,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
        fixed_digits: int = 0,
    ) -> None:
        _check_bounds(min=min, max=max, fixed_digits=fixed_digits)
        if not isinstance(signed, bool):
            raise TypeError(f"signed must be True or False, got {signed!r}")
        if fixed_digits < 0:
            raise ValueError(f"fixed_digits must be 0 or more, got {fixed_digits!r}")
        self.min = min
        self.max = max
        self.signed = signed
        self.fixed_digits = fixed_digits
        if signed:
            self.regex = r"-?\d+"

    def to_python(self, value: str) -> int:
        if self.fixed_digits and len(value) != self.fixed_digits:
            raise ValueError(f"not {self.fixed_digits} digits")
        number = int(value)
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise ValueError("out of range")
        return number

    def to_url(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an int, got {type(value).__name__}")
        number: Any = value
        if isinstance(value, str) and re.fullmatch(self.regex, value, re.ASCII):
            number = int(value)
        if not isinstance(number, int) or (number < 0 and not self.signed):
            kind = "an int" if self.signed else "a non-negative int"
            raise ValueError(f"expected {kind}, got {value!r}")
        text = str(number).zfill(self.fixed_digits) if self.fixed_digits else str(number)
        self.to_python(text)
        return text

    def sample(self, k: int = 0) -> Any:
        number = _INTS[k % len(_INTS)]
        if self.fixed_digits:
            number %= 10 ** max(1, self.fixed_digits - 1)
        if self.max is not None and number > self.max:
            number = self.max - k
        if self.min is not None and number < self.min:
            number = self.min + k
        if self.max is not None and number > self.max:
            number = self.max
        return number

    def _plain(self) -> bool:
        return self.min is None and self.max is None and not self.signed and not self.fixed_digits

    def _own_parser(self) -> Callable[[str], Any] | None:
        return int if self._plain() else self.to_python

    def _own_segment_parser(self) -> Callable[[str], list[Any] | None] | None:
        return _whole_int if self._plain() else None

    def __repr__(self) -> str:
        return _options_repr(self, min=None, max=None, signed=False, fixed_digits=0)


class FloatConverter(BaseConverter):
    r"""A decimal number with a point, as a float: ``<float:price>`` matches ``1.5``, not ``1``;
    as Werkzeug's, ``min``/``max`` bound it and ``signed=True`` takes a leading ``-``."""

    regex = r"\d+\.\d+"
    weight = 50
    open_ended = True
    samples = _FLOATS

    def __init__(
        self, min: float | None = None, max: float | None = None, signed: bool = False
    ) -> None:
        for name, bound in (("min", min), ("max", max)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float)
            ):
                raise TypeError(f"{name} must be a number, got {bound!r}")
        if not isinstance(signed, bool):
            raise TypeError(f"signed must be True or False, got {signed!r}")
        self.min = min
        self.max = max
        self.signed = signed
        if signed:
            self.regex = r"-?\d+\.\d+"

    def to_python(self, value: str) -> float:
        number = float(value)
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise ValueError("out of range")
        return number

    def to_url(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a float, got {type(value).__name__}")
        number = float(value)
        if not math.isfinite(number) or (number < 0 and not self.signed):
            kind = "a finite float" if self.signed else "a non-negative finite float"
            raise ValueError(f"expected {kind}, got {value!r}")
        # Positional notation, so the text matches the regex again: repr(1e20) is '1e+20', which
        # <float:x> would not match. Decimal(repr()) keeps the shortest round-tripping digits.
        text = format(Decimal(repr(number)), "f")
        return text if "." in text else text + ".0"

    def sample(self, k: int = 0) -> Any:
        number = _FLOATS[k % len(_FLOATS)]
        if self.max is not None and number > self.max:
            number = float(self.max)
        if self.min is not None and number < self.min:
            number = float(self.min)
        return number

    def _own_parser(self) -> Callable[[str], Any] | None:
        plain = self.min is None and self.max is None and not self.signed
        return float if plain else self.to_python

    def __repr__(self) -> str:
        return _options_repr(self, min=None, max=None, signed=False)


def _options_repr(converter: BaseConverter, **defaults: Any) -> str:
    """``IntConverter(min=1, signed=True)``: the options that differ from their default."""
    given = [
        f"{name}={getattr(converter, name)!r}"
        for name, default in defaults.items()
        if getattr(converter, name) != default
    ]
    return f"{type(converter).__name__}({', '.join(given)})"


class UUIDConverter(BaseConverter):
    """A UUID in its canonical 8-4-4-4-12 form, as ``uuid.UUID``."""

    regex = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    weight = 40
    samples = _UUIDS

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: Any) -> str:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            return str(uuid.UUID(value))
        raise TypeError(f"expected a UUID, got {type(value).__name__}")

    def _own_parser(self) -> Callable[[str], Any] | None:
        return self.to_python


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

    _quick = SAME_TEXT

    def sample(self, k: int = 0) -> Any:
        return self.items[k % len(self.items)]

    def __repr__(self) -> str:
        return f"AnyConverter({', '.join(map(repr, self.items))})"


def compile_re2(regex: str) -> Any:
    """``regex`` compiled by google-re2, whose matching takes linear time: ImportError when it
    is not installed, ValueError holding RE2's own reason when it cannot run the regex
    (backreferences, lookaround)."""
    re2 = importlib.import_module("re2")
    try:
        return re2.compile(regex)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise ValueError(reason.decode() if isinstance(reason, bytes) else str(reason)) from None


class RegexConverter(BaseConverter):
    """Text your regex matches: ``<regex('[a-z]{2}'):lang>``, the most asked-for pattern
    feature of redirect tools, usable from a rules file. It runs on google-re2 (``pip install
    'waypost[re2]'``), whose matching takes linear time whatever the regex and the path: a
    regex with backreferences or lookaround (which RE2 cannot run) or a capturing group is
    refused when the pattern loads, with the reason."""

    weight = 100
    open_ended = True
    #: Matched by RE2 (see waypost.rules.pattern): linear time on any path.
    linear = True

    def __init__(self, regex: Any = None) -> None:
        if not isinstance(regex, str) or not regex:
            raise TypeError(f"regex() takes the regex as quoted text, like regex('[a-z]{{2}}'); "
                            f"got {regex!r}")  # fmt: skip
        try:
            compiled = compile_re2(regex)
        except ImportError:
            raise ValueError(
                "the regex converter needs google-re2, which matches in linear time (a regex run "
                "by Python's re can take exponential time on a hostile path): pip install "
                "'waypost[re2]'"
            ) from None
        except ValueError as exc:
            raise ValueError(
                f"RE2 cannot run {regex!r} ({exc}); it has no backreferences or lookaround, "
                "which is what keeps its matching linear"
            ) from None
        if compiled.groups:
            raise ValueError(f"regex {regex!r} has capturing groups; use (?:...) instead")
        try:
            re.compile(regex)  # URL building checks a value against it with Python's re
        except re.error as exc:
            raise ValueError(f"{regex!r} is not a regex Python reads too: {exc}") from None
        self.regex = regex

    def _own_parser(self) -> Callable[[str], Any] | None:
        return None  # matched segment by segment on RE2, never in the joined leaf regex

    def __repr__(self) -> str:
        return f"RegexConverter({self.regex!r})"


# Whose _own_parser() and _own_segment_parser() answers hold (see BaseConverter.parser).
_BUILT_IN = frozenset(
    {
        StringConverter,
        PathConverter,
        IntConverter,
        FloatConverter,
        UUIDConverter,
        AnyConverter,
        RegexConverter,
    }
)

#: The converters every pattern can use; pass ``converters=`` to add your own.
DEFAULT_CONVERTERS: Mapping[str, type[BaseConverter]] = {
    "string": StringConverter,
    "default": StringConverter,
    "path": PathConverter,
    "int": IntConverter,
    "float": FloatConverter,
    "uuid": UUIDConverter,
    "any": AnyConverter,
    "regex": RegexConverter,
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
        _check_regex(f"converter {name!r}", cls.regex)
        merged[name] = cls
    return merged


#: Texts with a '/' a converter's regex is tried on: one that matches any spans slashes.
_SLASHED = ("/", "a/b", "1/2", "ab/cd", "a/b/c", "x.y/z", "a-b/c_d")
#: A negated character class ('[^/]'): a '/' in it is one the regex does not match.
_NEGATED_CLASS = re.compile(r"\[\^(?:\\.|[^\]\\])*\]")


#: Each good regex checked so far: whether it can match a '/' (a large rule set repeats a few).
_SPANNING: dict[str, bool] = {}


def _check_regex(what: str, regex: object) -> re.Pattern[str]:
    if not isinstance(regex, str):
        raise ConverterError(f"{what} regex must be text, got {regex!r}")
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise ConverterError(f"{what} has a bad regex {regex!r}: {exc}") from None
    if compiled.groups:
        raise ConverterError(f"{what} regex {regex!r} has capturing groups; use (?:...) instead")
    return compiled


def check_converter_regex(converter: BaseConverter) -> None:
    """Check the regex ``converter`` uses (its instance's: ``__init__`` may set it): it compiles
    and has no capturing group (ConverterError saying which otherwise). A regex that can match a
    '/' (it holds one, or matches one of a few slashed texts) makes the variable span slashes,
    as Werkzeug's ``part_isolating`` does: a one-segment match could never succeed."""
    regex = converter.regex
    spans = _SPANNING.get(regex) if isinstance(regex, str) else None
    if spans is None:
        compiled = _check_regex(f"converter {type(converter).__name__}", regex)
        spans = "/" in _NEGATED_CLASS.sub("", regex) or any(
            compiled.fullmatch(text) for text in _SLASHED
        )
        if len(_SPANNING) < 4096:
            _SPANNING[regex] = spans
    if spans and not converter.spans_slashes:
        converter.spans_slashes = True
