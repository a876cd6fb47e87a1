"""Rules files in and out of the store: ``waypost db import`` and ``waypost db export``.

Import keeps each rule as it was written (not the loader's expanded form), so an export reads like
the file that was imported and a rule without its own ``query:`` keeps following the defaults. The
file is first loaded with the same loader as ``waypost check``, so its errors carry
``file:line:col``. A CSV file (a table of from,to,status[,name]) becomes plain mappings.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from waypost.exceptions import RuleError, RulesError
from waypost.rules.load import FORMATS, read_rules
from waypost.rules.model import Redirect, Rule
from waypost.store.model import Snapshot

__all__ = ["RulesDocument", "dump_document", "read_document"]


@dataclass(frozen=True, slots=True)
class RulesDocument:
    """A rules file's content as mappings: what :meth:`Store.replace_rules` takes."""

    rules: tuple[Mapping[str, Any], ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    allowed_hosts: tuple[str, ...] = ()
    proxy_hosts: tuple[str, ...] = ()


def _csv_mapping(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.name:
        out["name"] = rule.name
    out["from"] = rule.path
    if isinstance(rule.action, Redirect):
        out["to"] = rule.action.text
        out["status"] = rule.action.status
    return out


def read_document(path: str | Path) -> RulesDocument:
    """The rules file at ``path`` as mappings; RulesError (every problem, located) if it does
    not load."""
    path = Path(path)
    ruleset, errors = read_rules(path)
    if errors:
        raise RulesError(errors, file=str(path))
    if ruleset.guards or ruleset.guard_rules:
        # Refused rather than dropped: a store without the guards would serve the area open.
        first = ruleset.guards[0] if ruleset.guards else ruleset.guard_rules[0]
        raise RulesError(
            [
                RuleError(
                    "the rule store does not hold guards yet ('guards:' and 'require:'); serve "
                    "this file directly (waypost serve FILE, without --db), or keep the guarded "
                    "rules out of the store",
                    file=str(path),
                    line=first.line,
                )
            ],
            file=str(path),
        )
    format = FORMATS[path.suffix.lower()]
    if format == "csv":
        return RulesDocument(tuple(_csv_mapping(rule) for rule in ruleset.rules))
    text = path.read_text(encoding="utf-8-sig")
    if format == "yaml":
        document = yaml.safe_load(text)
    elif format == "json":
        document = json.loads(text)
    else:
        document = tomllib.loads(text)
    if isinstance(document, list):
        document = {"rules": document}
    document = document or {}
    hosts = document.get("allowed_hosts") or ()
    proxy = document.get("proxy_hosts") or ()
    return RulesDocument(
        tuple(document.get("rules") or ()),
        dict(document.get("defaults") or {}),
        tuple([hosts] if isinstance(hosts, str) else hosts),
        tuple([proxy] if isinstance(proxy, str) else proxy),
    )


def dump_document(snapshot: Snapshot) -> str:
    """The snapshot as a YAML rules file (what ``waypost db export`` prints)."""
    header = f"# Exported from the Waypost rule store at revision {snapshot.revision}.\n"
    body = yaml.safe_dump(
        snapshot.to_document(), sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return header + body
