"""The standalone server: ``waypost serve``.

- :mod:`~waypost.server.core`: what to answer (limits, health, metrics, the engine's decision,
  the 404 page, what to proxy), apart from any server interface;
- :mod:`~waypost.server.app`: the ASGI adapter (run by Granian; any ASGI server will do);
- :mod:`~waypost.server.reloading` (hot reload), :mod:`~waypost.server.proxy` (the upstream),
  :mod:`~waypost.server.metrics`, :mod:`~waypost.server.pages` (404), and
  :mod:`~waypost.server.access_log`;
- :mod:`~waypost.server.run`: Granian's setup (workers, limits, logging, shutdown).
"""
