"""The access log, one line per request in the combined log format (Apache's and nginx's default).

::

    127.0.0.1 - - [22/Nov/2026:01:19:02 +0000] "GET /old-page HTTP/1.1" 301 24 "-" "curl/8.5.0"

:class:`AccessLog` writes lines to the ``waypost.access`` logger. The standalone server uses
:class:`BufferedAccessLog` instead, which writes whole lines straight to standard output in
batches, at most half a second late (nginx's ``access_log ... buffer= flush=``): a line through
the logging module costs more than answering the request does. Text that came from the
client (the request line, Referer, User-Agent) is escaped as nginx does: a quote, a backslash or
any byte outside printable ASCII is written ``\\xHH``, so a client can neither forge a line nor
smuggle a terminal control sequence into the log.
"""

from __future__ import annotations

import logging
import os
import re
import time

__all__ = ["AccessLog", "BufferedAccessLog", "escape"]

#: A write to a pipe of at most this many bytes is atomic (POSIX PIPE_BUF): lines from several
#: workers sharing standard output never interleave within a line.
_ATOMIC_WRITE = 4096
_MAX_PENDING = 256

access_logger = logging.getLogger("waypost.access")

#: What a line tells, in the order of :meth:`AccessLog.line`'s arguments: client, method,
#: target, protocol, status, size, referer, user agent.
LineFields = tuple[str | None, str, str, str, int, int, str | None, str | None]

_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def _hex(match: re.Match[str]) -> str:
    return "".join(f"\\x{byte:02X}" for byte in match.group(0).encode("utf-8", "surrogateescape"))


def escape(text: str) -> str:
    """``text`` with quotes, backslashes and non-printable or non-ASCII characters as ``\\xHH``."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return _UNSAFE.sub(_hex, text)


class AccessLog:
    """Formats and writes combined-format lines."""

    __slots__ = ("_logger", "_second", "_stamp")

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or access_logger
        self._second = -1
        self._stamp = ""

    def __repr__(self) -> str:
        return f"AccessLog({self._logger.name!r})"

    def _now(self) -> str:
        # Formatting the time is the costliest part of a line: do it once per second.
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second))
        return self._stamp

    def line(
        self,
        client: str | None,
        method: str,
        target: str,
        protocol: str,
        status: int,
        size: int,
        referer: str | None,
        user_agent: str | None,
    ) -> str:
        """One combined-format line (without the newline)."""
        request = escape(f"{method} {target} {protocol}")
        return (
            f'{client or "-"} - - [{self._now()}] "{request}" {status} {size or "-"} '
            f'"{escape(referer) if referer else "-"}" "{escape(user_agent) if user_agent else "-"}"'
        )

    def write(self, *fields: *LineFields) -> None:
        """Write one line: :meth:`line` of the same fields."""
        self._emit(self.line(*fields))

    def _emit(self, line: str) -> None:
        self._logger.info(line)


class BufferedAccessLog(AccessLog):
    """Lines written to a file descriptor (standard output) in batches of whole lines.

    Lines wait until :meth:`flush` (the server calls it twice a second and at shutdown) or until
    256 are pending. Each ``write(2)`` carries whole lines and at most 4 KiB unless a single line
    is longer, so workers sharing a pipe do not cut into each other's lines.
    """

    __slots__ = ("_fd", "_pending")

    def __init__(self, fd: int = 1) -> None:
        super().__init__()
        self._fd = fd
        self._pending: list[str] = []

    def __repr__(self) -> str:
        return f"BufferedAccessLog(fd={self._fd})"

    def _emit(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= _MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Write every pending line."""
        pending, self._pending = self._pending, []
        chunk: list[bytes] = []
        size = 0
        for text in pending:
            line = text.encode("ascii", "replace") + b"\n"  # escape() left only ASCII
            if chunk and size + len(line) > _ATOMIC_WRITE:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except BlockingIOError:  # a full non-blocking pipe: drop the rest rather than stall
            return
        except OSError:  # standard output closed: nothing to be done about it here
            return
