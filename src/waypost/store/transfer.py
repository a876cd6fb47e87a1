"""Rules files in and out of the store: ``waypost db import`` and ``waypost db export``.

Import keeps each rule as it was written (not the loader's expanded form), so an export reads like
the file that was imported and a rule without its own ``query:`` keeps following the defaults. The
file is first loaded with the same loader as ``waypost check``, so its errors carry
``file:line:col``. A CSV file (a table of from,to,status[,name]) becomes plain mappings.

A file's ``guards:`` come along as written, except that a file a guard names by a relative path
(``htpasswd: staff.htpasswd``, a ``jwt`` guard's ``public_key``) is given by its absolute path:
the one the loader reads, next to the rules file. The store has no rules file for a path to be
relative to, and the server reading the store may run from any folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from waypost.exceptions import RulesError
from waypost.rules.load import FORMATS, read_rules_document
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
    #: Guard name -> declaration, as under the file's ``guards:`` (paths made absolute).
    guards: Mapping[str, Any] = field(default_factory=dict)


# libyaml's emitter, when PyYAML was built with it: the pure-Python one takes minutes for a
# million rules. Both write what yaml.safe_load reads back the same.
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# The options of a guard kind that name a file, relative to the rules file (as the loader reads).
_PATH_OPTIONS = {"basic": "htpasswd", "jwt": "public_key"}


def _absolute_paths(guards: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """``guards`` with each relative path option made absolute against ``folder``."""
    out: dict[str, Any] = {}
    for name, body in guards.items():
        body = dict(body)
        for kind, option in _PATH_OPTIONS.items():
            options = body.get(kind)
            if isinstance(options, Mapping) and isinstance(options.get(option), str):
                path = options[option]
                if not Path(path).is_absolute():
                    body[kind] = {**options, option: os.path.abspath(folder / path)}
        out[str(name)] = body
    return out


def _csv_mapping(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.name:
        out["name"] = rule.name
    out["from"] = rule.path
    action = rule.action
    if isinstance(action, Redirect):
        out["to"] = action.text
        out["status"] = action.status
    return out


def read_document(path: str | Path) -> RulesDocument:
    """The rules file at ``path`` as mappings; RulesError (every problem, located) if it does
    not load."""
    path = Path(path)
    # One parse gives the rules (to check) and the values as written (to store).
    ruleset, document, errors = read_rules_document(path)
    if errors:
        raise RulesError(errors, file=str(path))
    if FORMATS[path.suffix.lower()] == "csv":
        return RulesDocument(tuple(_csv_mapping(rule) for rule in ruleset.rules))
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
        _absolute_paths(document.get("guards") or {}, path.parent),
    )


def dump_document(snapshot: Snapshot) -> str:
    """The snapshot as a YAML rules file (what ``waypost db export`` prints)."""
    header = f"# Exported from the Waypost rule store at revision {snapshot.revision}.\n"
    body = yaml.dump(
        snapshot.to_document(),
        Dumper=_DUMPER,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    return header + body
