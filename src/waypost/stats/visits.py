"""Visits: a sampled log of individual redirects, with the client's address anonymized.

:func:`anonymize` gives the address a visit keeps: by default the network, not the host (the
last octet of an IPv4 address and the last 80 bits of an IPv6 address set to zero, as Shlink
and WordPress Redirection do for data-protection law), or the whole address, or none.
:class:`Visit` is one logged redirect, before its country is looked up (off the request path,
when the visits are written).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

__all__ = ["ADDRESS_MODES", "AddressMode", "Visit", "anonymize"]

AddressMode = Literal["anonymized", "full", "none"]
ADDRESS_MODES: tuple[AddressMode, ...] = ("anonymized", "full", "none")


def anonymize(address: str | None, mode: AddressMode = "anonymized") -> str | None:
    """The client address a visit keeps under ``mode``; None for none (or not an address)."""
    if address is None or mode == "none":
        return None
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    if mode == "full":
        return str(parsed)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False).network_address)


@dataclass(frozen=True, slots=True)
class Visit:
    """One redirect logged: when (Unix time), the rule's key, where the visitor was sent, the
    referrer, the user agent and the client address as kept (see :func:`anonymize`)."""

    at: float
    rule_key: str
    location: str | None
    referrer: str | None
    user_agent: str | None
    client: str | None
