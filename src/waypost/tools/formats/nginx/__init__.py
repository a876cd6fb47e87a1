"""nginx: the redirect subset of a server configuration.

The reader (``_syntax``), importer (``_import``) and exporter (``_export``, with ``_respond`` for
respond rules) are separate modules; :func:`export_nginx` documents what the export writes.
Import understands:

* ``map $uri $new_uri { /old /new; ... }`` (also ``$request_uri``/``$document_uri``) with the
  ``return 301 $new_uri;`` (or ``if ($new_uri) { return ...; }`` / ``rewrite ^ $new_uri
  permanent;``) that uses it; without one the status is assumed to be 301 and a note says so.
  ``$new_uri$is_args$args`` keeps the query string. Plain keys are compared ignoring case, as
  nginx does, so their rules are ``case: insensitive``, unless an ``if ($m_path = $uri)``
  compares the path exactly (how Waypost exports case-sensitive paths). Regex keys
  (``~^/old/(.*)$``) are converted like rewrites. A ``$request_uri`` key only matches requests
  without a query string, while the imported rule matches with or without one.
* ``location = /old { return 301 /new; }``; prefix ``location /old/ { return 302 ...; }`` as
  two rules (``/old/`` and ``/old/<path:rest>``; a prefix without a trailing slash also matches
  ``/older``, which a note points out); regex ``location ~ ^...$`` / ``~*`` as a converted regex.
  ``$request_uri``/``$uri`` in the target stand for the matched path.
* ``rewrite ^/old/(.*)$ /new/$1 permanent|redirect|last|break;`` where the regex converts
  (see ``_regex``); ``last``/``break`` make a ``rewrite`` rule. A trailing ``?`` drops the query.
* ``return 404;`` / ``return 410 "text";`` in a location become ``respond``.
* Waypost's own export of respond rules: ``rewrite ^ $map last;`` (or ``rewrite ^ URI last;`` in
  a location) to an ``internal`` location that ends in ``return 503 $body;``, with its
  ``default_type`` and ``add_header`` directives; the body and header values may be maps of the
  internal URI. Other internal rewrites and internal locations are skipped.
* ``server_name`` gives the rules of its server block a ``when.host``.

Order: nginx runs a server's ``rewrite``/``return`` directives in file order (a map's plain keys,
then its regex keys in order, where the map is used), then picks one location (an exact ``=``
one; else the longest prefix if ``^~``; else the first regex location in file order; else the
longest prefix) and runs its rewrites in order, then its return. The imported rules are written
in that order with ``order: first_match`` (see ``_Importer.order_key``), and a location that
serves its paths itself (files, ``proxy_pass``) becomes ``pass`` rules, so that no rule after it
takes them. A ``^~`` prefix that a longer plain prefix extends, in a server with regex
locations, has no place in one list (nginx tries the regexes first for some of its paths only)
and is skipped with that reason.

Skipped with a reason: server-wide redirects (``return 301 https://$host$request_uri;``),
targets using other variables (``$host``, ``$scheme``, ``$http_...``), ``if`` blocks other than
the map test, ``rewrite`` inside locations it could escape, ``include``d files, named
locations. Directives that are not about redirects (``listen``, ``root``...) are ignored.
"""

from ._export import export_nginx
from ._import import parse_nginx

__all__ = ["export_nginx", "parse_nginx"]
