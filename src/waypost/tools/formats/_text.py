"""Reading text the way real redirect files are written: BOMs, CRLF, odd CSV delimiters."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

__all__ = ["clean_text", "numbered_lines", "parse_bool", "read_csv_rows", "sniff_delimiter"]

_DELIMITERS = (",", ";", "\t", "|")
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})


def clean_text(text: str) -> str:
    """``text`` without a UTF-8 byte-order mark and with every line ending turned into ``\\n``."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every line of ``text`` (1-based, endings removed)."""
    yield from enumerate(clean_text(text).split("\n"), start=1)


def parse_bool(value: str) -> bool | None:
    """``True``/``False`` for the spellings spreadsheets use (TRUE, 1, yes...), else ``None``."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _data_lines(text: str, limit: int = 20) -> list[str]:
    lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(line)
            if len(lines) == limit:
                break
    return lines


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: ``,``, ``;``, tab or ``|``.

    The winner is the candidate that splits the first data lines into the same number (more than
    one) of fields; csv.Sniffer is not used because it guesses letters on short files.
    """
    lines = _data_lines(clean_text(text))
    best, best_score = ",", (0, 0)
    for delimiter in _DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or max(counts) < 2:
            continue
        consistent = sum(1 for count in counts if count == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_csv_rows(text: str, delimiter: str | None = None) -> list[tuple[int, str, list[str]]]:
    """``(line, raw_text, fields)`` for every data row; blank rows and ``#`` comments are left out.

    ``line`` is where the row starts (a quoted field may span lines); fields are stripped.
    """
    text = clean_text(text)
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    raw_lines = text.split("\n")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[tuple[int, str, list[str]]] = []
    start = 1
    for fields in reader:
        end = reader.line_num
        raw = "\n".join(raw_lines[start - 1 : end])
        line, start = start, end + 1
        stripped = [field.strip() for field in fields]
        if not any(stripped) or stripped[0].startswith("#"):
            continue
        rows.append((line, raw, stripped))
    return rows
