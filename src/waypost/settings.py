"""Configuration in one place: each setting, its default, its help and its environment variable.

CLI flags mirror these (``waypost serve --port`` is ``WAYPOST_PORT``; ``--no-access-log`` is
``WAYPOST_ACCESS_LOG=no``); a test checks every setting is documented in the README. The order of
precedence is: the default, then the ``WAYPOST_*`` environment variable, then a flag given
explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SETTINGS", "Setting", "Settings", "SettingsError"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class SettingsError(ValueError):
    """A setting's value (from the environment or a flag) is not usable."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One declared setting: its name, default, help text and value type.

    ``kind`` is the type of the value (``bool``, ``int``, ``float`` or ``str``); a setting whose
    default is None is an optional ``kind``.
    """

    name: str
    default: Any
    help: str
    kind: type = str

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "WAYPOST_" + self.name.upper()

    @property
    def flag(self) -> str:
        """The command-line flag that sets it (``--max-request-line``)."""
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: str) -> Any:
        """The value of ``raw`` text (from the environment); raises :class:`SettingsError`."""
        text = raw.strip()
        if self.kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise SettingsError(
                f"{self.env}={raw!r} is not a yes/no value; use 1/0, yes/no, on/off"
            )
        if self.default is None and not text:
            return None
        try:
            return self.kind(text)
        except ValueError:
            raise SettingsError(
                f"{self.env}={raw!r} is not a valid {self.kind.__name__} ({self.help})"
            ) from None


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address the server binds to."),
    Setting("port", 8080, "Port the server listens on.", int),
    Setting("workers", 1, "Number of worker processes.", int),
    Setting("access_log", True, "Write an access log line per request (combined format).", bool),
    Setting("log_level", "info", "Log level: debug, info, warning or error."),
    Setting(
        "db",
        None,
        "Serve the rules of this rule store (sqlite:///waypost.db, postgresql://...) instead of "
        "a file; every committed change is picked up within a second.",
    ),
    Setting(
        "upstream",
        None,
        "URL of the site behind Waypost: requests that pass or are rewritten are proxied there.",
    ),
    Setting(
        "trusted_proxies",
        None,
        "Comma-separated addresses or CIDR blocks of the load balancers in front of Waypost; "
        "for requests from them the client address comes from X-Forwarded-For.",
    ),
    Setting(
        "upstream_timeout",
        30.0,
        "Seconds to wait for the upstream to connect or send data before answering 504.",
        float,
    ),
    Setting(
        "not_found_template",
        None,
        "A Jinja template file for the 404 page (used when there is no upstream).",
    ),
    Setting(
        "redirect_max_age",
        3600,
        "Cache-Control max-age (seconds) of permanent redirects whose rule sets no max_age.",
        int,
    ),
    Setting(
        "reload_interval",
        0.25,
        "Seconds between checks of the rules file (and of the TLS certificate) for changes; "
        "0 turns hot reload off.",
        float,
    ),
    Setting(
        "reload_max_shrink",
        0.5,
        "Largest share of the serving rules a reload of the rules file may drop (0.5: half); a "
        "file that drops more, or every rule, is held back (the previous rules keep serving, "
        "health says degraded) until it changes or says allow_shrink: true. 1 turns this off.",
        float,
    ),
    Setting(
        "max_request_line",
        8190,
        "Longest request target (path and query) in bytes; longer ones get 414.",
        int,
    ),
    Setting(
        "max_header_bytes",
        32768,
        "Largest total size of the request headers in bytes; larger ones get 431.",
        int,
    ),
    Setting(
        "max_body_bytes",
        10_485_760,
        "Largest request body in bytes that is sent upstream; a larger one gets 413 (0: no limit).",
        int,
    ),
    Setting(
        "body_buffer_bytes",
        262_144,
        "Bytes of a request body held in memory while it is read; the rest goes to a temporary "
        "file.",
        int,
    ),
    Setting(
        "request_buffering",
        "on",
        "on: read a request body to its end before the upstream sees the request; off: stream "
        "it, and abort the upstream request if the body fails.",
    ),
    Setting(
        "keep_alive_timeout",
        5.0,
        "Seconds an idle keep-alive connection (or a request head that stopped arriving) is kept.",
        float,
    ),
    Setting(
        "header_timeout",
        10.0,
        "Seconds a request head may take to arrive, counted from its first byte; a slower one "
        "gets 408 and the connection is closed (nginx's client_header_timeout).",
        float,
    ),
    Setting(
        "body_timeout",
        30.0,
        "Seconds a request body may go without a byte arriving; a stalled one gets 408 and the "
        "connection is closed (nginx's client_body_timeout).",
        float,
    ),
    Setting(
        "tls_cert",
        None,
        "PEM file with the server's certificate (and its chain); with tls_key the server speaks "
        "HTTPS instead of HTTP.",
    ),
    Setting("tls_key", None, "PEM file with the private key of tls_cert."),
    Setting(
        "http_redirect_port",
        None,
        "With tls_cert: also listen for plain HTTP on this port (like 80) and redirect every "
        "request there to the same URL over HTTPS (308).",
        int,
    ),
    Setting(
        "graceful_timeout",
        30.0,
        "Seconds in-flight requests may take to finish after SIGTERM before workers are killed.",
        float,
    ),
    Setting(
        "https_redirect_hosts",
        None,
        "With http_redirect_port: comma-separated host names (*.example.org for subdomains) the "
        "plain-HTTP listener sends to HTTPS; a request for any other Host gets 400. Default: "
        "any plain host name.",
    ),
    Setting(
        "public_health_details",
        False,
        "Show /_waypost/health's details (rule count, revision, store, reason, pid) to anyone; "
        "off, they need a read API key (with --db) and anyone else sees only ok or degraded.",
        bool,
    ),
    Setting(
        "public_metrics",
        True,
        "Answer /_waypost/metrics to anyone (counts only); off, it needs a read API key, so "
        "only with --db.",
        bool,
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings: defaults, overridden by ``WAYPOST_*`` variables, then by flags."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    access_log: bool = True
    log_level: str = "info"
    db: str | None = None
    upstream: str | None = None
    trusted_proxies: str | None = None
    upstream_timeout: float = 30.0
    not_found_template: str | None = None
    redirect_max_age: int = 3600
    reload_interval: float = 0.25
    reload_max_shrink: float = 0.5
    max_request_line: int = 8190
    max_header_bytes: int = 32768
    max_body_bytes: int = 10_485_760
    body_buffer_bytes: int = 262_144
    request_buffering: str = "on"
    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    tls_cert: str | None = None
    tls_key: str | None = None
    http_redirect_port: int | None = None
    graceful_timeout: float = 30.0
    https_redirect_hosts: str | None = None
    public_health_details: bool = False
    public_metrics: bool = True

    @property
    def buffers_requests(self) -> bool:
        """True unless ``request_buffering`` is ``off``."""
        return self.request_buffering.strip().lower() != "off"

    @property
    def scheme(self) -> str:
        """``https`` when the server speaks TLS itself, else ``http``."""
        return "https" if self.tls_cert else "http"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then ``overrides`` (flags given explicitly).

        Raises :class:`SettingsError` for an environment value that does not parse.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is not None:
                values[setting.name] = setting.parse(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
