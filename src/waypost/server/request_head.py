"""What a request head must be before Waypost acts on it: the checks nginx makes and llhttp leaves.

httptools (llhttp, with every leniency off: see :mod:`waypost.server.protocol`) already refuses a
malformed request line, header line or body framing. A head it lets through can still be one that
nginx refuses and that an upstream behind Waypost could read differently from Waypost, so
:func:`check_request_head` refuses it too, the way nginx does:

=====================================================  ======  =====================================
The request                                            nginx   Waypost
=====================================================  ======  =====================================
a version other than HTTP/1.0 or HTTP/1.1 (``2.0``)    505     505
HTTP/1.1 without ``Host``                              400     400
two ``Host`` header lines                              400     400
a ``Host`` that is not a host[:port] (``a/b``, ``..``) 400     400
``*`` as the target of anything but ``OPTIONS``       400     400
a target that is neither ``/...`` nor ``http(s)://``   400     400
``CONNECT``                                            405     405
``Transfer-Encoding`` in an HTTP/1.0 request           400     400
``Transfer-Encoding`` other than ``chunked``           501     501
=====================================================  ======  =====================================

A target in absolute form (``GET http://other.example/ HTTP/1.1``) names the host itself: as
RFC 9112 §3.2.2 says and nginx does, its authority replaces ``Host``, so the rules, the admin
API's host binding and ``X-Forwarded-Host`` all see that one host. (The ``Host`` line must still be
there and valid, as nginx requires.)

Header names with ``_`` are dropped before anything sees them (nginx's default,
``underscores_in_headers off``), by the protocol as they arrive: an upstream that folds ``_``
into ``-`` (CGI, PHP, WSGI servers) must never read ``Transfer_Encoding`` as framing.

The module is sans-io: bytes in, a :class:`Refusal` or ``None`` out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Refusal", "check_request_head"]

# RFC 3986 authority without userinfo: an IP literal or a reg-name (unreserved, sub-delims and
# pct-encoded), then an optional port.
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?")
_ABSOLUTE = re.compile(rb"(?i)(https?)://([^/?#]*)([^#]*)")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused from its head: the status to answer with and why, for the client."""

    status: int
    detail: str


def _valid_host(value: bytes) -> bool:
    # nginx (ngx_http_validate_host) also refuses "..", which a reg-name would allow.
    return _HOST.fullmatch(value) is not None and b".." not in value


def check_request_head(
    method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]]
) -> tuple[Refusal | None, bytes]:
    """Refuse the head of a request, or accept it and return its target in origin form.

    ``headers`` are the (lower-cased) header lines as parsed. When the target is in absolute form
    its authority replaces the ``Host`` line in ``headers`` (in place), and the returned target is
    its path and query (``/`` when it has no path). Returns ``(refusal or None, target)``.
    """
    if version not in ("1.1", "1.0"):
        return Refusal(505, f"HTTP/{version} is not supported: send HTTP/1.1."), target
    hosts = [i for i, (name, _) in enumerate(headers) if name == b"host"]
    if len(hosts) > 1:
        return Refusal(400, "The request has more than one Host header."), target
    if not hosts and version == "1.1":
        return Refusal(400, "An HTTP/1.1 request must have a Host header."), target
    if hosts and not _valid_host(headers[hosts[0]][1].strip(b" \t")):
        return Refusal(400, "The Host header is not a host name with an optional port."), target
    if method == b"CONNECT":
        return Refusal(405, "CONNECT is not supported: this is not a forward proxy."), target
    if target == b"*":
        if method != b"OPTIONS":
            return Refusal(400, "The target '*' is only for OPTIONS."), target
    elif not target.startswith(b"/"):
        absolute = _ABSOLUTE.fullmatch(target)
        if absolute is None:
            detail = "The request target must be a path starting with '/' or an http(s):// URL."
            return Refusal(400, detail), target
        authority, rest = absolute.group(2), absolute.group(3)
        if not _valid_host(authority):
            return Refusal(400, "The host in the request target is not valid."), target
        if hosts:
            headers[hosts[0]] = (b"host", authority)
        else:  # HTTP/1.0 may leave Host out; the target names the host
            headers.append((b"host", authority))
        target = rest if rest.startswith(b"/") else b"/" + rest
    framing = [value for name, value in headers if name == b"transfer-encoding"]
    if framing:
        if version == "1.0":
            # RFC 9112 §6.1: the framing of such a message is faulty, whatever else it says.
            return Refusal(400, "An HTTP/1.0 request cannot use Transfer-Encoding."), target
        if len(framing) > 1 or framing[0].strip(b" \t").lower() != b"chunked":
            detail = "Transfer-Encoding other than 'chunked' is not supported."
            return Refusal(501, detail), target
    return None, target
