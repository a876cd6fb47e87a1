"""Closing a connection whose request was refused before it was read to its end.

Closing a socket with data unread makes the kernel reset the connection, and a reset can reach
the client before it has read the answer (a 431 while it is still sending a huge head, a 413
while it sends its body). As nginx's ``lingering_close`` does, the answer is followed by the end
of this side of the connection (FIN), and what the client still sends is read and dropped until
it closes, for at most ``LINGER_SECONDS`` and ``LINGER_BYTES``. Both the main server's protocol
and the plain-HTTP redirect listener use this.
"""

from __future__ import annotations

import asyncio

__all__ = ["LINGER_BYTES", "LINGER_SECONDS", "half_close"]

#: How long a refused connection is still read after its answer (nginx's lingering_timeout).
LINGER_SECONDS = 5.0
#: ... and how much of it: a client that keeps sending without reading is not read for ever.
LINGER_BYTES = 64 * 1024 * 1024


def half_close(transport: asyncio.Transport) -> bool:
    """End this side of the connection once what was written is sent, and keep reading.

    False when that cannot be done (TLS has no half-close: its close_notify says the same) and
    the transport was closed instead."""
    try:
        if transport.can_write_eof():
            transport.write_eof()
            transport.resume_reading()
            return True
    except (OSError, RuntimeError):
        pass
    transport.close()
    return False
