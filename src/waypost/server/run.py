"""Running the standalone server: Granian, with Waypost's ASGI app in every worker.

Why Granian: it measured fastest of the servers tried (see the README's "The server" and
``benchmarks/bench_server.py``), it is well kept, and its HTTP layer (Rust's hyper) already
refuses oversized request heads with 414/431 instead of buffering them. What this module sets up:

- the rules are loaded once in the main process (so a broken file stops the start with every
  error listed); workers are forked from it and inherit the loaded engine, then each watches the
  file on its own (hot reload);
- with several workers, prometheus_client's multiprocess mode in a private temporary folder, set
  before any worker starts and removed at exit;
- logging: Waypost's messages on standard error, the access log on standard output;
- graceful shutdown: on SIGTERM or SIGINT Granian stops accepting, each worker lets requests in
  flight finish (up to ``graceful_timeout``), then exits.
"""

from __future__ import annotations

import gc
import logging
import logging.config
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from waypost.engine import Engine
from waypost.server.reloading import file_signature
from waypost.settings import Settings

__all__ = ["check_serve_settings", "logging_config", "run_server"]

# prometheus_client's own variable; read when prometheus_client is first imported.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LEVELS = ("debug", "info", "warning", "error", "critical")


def check_serve_settings(settings: Settings) -> None:
    """Raise a :class:`~waypost.exceptions.WaypostError` (or ``SettingsError``) for a setting that
    cannot work: a bad upstream URL, a 404 template that does not load, an impossible number."""
    from waypost.server.forwarding import parse_trusted_proxies
    from waypost.server.pages import NotFoundPage
    from waypost.server.proxy import check_upstream
    from waypost.settings import SettingsError

    if settings.upstream:
        check_upstream(settings.upstream)
    parse_trusted_proxies(settings.trusted_proxies)
    NotFoundPage(settings.not_found_template)
    if settings.log_level.lower() not in _LEVELS:
        raise SettingsError(f"log level {settings.log_level!r} is not one of {', '.join(_LEVELS)}")
    for name in ("workers", "max_request_line", "max_header_bytes"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name} must be at least 1, not {getattr(settings, name)!r}")
    for name in ("redirect_max_age", "reload_interval", "graceful_timeout"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name} must not be negative, not {getattr(settings, name)!r}")


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config`` dict for the server (Granian's loggers and Waypost's)."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "generic": {
                "()": "logging.Formatter",
                "fmt": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                "datefmt": "%Y-%m-%d %H:%M:%S %z",
            },
            "access": {"()": "logging.Formatter", "fmt": "%(message)s"},
        },
        "handlers": {
            "console": {
                "formatter": "generic",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "waypost": {"handlers": ["console"], "level": level, "propagate": False},
            "waypost.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def run_server(
    engine: Engine,
    rules_path: str | Path | None,
    settings: Settings,
    *,
    store_url: str | None = None,
    store_revision: int = 0,
    rules_signature: Any = None,
) -> None:
    """Serve ``engine`` until SIGTERM/SIGINT, following ``rules_path`` (hot reload) or the rule
    store at ``store_url`` (every committed revision)."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    check_serve_settings(settings)
    # Taken before the workers fork (best: by the caller, before it loaded the engine): each
    # worker compares the file with this, not with what it finds when it starts, so an edit
    # made while workers start up still reaches every one.
    signature = rules_signature
    if signature is None and rules_path is not None:
        signature = file_signature(rules_path)
    # The loaded rules live as long as the process: keep the cyclic GC from walking a million of
    # them again and again (pauses in the p99), and keep forked workers from touching, and so
    # copying, the pages they sit on.
    gc.collect()
    gc.freeze()
    metrics_dir: str | None = None
    if settings.workers > 1:
        # Must be set before prometheus_client creates any value, so before any worker starts.
        metrics_dir = tempfile.mkdtemp(prefix="waypost-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    config = logging_config(settings)
    logging.config.dictConfig(config)

    def load_app() -> Any:
        # Runs in each worker, after the fork: the metrics, the watcher thread and the upstream
        # connection pool belong to that worker.
        from waypost.server.app import WaypostApp

        return WaypostApp(
            engine,
            settings,
            rules_path=rules_path,
            rules_signature=signature,
            store_url=store_url,
            store_revision=store_revision,
        )

    # Room for a head a little over the limits, so that Waypost itself answers 414/431 with a
    # body; past this, hyper answers them with an empty body.
    buffer = max(65536, 2 * (settings.max_request_line + settings.max_header_bytes) + 4096)
    server = Server(
        "waypost",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.auto,
        http=HTTPModes.auto,
        websockets=False,
        http1_settings=HTTP1Settings(max_buffer_size=buffer),
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=config,
        log_access=False,  # Waypost writes its own, in the combined format
        workers_kill_timeout=math.ceil(settings.graceful_timeout) + 2,
    )
    try:
        server.serve(target_loader=load_app, wrap_loader=False)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
