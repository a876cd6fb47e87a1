"""Where a 404 path most likely moved to: the stored rules' closest literal targets."""

from __future__ import annotations

from pathlib import Path

from waypost.admin.service import EngineCache
from waypost.admin.web.suggest import TargetIndex
from waypost.store.sqlite import SqliteStore


def test_the_closest_literal_targets_come_first(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rules.db")
    try:
        store.replace_rules(
            [
                {"from": "/blog/old-title", "to": "/articles/old-title"},
                {"from": "/shop", "to": "https://shop.example.com/"},
                {"from": "/x/<int:n>", "to": "/items/{n}"},  # a template: not a page
                {"from": "/y", "rewrite": "/articles/other"},
            ],
            allowed_hosts=["shop.example.com"],
        )
        index = TargetIndex(EngineCache(store))
        found = index.suggest("/blog/old-tilte")
        assert found[0] == "/articles/old-title"
        assert all("{" not in target for target in index.targets())
        assert index.suggest("") == []
        store.create_rule({"from": "/z", "to": "/brand-new-page"})
        assert "/brand-new-page" in index.targets()  # follows the revision
    finally:
        store.close()
