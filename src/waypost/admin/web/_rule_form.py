"""The rule form of the admin page, free of HTTP: a stored rule's mapping as the form's fields,
and the fields back as a rule mapping.

The form has a field for what most rules hold (``from``, the action and its target, ``status``,
``name``, ``note``) and a YAML text for the rest (``when``, ``methods``, ``set_headers``,
``require``, ...), so that editing a rule in the browser never drops a key the form has no field
for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

__all__ = ["ACTIONS", "FIELD_OF_KEY", "RuleForm"]

Action = Literal["redirect", "rewrite", "respond", "pass"]
ACTIONS: tuple[Action, ...] = ("redirect", "rewrite", "respond", "pass")
_OWN_KEYS = ("from", "to", "rewrite", "respond", "pass", "status", "name", "note", "enabled")
#: Which form field holds each rule key (a problem with the key is shown next to it).
FIELD_OF_KEY = {
    "from": "from",
    "to": "target",
    "rewrite": "target",
    "respond": "status",
    "pass": "action",
    "status": "status",
    "name": "name",
    "note": "note",
    "enabled": "enabled",
}
MORE_FIELD = "more"


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RuleForm:
    """The fields of the rule form, as text (what a browser posts)."""

    from_path: str = ""
    action: str = "redirect"
    target: str = ""
    status: str = ""
    name: str = ""
    note: str = ""
    more: str = ""
    enabled: bool = True

    @classmethod
    def of_rule(cls, rule: Mapping[str, Any]) -> RuleForm:
        """The form showing ``rule`` (a rules-file mapping)."""
        action: Action = "redirect"
        target = rule.get("to")
        status = rule.get("status")
        rest = {key: value for key, value in rule.items() if key not in _OWN_KEYS}
        if "rewrite" in rule:
            action, target = "rewrite", rule["rewrite"]
        elif "respond" in rule:
            action = "respond"
            if isinstance(rule["respond"], int):
                status = rule["respond"]
            else:  # {status, body, headers}: kept whole in the YAML
                rest = {"respond": rule["respond"], **rest}
        elif "pass" in rule:
            action = "pass"
            if rule["pass"] is not True:
                rest = {"pass": rule["pass"], **rest}
        more = yaml.safe_dump(rest, sort_keys=False, allow_unicode=True) if rest else ""
        return cls(
            from_path=_text(rule.get("from")),
            action=action,
            target=_text(target),
            status=_text(status),
            name=_text(rule.get("name")),
            note=_text(rule.get("note")),
            more=more,
            enabled=rule.get("enabled", True) is not False,
        )

    @classmethod
    def of_fields(cls, fields: Mapping[str, str]) -> RuleForm:
        """The form as posted (missing fields are empty)."""
        return cls(
            from_path=fields.get("from", ""),
            action=fields.get("action", "redirect"),
            target=fields.get("target", ""),
            status=fields.get("status", ""),
            name=fields.get("name", ""),
            note=fields.get("note", ""),
            more=fields.get("more", ""),
            enabled=fields.get("enabled", "") == "on" or fields.get("has_enabled") != "1",
        )

    def to_rule(self) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The rule mapping these fields make, and the problems only the form can have (a
        status that is not a number, YAML that does not read, an unknown action); the rest is
        for the rules loader to say."""
        problems: list[tuple[str, str]] = []
        rest: dict[str, Any] = {}
        if self.more.strip():
            try:
                loaded = yaml.safe_load(self.more)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 1})" if mark is not None else ""
                problems.append(
                    (MORE_FIELD, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}")
                )
                loaded = {}
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                problems.append(
                    (MORE_FIELD, "must be YAML mapping keys to values, like 'methods: [GET]'")
                )
                loaded = {}
            rest = {str(key): value for key, value in loaded.items()}
            for key in ("from", "name", "note", "enabled"):
                if key in rest:
                    problems.append(
                        (MORE_FIELD, f"{key!r} has its own field above; remove it here")
                    )
        status: int | None = None
        if self.status.strip():
            try:
                status = int(self.status.strip())
            except ValueError:
                problems.append(("status", f"must be a number such as 301, got {self.status!r}"))
        rule: dict[str, Any] = {}
        if self.name.strip():
            rule["name"] = self.name.strip()
        rule["from"] = self.from_path.strip()
        if self.action == "redirect":
            rule["to"] = self.target.strip()
            if status is not None:
                rule["status"] = status
        elif self.action == "rewrite":
            rule["rewrite"] = self.target.strip()
        elif self.action == "respond":
            if "respond" not in rest:
                rule["respond"] = status if status is not None else 410
        elif self.action == "pass":
            if "pass" not in rest:
                rule["pass"] = True
        else:
            problems.append(("action", f"must be one of {', '.join(ACTIONS)}, got {self.action!r}"))
        if self.note.strip():
            rule["note"] = self.note.strip()
        if not self.enabled:
            rule["enabled"] = False
        for key, value in rest.items():
            rule.setdefault(key, value)
        return rule, problems
