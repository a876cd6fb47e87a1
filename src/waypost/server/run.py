"""Running the standalone server: Waypost's own HTTP/1.1 connections on uvloop, one process per
worker.

Why this stack: see docs/server.md and ``benchmarks/bench_server.py``. In short, the
connection protocol (:mod:`waypost.server.protocol`) answers what the engine decides straight from
the request head, with llhttp (httptools, the parser of Node.js) on uvloop, both used through
their public APIs only; the ASGI path under it serves the admin API and the upstream proxy. Each
worker's loop, lifespan and graceful stop are :mod:`waypost.server.worker`'s. What this module
sets up:

- the rules are loaded once in the main process (so a broken file stops the start with every
  error listed); workers are forked from it and inherit the loaded engine, then each watches the
  file on its own (hot reload). One listening socket, bound before the fork, is shared by all;
- with several workers, a supervisor in the main process restarts a worker that dies and passes
  SIGTERM/SIGINT on; with one, the main process serves itself. A worker whose supervisor dies
  (even by SIGKILL) stops too, gracefully, so that no orphan keeps the port;
- with several workers, prometheus_client's multiprocess mode in a private temporary folder, set
  before any worker starts and removed at exit;
- logging: Waypost's messages on standard error, the access log on standard output;
- graceful shutdown: on SIGTERM or SIGINT each worker stops accepting, lets requests in flight
  finish (up to ``graceful_timeout``), then exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import importlib.util
import logging
import logging.config
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from waypost.engine import Engine
from waypost.exceptions import SettingsError, StoreError, WaypostError
from waypost.follow.reloading import file_revision, file_signature
from waypost.follow.sources import FileSource, RulesSource
from waypost.server.config import Settings
from waypost.stats.visits import ADDRESS_MODES
from waypost.store.recorder import open_geoip

__all__ = ["ListenError", "check_serve_settings", "listen", "logging_config", "run_server"]

# prometheus_client's own variable; read when prometheus_client is first imported.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LEVELS = ("debug", "info", "warning", "error", "critical")
logger = logging.getLogger("waypost.server")


def check_redis_settings(url: str, stats: bool, fold_interval: float) -> None:
    """``--redis``: with ``--stats``, a Redis URL, the package installed, a fold interval."""
    if not stats:
        raise SettingsError(
            "--redis carries the statistics (--stats) of many instances: give --stats too, "
            "or leave --redis out"
        )
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(
            f"--redis {url!r} is not a Redis URL; e.g. redis://127.0.0.1:6379/0 "
            "(rediss:// for TLS, unix:///path/redis.sock)"
        )
    if importlib.util.find_spec("redis") is None:
        raise SettingsError("--redis needs the redis package: pip install 'waypost[redis]'")
    if fold_interval <= 0:
        raise SettingsError(
            f"stats_fold_interval must be more than 0 seconds, not {fold_interval!r}"
        )


def check_visit_settings(settings: Settings) -> None:
    """``--stats-visits``, ``--stats-visit-addresses`` and ``--geoip``."""
    if not 0 <= settings.stats_visits <= 1:
        raise SettingsError(
            f"stats_visits is a share of the redirects from 0 to 1 (0.01: one in a hundred), "
            f"not {settings.stats_visits!r}"
        )
    if settings.stats_visit_addresses not in ADDRESS_MODES:
        raise SettingsError(
            f"stats_visit_addresses is one of {', '.join(ADDRESS_MODES)}, "
            f"not {settings.stats_visit_addresses!r}"
        )
    if settings.geoip is not None:
        if not settings.stats_visits:
            raise SettingsError(
                "--geoip gives visits their country: give --stats --stats-visits 0.01 too, "
                "or leave --geoip out"
            )
        try:
            open_geoip(settings.geoip).close()
        except StoreError as exc:
            raise SettingsError(str(exc)) from None
    if settings.stats_visits and not settings.stats:
        raise SettingsError("--stats-visits logs redirects with the statistics: give --stats too")


def check_serve_settings(settings: Settings) -> None:
    """Raise a :class:`~waypost.exceptions.SettingsError` (or another WaypostError) for a setting
    that cannot work: a bad upstream URL, a 404 template that does not load, an impossible
    number."""
    from waypost.server._hosts import parse_https_redirect_hosts
    from waypost.server.forwarding import parse_trusted_proxies
    from waypost.server.pages import NotFoundPage
    from waypost.server.proxy import check_upstream
    from waypost.server.tls import check_tls

    if settings.upstream:
        check_upstream(settings.upstream)
    if settings.stats_interval <= 0:
        raise SettingsError(
            f"stats_interval must be more than 0 seconds, not {settings.stats_interval!r}"
        )
    if settings.stats_retention < 0:
        raise SettingsError(
            f"stats_retention is a number of days, 0 or more, not {settings.stats_retention!r}"
        )
    if settings.redis is not None:
        check_redis_settings(settings.redis, settings.stats, settings.stats_fold_interval)
    check_visit_settings(settings)
    if settings.stats_top_rules < 0:
        raise SettingsError(
            f"stats_top_rules is a number of rules, 0 or more, not {settings.stats_top_rules!r}"
        )
    parse_trusted_proxies(settings.trusted_proxies)
    NotFoundPage(settings.not_found_template)
    if settings.log_level.lower() not in _LEVELS:
        raise SettingsError(f"log level {settings.log_level!r} is not one of {', '.join(_LEVELS)}")
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"port must be from 0 to 65535, not {settings.port!r}")
    for name in ("workers", "max_request_line", "max_header_bytes"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name} must be at least 1, not {getattr(settings, name)!r}")
    for name in ("max_body_bytes", "body_buffer_bytes"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name} must not be negative, not {getattr(settings, name)!r}")
    if settings.request_buffering.strip().lower() not in ("on", "off"):
        raise SettingsError(
            f"request_buffering must be 'on' or 'off', not {settings.request_buffering!r}"
        )
    for name in ("keep_alive_timeout", "header_timeout", "body_timeout"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name} must be more than 0, not {getattr(settings, name)!r}")
    for name in ("redirect_max_age", "reload_interval", "graceful_timeout"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name} must not be negative, not {getattr(settings, name)!r}")
    if not 0 <= settings.reload_max_shrink <= 1:
        raise SettingsError(
            "reload_max_shrink is a share of the rules, from 0 to 1 (0.5: a reload may drop "
            f"half of them; 1: any number), not {settings.reload_max_shrink!r}"
        )
    check_tls(settings.tls_cert, settings.tls_key)
    try:
        parse_https_redirect_hosts(settings.https_redirect_hosts)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if settings.https_redirect_hosts and settings.http_redirect_port is None:
        raise SettingsError(
            "https_redirect_hosts names the hosts --http-redirect-port sends to HTTPS; give "
            "--http-redirect-port too"
        )
    if not settings.public_metrics and not settings.db:
        raise SettingsError(
            "--no-public-metrics makes /_waypost/metrics need a read API key, and keys live in "
            "the rule store: serve with --db, or keep the metrics public and firewall them"
        )
    redirect_port = settings.http_redirect_port
    if redirect_port is not None:
        if not settings.tls_cert:
            raise SettingsError(
                "http_redirect_port redirects plain HTTP to this server's HTTPS; it needs "
                "--tls-cert and --tls-key"
            )
        if not 1 <= redirect_port <= 65535 or redirect_port == settings.port:
            raise SettingsError(
                f"http_redirect_port must be from 1 to 65535 and not the HTTPS port "
                f"{settings.port}, not {redirect_port!r}"
            )


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config`` dict for the server: Waypost's messages on standard error, its
    access log (in the combined format) on standard output."""
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
            "waypost": {"handlers": ["console"], "level": level, "propagate": False},
            "waypost.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def run_server(
    engine: Engine,
    source: RulesSource,
    settings: Settings,
    *,
    listener: socket.socket | None = None,
    redirect_listener: socket.socket | None = None,
) -> None:
    """Serve ``engine`` until SIGTERM/SIGINT, following ``source``: its rules file (hot reload)
    or its rule store (every committed revision). ``listener`` is the socket from :func:`listen`
    (made here when not given)."""
    check_serve_settings(settings)
    if isinstance(source, FileSource):
        # Taken before the workers fork (best: by the caller, before it loaded the engine): each
        # worker compares the file with this, not with what it finds when it starts, so an edit
        # made while workers start up still reaches every one. The revision is what health
        # reports as serving until a reload (a worker restarted later serves this too, until it
        # catches up: see RulesWatcher).
        signature = source.signature
        if signature is None:
            signature = file_signature(source.path)
        revision = file_revision(Path(source.path))
        source = replace(source, signature=signature, revision=revision)
    # The loaded rules live as long as the process: keep the cyclic GC from walking a million of
    # them again and again (pauses in the p99), and keep forked workers from touching, and so
    # copying, the pages they sit on.
    gc.collect()
    gc.freeze()
    metrics_dir: str | None = None
    decisions_dir: str | None = None
    stats_dir: str | None = None
    if settings.workers > 1:
        # Must be set before prometheus_client creates any value, so before any worker starts.
        metrics_dir = tempfile.mkdtemp(prefix="waypost-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
        if isinstance(source, FileSource):
            # Where the workers' watchers share the shrink guard's verdicts (one for all).
            decisions_dir = tempfile.mkdtemp(prefix="waypost-reload-")
            source = replace(source, decisions=decisions_dir)
    logging.config.dictConfig(logging_config(settings))
    sys.stdout.flush()  # the access log writes to the file descriptor, after what is buffered
    if listener is None:
        listener = listen(settings.host, settings.port)
    if redirect_listener is None and settings.http_redirect_port is not None:
        redirect_listener = listen(settings.host, settings.http_redirect_port)
    logger.info(
        "waypost: serving on %s://%s:%d with %d worker(s)",
        settings.scheme,
        settings.host,
        listener.getsockname()[1],
        settings.workers,
    )

    if settings.stats and isinstance(source, FileSource):
        # Serving a file: the counts go to a store of their own, made here before the workers
        # fork (they share it) and deleted at exit: they last as long as the server.
        stats_dir = tempfile.mkdtemp(prefix="waypost-stats-")
        source = replace(source, stats_url=temporary_stats_store(stats_dir))
        logger.info(
            "waypost: the statistics of %s are kept in %s until the server stops (serve with "
            "--db to keep them); %s",
            source.path,
            stats_dir,
            "their API takes the keys of --keys"
            if settings.keys
            else "give --keys URL (a store with API keys) to read them at /_waypost/api/stats/",
        )

    def serve(supervisor: int | None = None) -> None:
        # Runs in each worker, after the fork: the metrics, the watcher thread and the upstream
        # connection pool belong to that worker.
        _serve_worker(listener, redirect_listener, engine, source, settings, supervisor)

    try:
        if settings.workers == 1:
            serve()
        else:
            _supervise(serve, settings.workers, settings.graceful_timeout + 2)
    finally:
        listener.close()
        if redirect_listener is not None:
            redirect_listener.close()
        for folder in (metrics_dir, decisions_dir, stats_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


def temporary_stats_store(folder: str) -> str:
    """A SQLite store in ``folder`` for the statistics of a served file, its schema in place;
    its URL."""
    from waypost.store import open_store

    url = f"sqlite:///{Path(folder) / 'stats.db'}"
    store = open_store(url)
    try:
        store.upgrade()
    finally:
        store.close()
    return url


class ListenError(WaypostError):
    """The server cannot listen on the address and port it was given."""


def listen(host: str, port: int) -> socket.socket:
    """The socket the workers share, bound to the address; :class:`ListenError` saying why
    when it cannot be (taken first, so that a busy port is reported before a million rules are
    loaded).

    It is bound but not yet listening: each worker's server listens on it once it serves, so
    that the port refuses connections while the rules load instead of taking them into a queue
    no one answers (a TCP health check passing while requests hang). Linux refuses the bind of
    a port another socket listens on, SO_REUSEADDR or not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        # As socket.create_server() makes it, less its listen().
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                with contextlib.suppress(OSError):
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind((host, port))
        except BaseException:
            listener.close()
            raise
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            hint = "another server is listening there; stop it or choose another --port"
        elif exc.errno == errno.EACCES:
            hint = (
                "ports below 1024 need root or the CAP_NET_BIND_SERVICE capability; "
                "or listen on a higher --port behind a load balancer"
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = f"{host!r} is not an address of this machine; check --host"
        else:
            hint = "check --host and --port"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {where}: {reason}; {hint}") from None
    except (socket.gaierror, OverflowError, ValueError) as exc:
        raise ListenError(f"cannot listen on {where}: {exc}; check --host and --port") from None
    listener.set_inheritable(True)
    return listener


def _serve_worker(
    listener: socket.socket,
    redirect_listener: socket.socket | None,
    engine: Engine,
    source: RulesSource,
    settings: Settings,
    supervisor: int | None,
) -> None:
    from waypost.server.app import WaypostApp
    from waypost.server.core import WaypostServer
    from waypost.server.worker import Worker, tls_context

    app = WaypostApp(WaypostServer(engine, settings, source=source, buffered_log=True))
    worker = Worker(app, supervisor=supervisor)
    if settings.tls_cert:
        key = settings.tls_key or settings.tls_cert
        worker.tls = tls_context(settings.tls_cert, key)
        if settings.reload_interval > 0:
            worker.tls_files = (settings.tls_cert, key)
            worker.tls_every = max(1, round(settings.reload_interval / 0.1))
    if redirect_listener is not None:
        worker.https_redirect = (redirect_listener, listener.getsockname()[1])
    worker.run([listener])
    if not worker.started:
        raise SystemExit(STARTUP_FAILED)


STARTUP_FAILED = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_with_supervisor(supervisor: int) -> None:
    """In a worker just forked from ``supervisor``: have the kernel send SIGTERM (a graceful
    stop) when the supervisor dies, even by SIGKILL, which no handler of its own could pass on.

    That is Linux's ``prctl(PR_SET_PDEATHSIG)``; elsewhere, or if it fails, the worker finds out
    on its own within half a second (:meth:`waypost.server.worker.Worker.tick`). A supervisor
    that died between the fork and the prctl call would never send the signal, hence the check
    after it.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
                error = ctypes.get_errno()
                logger.warning("waypost: prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(error))
        except (OSError, AttributeError) as exc:  # no libc to load, or no prctl in it
            logger.warning("waypost: prctl(PR_SET_PDEATHSIG) is not available: %s", exc)
    if os.getppid() != supervisor:
        raise SystemExit(0)  # orphaned already: nothing was served yet


def _supervise(serve: Callable[[int], None], workers: int, kill_timeout: float) -> None:
    """Fork ``workers`` processes running ``serve(supervisor_pid)``; restart one that dies; on
    SIGTERM or SIGINT pass SIGTERM to all, wait up to ``kill_timeout`` seconds, then kill what is
    left. A worker stops by itself when this process dies (see :func:`_exit_with_supervisor`)."""
    children: dict[int, int] = {}
    stopping: list[float] = []
    supervisor = os.getpid()

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _exit_with_supervisor(supervisor)
                serve(supervisor)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                logger.exception("waypost: worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = slot

    def stop(sig: int, frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(time.monotonic() + kill_timeout)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slot in range(workers):
            spawn(slot)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if stopping and time.monotonic() > stopping[0]:
                    for child in children:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child, signal.SIGKILL)
                time.sleep(0.05)
                continue
            slot = children.pop(pid)
            if stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILED:
                logger.error("waypost: worker %d could not start; stopping", pid)
                stop(signal.SIGTERM, None)
                continue
            logger.error("waypost: worker %d exited (%d); starting another", pid, code)
            spawn(slot)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
