"""A rules file with guards is not imported into the rule store (which does not hold them yet):
refused with a message, never stored without its guards (which would serve the area open)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.serving import start_server
from waypost.exceptions import RulesError
from waypost.store.transfer import read_document

RULES = """\
rules:
  - from: /old
    to: /new
  - from: /admin/<path:rest>
    require: app
guards:
  app: {session: {secret_env: HOME}}
"""


def test_a_file_with_guards_is_not_read_into_the_store(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with pytest.raises(RulesError) as caught:
        read_document(rules)
    assert f"{rules}:7" in str(caught.value)
    assert "the rule store does not hold guards yet" in str(caught.value)


def test_serving_it_with_a_store_fails_to_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with pytest.raises(pytest.fail.Exception, match="does not hold guards yet"):
        start_server(rules, "--db", f"sqlite:///{tmp_path / 'w.db'}", tmp=tmp_path)
