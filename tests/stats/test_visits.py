"""waypost.stats.visits: the client address a visit keeps."""

from __future__ import annotations

import pytest

from waypost.stats.visits import anonymize


@pytest.mark.parametrize(
    ("address", "mode", "kept"),
    [
        ("203.0.113.77", "anonymized", "203.0.113.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "anonymized", "2001:db8:85a3::"),
        ("::ffff:198.51.100.9", "anonymized", "198.51.100.0"),
        ("[2001:db8::1]", "anonymized", "2001:db8::"),
        ("203.0.113.77", "full", "203.0.113.77"),
        ("203.0.113.77", "none", None),
        ("not an address", "anonymized", None),
        (None, "anonymized", None),
    ],
)
def test_anonymize(address: str | None, mode: str, kept: str | None) -> None:
    assert anonymize(address, mode) == kept  # type: ignore[arg-type]
