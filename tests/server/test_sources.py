"""Where the server's rules come from: a FileSource or a StoreSource."""

from __future__ import annotations

from waypost.server.sources import StoreSource


def test_a_store_source_shows_no_password() -> None:
    source = StoreSource("postgresql://waypost:s3cret@db.internal/rules", 4)
    assert repr(source) == "StoreSource('postgresql://waypost:***@db.internal/rules', revision=4)"
    assert source.url == "postgresql://waypost:s3cret@db.internal/rules"
