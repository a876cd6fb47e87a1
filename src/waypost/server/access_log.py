"""The access log, one line per request in the combined log format (Apache's and nginx's default).

::

    127.0.0.1 - - [22/Nov/2026:01:19:02 +0000] "GET /old-page HTTP/1.1" 301 24 "-" "curl/8.5.0"

Lines go to the ``waypost.access`` logger (standard output by default). Text that came from the
client (the request line, Referer, User-Agent) is escaped as nginx does: a quote, a backslash or
any byte outside printable ASCII is written ``\\xHH``, so a client can neither forge a line nor
smuggle a terminal control sequence into the log.
"""

from __future__ import annotations

import logging
import re
import time

__all__ = ["AccessLog", "escape"]

access_logger = logging.getLogger("waypost.access")

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

    def write(
        self,
        client: str | None,
        method: str,
        target: str,
        protocol: str,
        status: int,
        size: int,
        referer: str | None,
        user_agent: str | None,
    ) -> None:
        """Write one line to the access logger."""
        self._logger.info(
            self.line(client, method, target, protocol, status, size, referer, user_agent)
        )
