"""Configuration in one place: the server's settings, each declared once.

A setting is one field of :class:`Settings`: its type, its default and its help text. Its
``WAYPOST_*`` environment variable and its ``waypost serve`` flag follow from its name
(``port``: ``WAYPOST_PORT``, ``--port``; ``access_log``: ``WAYPOST_ACCESS_LOG=no``,
``--no-access-log``); :data:`SETTINGS` describes them all, the CLI makes its flags from it and a
test checks every setting is documented in docs/server.md. The order of precedence is: the default,
then the environment variable, then a flag given explicitly.

This is the one module that reads Waypost's environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from waypost.exceptions import SettingsError

__all__ = ["SETTING", "SETTINGS", "Setting", "Settings", "SettingsError"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

_T = TypeVar("_T")


def _declare(default: _T, help: str) -> _T:
    """One setting of :class:`Settings`: its default and its help text."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings: defaults, overridden by ``WAYPOST_*`` variables, then by flags.

    Each field is one setting, declared once here: its type, its default and its help text; its
    environment variable and its flag follow from its name (see :class:`Setting`).
    """

    host: str = _declare("127.0.0.1", "Address the server binds to.")
    port: int = _declare(8080, "Port the server listens on.")
    workers: int = _declare(1, "Number of worker processes.")
    access_log: bool = _declare(True, "Write an access log line per request (combined format).")
    log_level: str = _declare("info", "Log level: debug, info, warning or error.")
    db: str | None = _declare(
        None,
        "Serve the rules of this rule store (sqlite:///waypost.db, postgresql://...) "
        "instead of a file; every committed change is picked up within a second.",
    )
    keys: str | None = _declare(
        None,
        "The rule store whose access keys the api_key guards check (sqlite:///waypost.db, "
        "postgresql://...); by default the --db store. Revoked keys stop working within a "
        "second or two.",
    )
    stats: bool = _declare(
        False,
        "Count each rule's hits and the paths that answer 404 into the rule store (with --db), "
        "in batches: no database write per request. Serving a rules file, they are kept in a "
        "temporary store for as long as the server runs (their API needs --keys). Off by "
        "default for now: it costs up to 18% of the redirects per second with a million rules "
        "hit evenly (the target is 5%).",
    )
    stats_interval: float = _declare(
        5.0,
        "Seconds between two writes of the counted statistics to the store (a crash loses at "
        "most this much).",
    )
    stats_retention: int = _declare(
        90, "Days the statistics are kept in the store (0: kept for ever)."
    )
    redis: str | None = _declare(
        None,
        "With --stats: Redis (redis://host:6379/0) the workers of every instance add their "
        "counts to, folded into the rule store every --stats-fold-interval seconds and at "
        "shutdown; Redis being down costs no request (the counts are held, then dropped, "
        "and health says so). Needs pip install 'waypost[redis]'.",
    )
    stats_fold_interval: float = _declare(
        60.0, "With --redis: seconds between two folds of what Redis holds into the store."
    )
    stats_visits: float = _declare(
        0.0,
        "With --stats: the share of redirects logged one by one (time, rule, target, referrer, "
        "user agent, country, client address): 0.01 logs one in a hundred; 0 none.",
    )
    stats_visit_addresses: str = _declare(
        "anonymized",
        "What a visit keeps of the client address: anonymized (the last IPv4 octet and the "
        "last 80 bits of IPv6 zeroed), full, or none.",
    )
    geoip: str | None = _declare(
        None,
        "A GeoLite2 (or GeoIP2) Country or City file: visits get the client's country. Needs "
        "pip install 'waypost[geoip]'.",
    )
    stats_top_rules: int = _declare(
        10,
        "With --stats: /_waypost/metrics has a waypost_rule_hits series for this many of the "
        "busiest rules (per worker, since it started; 0: none). The totals stay without a "
        "label per rule.",
    )
    upstream: str | None = _declare(
        None,
        "URL of the site behind Waypost: requests that pass or are rewritten are proxied there.",
    )
    trusted_proxies: str | None = _declare(
        None,
        "Comma-separated addresses or CIDR blocks of the load balancers in front of "
        "Waypost; for requests from them the client address comes from X-Forwarded-For.",
    )
    upstream_timeout: float = _declare(
        30.0, "Seconds to wait for the upstream to connect or send data before answering 504."
    )
    not_found_template: str | None = _declare(
        None, "A Jinja template file for the 404 page (used when there is no upstream)."
    )
    redirect_max_age: int = _declare(
        3600, "Cache-Control max-age (seconds) of permanent redirects whose rule sets no max_age."
    )
    reload_interval: float = _declare(
        0.25,
        "Seconds between checks of the rules file (and of the TLS certificate) for "
        "changes; 0 turns hot reload off.",
    )
    reload_max_shrink: float = _declare(
        0.5,
        "Largest share of the serving rules a reload of the rules file may drop (0.5: "
        "half); a file that drops more, or every rule, is held back (the previous rules "
        "keep serving, health says degraded) until it changes or says allow_shrink: "
        "true. 1 turns this off.",
    )
    max_request_line: int = _declare(
        8190, "Longest request target (path and query) in bytes; longer ones get 414."
    )
    max_header_bytes: int = _declare(
        32768, "Largest total size of the request headers in bytes; larger ones get 431."
    )
    max_body_bytes: int = _declare(
        10_485_760,
        "Largest request body in bytes that is sent upstream; a larger one gets 413 (0: no limit).",
    )
    body_buffer_bytes: int = _declare(
        262_144,
        "Bytes of a request body held in memory while it is read; the rest goes to a "
        "temporary file.",
    )
    request_buffering: str = _declare(
        "on",
        "on: read a request body to its end before the upstream sees the request; off: "
        "stream it, and abort the upstream request if the body fails.",
    )
    keep_alive_timeout: float = _declare(
        5.0,
        "Seconds an idle keep-alive connection (or a request head that stopped arriving) is kept.",
    )
    header_timeout: float = _declare(
        10.0,
        "Seconds a request head may take to arrive, counted from its first byte; a "
        "slower one gets 408 and the connection is closed (nginx's "
        "client_header_timeout).",
    )
    body_timeout: float = _declare(
        30.0,
        "Seconds a request body may go without a byte arriving; a stalled one gets 408 "
        "and the connection is closed (nginx's client_body_timeout).",
    )
    tls_cert: str | None = _declare(
        None,
        "PEM file with the server's certificate (and its chain); with tls_key the "
        "server speaks HTTPS instead of HTTP.",
    )
    tls_key: str | None = _declare(None, "PEM file with the private key of tls_cert.")
    http_redirect_port: int | None = _declare(
        None,
        "With tls_cert: also listen for plain HTTP on this port (like 80) and redirect "
        "every request there to the same URL over HTTPS (308).",
    )
    graceful_timeout: float = _declare(
        30.0,
        "Seconds in-flight requests may take to finish after SIGTERM before workers are killed.",
    )
    https_redirect_hosts: str | None = _declare(
        None,
        "With http_redirect_port: comma-separated host names (*.example.org for "
        "subdomains) the plain-HTTP listener sends to HTTPS; a request for any other "
        "Host gets 400. Default: any plain host name.",
    )
    public_health_details: bool = _declare(
        False,
        "Show /_waypost/health's details (rule count, revision, store, reason, pid) to "
        "anyone; off, they need a read API key (with --db) and anyone else sees only ok "
        "or degraded.",
    )
    public_metrics: bool = _declare(
        True,
        "Answer /_waypost/metrics to anyone (counts only); off, it needs a read API "
        "key, so only with --db.",
    )
    pack_rules: bool = _declare(
        True,
        "Pack literal redirects into the compiled store when it is built (less memory, "
        "faster loading, the same answers); off keeps every rule a plain Rule.",
    )

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
        values = {setting.name: setting.from_env(environ) for setting in SETTINGS}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


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

    def from_env(self, environ: Mapping[str, str] | None = None) -> Any:
        """The value its variable in ``environ`` (default: ``os.environ``) gives, or the default
        when it is not set; raises :class:`SettingsError` for a value that does not parse."""
        raw = (os.environ if environ is None else environ).get(self.env)
        return self.default if raw is None else self.parse(raw)

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


def _kind(annotation: object) -> type:
    """The value type of a field annotated ``annotation`` (``"int | None"`` -> int)."""
    name = str(annotation).removesuffix(" | None")
    return {"str": str, "int": int, "float": float, "bool": bool}[name]


#: Every setting, in the order of :class:`Settings` (and of ``waypost serve --help``).
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["help"], _kind(f.type)) for f in fields(Settings)
)
#: The settings by name.
SETTING: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
