"""Who the client is behind a load balancer: ``X-Forwarded-For``, trusted only from known proxies.

The peer address of the connection is the client unless it is one of ``trusted_proxies``. Then
``X-Forwarded-For`` is read from the right (each proxy appends the address it saw), skipping
trusted proxies, and the first address that is not one of them is the client. A malformed
entry stops the walk at the last trusted hop: a client cannot forge its way past a proxy, since
whatever it sent stands to the left of what the proxy appended.

The scheme the client used (for ``scheme:`` conditions, and the ``X-Forwarded-Proto`` Waypost
sends on) is the connection's own, or, from a trusted proxy, its ``X-Forwarded-Proto``: the last
entry of the header (the one the nearest proxy wrote, as Werkzeug's ``ProxyFix`` reads it), when
that is ``http`` or ``https``. From anyone else the header is ignored: a client cannot make an
http request look like https.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from waypost.exceptions import SettingsError

__all__ = ["TrustedProxies", "parse_trusted_proxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(text: str | None) -> tuple[Network, ...]:
    """``'10.0.0.0/8, 127.0.0.1'`` -> networks; raises SettingsError naming a bad entry."""
    networks: list[Network] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"trusted_proxies: {item!r} is not an address or CIDR block like '10.0.0.0/8'"
            ) from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """Finds the real client address for requests arriving through trusted proxies."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self.networks]!r})"

    def trusts(self, address: str | None) -> bool:
        """True when ``address`` is one of the trusted proxies."""
        parsed = _address(address) if address else None
        return parsed is not None and any(
            parsed in net for net in self.networks if net.version == parsed.version
        )

    def client(self, peer: str | None, headers: Iterable[tuple[str, str]]) -> str | None:
        """The client's address for a connection from ``peer`` with these request headers."""
        if not self.networks or not self.trusts(peer):
            return peer
        chain: list[str] = []
        for name, value in headers:
            if name.lower() == "x-forwarded-for":
                chain.extend(part.strip() for part in value.split(","))
        client = peer
        for entry in reversed(chain):
            if _address(entry) is None:
                break  # garbage: stop at the last hop a trusted proxy vouched for
            client = entry
            if not self.trusts(entry):
                break
        return client

    def scheme(self, peer: str | None, headers: Iterable[tuple[str, str]], own: str) -> str:
        """The scheme the client used: ``own`` (the connection's), or from a trusted proxy the
        last ``X-Forwarded-Proto`` entry when it is ``http`` or ``https``."""
        if not self.networks or not self.trusts(peer):
            return own
        forwarded: str | None = None
        for name, value in headers:
            if name.lower() == "x-forwarded-proto":
                forwarded = value  # a repeated header: the last one is the nearest proxy's
        if forwarded is None:
            return own
        last = forwarded.rpartition(",")[2].strip().lower()
        return last if last in ("http", "https") else own
