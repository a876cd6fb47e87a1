"""The standalone server: ``waypost serve``.

- :mod:`~waypost.server.core`: what to answer (limits, health, metrics, the engine's decision,
  the 404 page, what to proxy), apart from any server interface;
- :mod:`~waypost.server.app`: the ASGI adapter (any ASGI server will do), and
  :mod:`~waypost.server.protocol`: the HTTP/1.1 connection of ``waypost serve``, which answers
  most requests straight from the request head and hands the rest to the ASGI adapter;
- :mod:`waypost.follow` (shared with the middlewares): where the rules come from, a file
  (reloaded when it changes) or the rule store (followed revision by revision);
  :mod:`~waypost.server.proxy` (the upstream),
  :mod:`~waypost.server.metrics`, :mod:`~waypost.server.pages` (404), and
  :mod:`~waypost.server.access_log`;
- :mod:`~waypost.server.protocol` (HTTP/1.1 on llhttp, the direct answers) and
  :mod:`~waypost.server.cycle` (the ASGI path); :mod:`~waypost.server.worker`: one worker's
  uvloop event loop, lifespan, tick and graceful stop;
- :mod:`~waypost.server.run`: the process: workers, logging, shutdown.
"""
