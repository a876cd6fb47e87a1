"""Readers for the HTTP/1.1 request corpora in tests/data/http-corpus (see its SOURCES.md).

Each case becomes a :class:`CorpusCase`: the bytes to send and what a strict parser makes of them
(the requests it completes before it refuses, if it refuses). The corpora are parser tests: most
HTTP/1.1 requests in them have no ``Host``, which Waypost (like nginx) refuses. So that a case is
refused for what it is about, not for that, a ``Host`` line is added to every HTTP/1.1 request
that has none (``with_host``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httptools

from waypost.server._http1 import STRICT

CORPUS = Path(__file__).parents[1] / "data" / "http-corpus"
ADDED_HOST = b"Host: corpus.example\r\n"


@dataclass(frozen=True)
class CorpusCase:
    """One request stream of a corpus and what a strict parser makes of it."""

    id: str
    data: bytes
    #: The targets (origin form, as Waypost sends them upstream) of the requests a strict parser
    #: completes, in order; with ``refused``, those it completes before refusing.
    targets: tuple[str, ...]
    #: A strict parser refuses something in ``data``.
    refused: bool
    #: What the corpus says (gunicorn's error class, llhttp's error reason).
    expected: str
    #: ``data`` ends inside a request: the client stops sending (closes its side).
    incomplete: bool = False
    #: Why the case cannot apply to a server (None: it applies).
    skip: str | None = None
    meta: dict[str, object] = field(default_factory=dict)


def origin_form(url: str) -> str:
    """The target Waypost sends upstream for a request target: path and query, no fragment."""
    if url == "*":
        return "/*"
    if not url.startswith("/"):
        parts = urlsplit(url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return url.partition("#")[0]


def with_host(data: bytes, request_line_ends: list[int]) -> bytes:
    """``data`` with ``Host`` added after each HTTP/1.1 request line (ending at the given
    offsets, at its CRLF) whose head has no Host line."""
    for end in sorted(request_line_ends, reverse=True):
        if data[end : end + 2] != b"\r\n" or not data[:end].endswith(b"HTTP/1.1"):
            continue
        head = data[end : data.find(b"\r\n\r\n", end) + 2 if b"\r\n\r\n" in data[end:] else None]
        if re.search(rb"(?i)\r\nhost:", head):
            continue
        data = data[: end + 2] + ADDED_HOST + data[end + 2 :]
    return data


# -- gunicorn: tests/requests/invalid/*.http and *.py ------------------------------------------

_GUNICORN_ESCAPE = re.compile(rb"\\(r|n|t|0|x[0-9A-Fa-f]{2})")


def _gunicorn_unescape(raw: bytes) -> bytes:
    """gunicorn's treq.py: real newlines are dropped, then \\r \\n \\t \\0 \\xHH are bytes."""

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code.startswith(b"x"):
            return bytes([int(code[1:], 16)])
        return {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0"}[code]

    return _GUNICORN_ESCAPE.sub(one, raw.replace(b"\n", b""))


def gunicorn_cases() -> Iterator[CorpusCase]:
    """Every case of gunicorn_invalid/: all are requests gunicorn refuses (with its settings)."""
    for http in sorted((CORPUS / "gunicorn_invalid").glob("*.http")):
        spec = http.with_suffix(".py").read_text(encoding="utf-8")
        error = re.search(r"^request\s*=\s*(\w+)", spec, re.M)
        settings = dict(re.findall(r"""cfg\.set\(\s*['"](\w+)['"]\s*,\s*([^)]*)\)""", spec))
        data = _gunicorn_unescape(http.read_bytes())
        first_line = data.find(b"\r\n")
        data = with_host(data, [first_line] if first_line > 0 else [])
        line = data[: max(first_line, 0)].split(b" ")
        target = line[1].decode("latin-1") if len(line) == 3 else ""
        yield CorpusCase(
            id=f"gunicorn/{http.stem}",
            data=data,
            targets=(origin_form(target),) if target.startswith("/") else (),
            refused=True,
            expected=error.group(1) if error else "?",
            incomplete=error is not None
            and error.group(1) in ("NoMoreData", "ChunkMissingTerminator"),
            meta={"settings": settings},
        )


# -- llhttp: test/request/*.md -----------------------------------------------------------------

_LOG_LINE = re.compile(r"off=(\d+) (.*)")
_SPAN = re.compile(r'len=\d+ span\[(\w+)\]="(.*)"$')


def _llhttp_unescape(text: str) -> bytes:
    """llhttp's test/md-test.ts: the block's last newline dropped, escaped newlines removed,
    newlines made CRLF, then \\r \\n \\t \\f \\xHH and octal escapes."""
    text = re.sub(r"\n\Z", "", text)
    text = re.sub(r"\\(\r\n|\r|\n)", "", text)
    text = re.sub(r"\r\n|\r|\n", "\r\n", text)
    text = text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t").replace("\\f", "\f")
    text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m.group(1), 16) & 0xFF), text)
    text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8) & 0xFF), text)
    return text.encode("utf-8") if any(ord(c) > 0xFF for c in text) else text.encode("latin-1")


def _span_text(value: str) -> str:
    return value.replace("\\r", "\r").replace("\\n", "\n")


class _Message:
    def __init__(self) -> None:
        self.url = ""
        self.version = ""
        self.line_end = -1
        self.has_host = False
        self.complete = False
        self._field = ""


def _read_log(log: str) -> tuple[list[_Message], str | None]:
    """The messages of an llhttp log (url, version, where the request line ends, whether it
    has Host, whether it completed) and the error reason, if the parser refused."""
    messages: list[_Message] = []
    error = None
    for line in log.splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        offset, event = int(match.group(1)), match.group(2)
        if event == "message begin":
            messages.append(_Message())
            continue
        if not messages:
            continue
        message = messages[-1]
        span = _SPAN.match(event)
        if span is not None:
            kind, value = span.group(1), _span_text(span.group(2))
            if kind == "url":
                message.url += value
            elif kind == "version":
                message.version += value
            elif kind == "header_field":
                message._field += value
            continue
        if event == "version complete":
            message.line_end = offset
        elif event == "header_field complete":
            message.has_host = message.has_host or message._field.lower() == "host"
            message._field = ""
        elif event == "message complete":
            message.complete = True
        elif event.startswith("error ") and "code=22 " not in event:
            # (code 22, "Pause on CONNECT/Upgrade", is no refusal: the rest is another protocol.)
            error = event
    return messages, error


def strict_parse(data: bytes) -> tuple[list[str], str | None]:
    """What llhttp itself (httptools, every leniency off) makes of ``data``: the targets of the
    requests it completes, and its error (None: it accepts everything)."""

    class Recorder:
        def __init__(self) -> None:
            self.url = b""
            self.done: list[str] = []

        def on_message_begin(self) -> None:
            self.url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_message_complete(self) -> None:
            self.done.append(self.url.decode("latin-1"))

    recorder = Recorder()
    parser = httptools.HttpRequestParser(recorder)
    parser.set_dangerous_leniencies(**STRICT)  # the server's own: every leniency off
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        return recorder.done, None
    except httptools.HttpParserError as exc:
        return recorder.done, str(exc)
    return recorder.done, None


#: llhttp cases that test the parser's C API rather than what a client sends.
_NOT_REQUESTS = {
    "pause": "llhttp's pause API (llhttp_pause from a callback) stops the parser mid-request: "
    "an API behaviour, not something a client sends",
    "skipBody": "the test tells the parser to skip a body (as a client does for a HEAD "
    "response): a server never does that with a request",
}


def llhttp_cases() -> Iterator[CorpusCase]:
    """Every ```http block of llhttp/*.md with the ```log after it."""
    for md in sorted((CORPUS / "llhttp").glob("*.md")):
        heading, meta = "", {}
        seen: dict[str, int] = {}
        http: str | None = None
        block: list[str] | None = None
        kind = ""
        for line in md.read_text(encoding="utf-8").splitlines():
            if block is not None:
                if line.strip() != "```":
                    block.append(line)
                    continue
                text = "\n".join(block) + "\n"
                block = None
                if kind == "http":
                    http = text
                elif kind == "log" and http is not None:
                    slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
                    seen[slug] = seen.get(slug, 0) + 1
                    name = f"llhttp/{md.stem}/{slug}" + (f"-{seen[slug]}" if seen[slug] > 1 else "")
                    yield _llhttp_case(name, http, text, meta)
                    http, meta = None, {}
                continue
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.startswith("<!-- meta="):
                meta = json.loads(line[len("<!-- meta=") : line.rindex("-->")])
            elif line.strip() in ("```http", "```log"):
                kind, block = line.strip()[3:], []


def _llhttp_case(name: str, http: str, log: str, meta: dict[str, object]) -> CorpusCase:
    raw = _llhttp_unescape(http)
    messages, error = _read_log(log)
    data = with_host(raw, [m.line_end for m in messages if m.version == "1.1" and not m.has_host])
    kind = str(meta.get("type", "request"))
    skip = next((why for key, why in _NOT_REQUESTS.items() if key in meta), None)
    if kind == "request-finish":
        skip = "llhttp_finish() at the end of input: the C API's return codes, not a request"
    if kind.startswith("request-lenient"):
        # The log is what a lenient parser makes of it; what strict llhttp does is asked of it.
        targets, strict_error = strict_parse(data)
        return CorpusCase(
            id=name,
            data=data,
            targets=tuple(origin_form(t) for t in targets),
            refused=strict_error is not None,
            expected=f"{kind}: strict llhttp: {strict_error or 'accepts'}",
            skip=skip,
            meta=meta,
        )
    done = [m for m in messages if m.complete]
    return CorpusCase(
        id=name,
        data=data,
        targets=tuple(origin_form(m.url) for m in done),
        refused=error is not None,
        expected=error or "accepted",
        incomplete=error is None and bool(messages) and not messages[-1].complete,
        skip=skip,
        meta=meta,
    )
