"""Configuration in one place: every setting, its default, its help text and its environment variable.

CLI flags mirror these (``waypost serve --port`` is ``WAYPOST_PORT``); a test checks every setting
is documented in the README.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SETTINGS", "Setting", "Settings"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One declared setting."""

    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "WAYPOST_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address the server binds to."),
    Setting("port", 8080, "Port the server listens on."),
    Setting("access_log", True, "Write an access log line per request (combined format)."),
    Setting("log_level", "info", "Log level: debug, info, warning or error."),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings: defaults, overridden by ``WAYPOST_*`` variables, then by flags."""

    host: str = "127.0.0.1"
    port: int = 8080
    access_log: bool = True
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then ``overrides`` (flags given explicitly)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is None:
                continue
            if isinstance(setting.default, bool):
                values[setting.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(setting.default, int):
                values[setting.name] = int(raw)
            else:
                values[setting.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
