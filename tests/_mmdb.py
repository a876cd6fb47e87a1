"""A MaxMind DB file (the GeoLite2 format) written for tests: one IPv4 network and its record.

The format is MaxMind's (https://maxmind.github.io/MaxMind-DB/): a binary search tree of 24-bit
records, 16 zero bytes, the data section, then the metadata after ``\\xab\\xcd\\xefMaxMind.com``.
No GeoLite2 file can be shipped with the tests (its licence asks for an account), and the
``maxminddb`` package reads this one as it reads theirs.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def _encode(value: Any) -> bytes:
    """A value in the data section's encoding: maps, UTF-8 strings, arrays, and ``(type,
    number)`` for unsigned integers (5: uint16, 6: uint32, 9: uint64)."""
    if isinstance(value, dict):
        return bytes([(7 << 5) | len(value)]) + b"".join(
            _encode(k) + _encode(v) for k, v in value.items()
        )
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return bytes([(2 << 5) | len(raw)]) + raw
    if isinstance(value, list):  # an extended type: 11 (array) - 7
        return bytes([len(value), 4]) + b"".join(_encode(v) for v in value)
    kind, number = value
    raw = number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
    if kind <= 7:
        return bytes([(kind << 5) | len(raw)]) + raw
    return bytes([len(raw), kind - 7]) + raw


def mmdb(network: str, record: dict[str, Any]) -> bytes:
    """An IPv4 database in which ``network`` (a CIDR block) maps to ``record``."""
    net = ipaddress.ip_network(network)
    bits = format(int(net.network_address), "032b")[: net.prefixlen]
    count = len(bits)
    nodes = []
    for depth, bit in enumerate(bits):
        # A record of ``count`` means "nothing here"; past the tree, count + 16 + offset is
        # data (the record, at offset 0).
        pair = [count, count]
        pair[int(bit)] = depth + 1 if depth + 1 < count else count + 16
        nodes.append(pair[0].to_bytes(3, "big") + pair[1].to_bytes(3, "big"))
    metadata = {
        "node_count": (6, count),
        "record_size": (5, 24),
        "ip_version": (5, 4),
        "database_type": "Waypost-Test-Country",
        "languages": ["en"],
        "binary_format_major_version": (5, 2),
        "binary_format_minor_version": (5, 0),
        "build_epoch": (9, 1_800_000_000),
        "description": {"en": "a test database"},
    }
    return (
        b"".join(nodes)
        + bytes(16)
        + _encode(record)
        + b"\xab\xcd\xefMaxMind.com"
        + _encode(metadata)
    )
