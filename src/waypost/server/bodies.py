"""Request bodies on their way to the upstream: buffered whole first (the default), or streamed.

A proxy that streams a body as it arrives cannot take it back: when the client stops halfway, or
its chunked framing turns out broken, the upstream has already been given a request, and ending
that request cleanly would hand it a truncated upload as if it were complete. So, like nginx
(``proxy_request_buffering on``), Waypost reads the body to its end before the upstream sees
anything, and sends it with a ``Content-Length``:

- up to ``max_body_bytes`` (``0``: no limit); a ``Content-Length`` above it is refused with 413
  before any of the body is read, a chunked body as soon as it grows past it;
- in memory up to ``memory`` bytes, then in an anonymous temporary file (unlinked as it is made,
  so no body stays on disk whatever happens to the worker) in a private directory
  (:class:`BodyDirectory`, mode 0700).

Streaming (``request_buffering off``) is for uploads too large or too slow to hold: each piece goes
on as it arrives, and a body that fails raises out of the iterator httpx is reading, which makes
httpx close the upstream connection before the end of the body is sent, so the upstream never
sees a complete request. A body that stops arriving fails the same way: the connection ends it
after ``body_timeout`` (see :mod:`waypost.server.protocol`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable
from typing import IO

from waypost.middleware._types import Receive

__all__ = [
    "BodyDirectory",
    "BodyIncomplete",
    "BodyTooLarge",
    "BufferedBody",
    "declared_length",
    "has_body",
    "read_body",
    "stream_body",
    "unsupported_coding",
]


#: How much of a spilled body is read from its file at a time to send upstream.
_READ_SIZE = 65_536


class BodyTooLarge(Exception):
    """The request body is larger than the limit (answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class BodyIncomplete(Exception):
    """The request body ended before it was complete: the client closed the connection, or the
    connection ended it (a malformed body answered 400, a stalled one 408)."""

    def __init__(self, received: int) -> None:
        super().__init__(f"the request body ended after {received} bytes")
        self.received = received


def has_body(headers: Iterable[tuple[str, str]]) -> bool:
    """True when the request says it has a body (a non-zero ``Content-Length``, or chunked)."""
    for name, value in headers:
        key = name.lower()
        if (key == "content-length" or key == "transfer-encoding") and value.strip() not in (
            "",
            "0",
        ):
            return True
    return False


def unsupported_coding(headers: Iterable[tuple[str, str]]) -> str | None:
    """The request's ``Transfer-Encoding`` when it is not just ``chunked`` (None otherwise).

    The parser frames ``gzip, chunked`` by its last coding and hands over the body still
    gzipped; sent on without the header, the upstream would take it for the plain body. nginx
    answers such a request 501, and so does Waypost.
    """
    for name, value in headers:
        if name.lower() == "transfer-encoding" and value.strip().lower() != "chunked":
            return value
    return None


def declared_length(headers: Iterable[tuple[str, str]]) -> int | None:
    """The request's ``Content-Length``, or None (chunked, or none; the parser has already
    refused a malformed or conflicting one)."""
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyDirectory:
    """A private directory (mode 0700, one per worker) for the files of spilled bodies, made the
    first time a body needs one and removed by :meth:`remove`."""

    def __init__(self) -> None:
        self._path: str | None = None

    def __repr__(self) -> str:
        return f"BodyDirectory({self._path!r})"

    @property
    def path(self) -> str:
        """The directory (made now if it does not exist yet)."""
        if self._path is None or not os.path.isdir(self._path):
            # mkdtemp() makes it readable by this user only; $TMPDIR chooses where.
            self._path = tempfile.mkdtemp(prefix="waypost-bodies-")
        return self._path

    def remove(self) -> None:
        """Remove the directory (its files are unlinked already: this only tidies up)."""
        path, self._path = self._path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


class BufferedBody:
    """A request body read to its end: ``size`` bytes, in memory or in an unlinked file.

    Close it with :meth:`close` once the upstream request is done.
    """

    __slots__ = ("_file", "_memory", "size")

    def __init__(self, memory: bytes, file: IO[bytes] | None, size: int) -> None:
        self._memory = memory
        self._file = file
        self.size = size

    def __repr__(self) -> str:
        where = "file" if self._file is not None else "memory"
        return f"<BufferedBody {self.size} bytes in {where}>"

    @property
    def on_disk(self) -> bool:
        """True when the body spilled to a temporary file."""
        return self._file is not None

    def content(self) -> bytes | AsyncIterator[bytes]:
        """The body for httpx: the bytes themselves, or the file read piece by piece."""
        if self._file is None:
            return self._memory
        return self._read(self._file)

    @staticmethod
    async def _read(file: IO[bytes]) -> AsyncIterator[bytes]:
        file.seek(0)
        while chunk := file.read(_READ_SIZE):
            yield chunk

    def close(self) -> None:
        """Let go of the body (its file, if any, disappears: it was never linked)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = b""


async def read_body(
    receive: Receive, *, limit: int, memory: int, directory: BodyDirectory
) -> BufferedBody:
    """Read the request body from ASGI ``receive`` to its end.

    Raises :class:`BodyTooLarge` as soon as it grows past ``limit`` bytes (0: no limit) and
    :class:`BodyIncomplete` when the connection ends before the body does.
    """
    message = await receive()
    chunk = message.get("body", b"") if message["type"] == "http.request" else b""
    more = message.get("more_body", False)
    if message["type"] == "http.request" and not more and len(chunk) <= memory:
        # The usual case: the whole body came in one message (uvicorn gathers what has arrived).
        if limit and len(chunk) > limit:
            raise BodyTooLarge(limit)
        return BufferedBody(chunk, None, len(chunk))
    pieces: list[bytes] = []
    file: IO[bytes] | None = None
    size = 0
    try:
        while True:
            if message["type"] != "http.request":  # http.disconnect: it will never be complete
                raise BodyIncomplete(size)
            size += len(chunk)
            if limit and size > limit:
                raise BodyTooLarge(limit)
            if file is not None:
                file.write(chunk)
            elif chunk:
                pieces.append(chunk)
                if size > memory:
                    file = tempfile.TemporaryFile(dir=directory.path)  # noqa: SIM115
                    file.writelines(pieces)
                    pieces = []
            if not more:
                break
            message = await receive()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
    except BaseException:
        if file is not None:
            file.close()
        raise
    if file is not None:
        file.flush()
        return BufferedBody(b"", file, size)
    return BufferedBody(b"".join(pieces), None, size)


async def stream_body(receive: Receive, *, limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives, for a streamed upstream request.

    Raises (out of the iterator, so the upstream request is aborted) :class:`BodyTooLarge` past
    ``limit`` bytes (0: no limit), and :class:`BodyIncomplete` when the connection ends before
    the body does.
    """
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BodyIncomplete(size)
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit and size > limit:
            raise BodyTooLarge(limit)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
