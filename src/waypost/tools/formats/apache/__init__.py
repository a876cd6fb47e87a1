"""Apache: the redirect subset of ``.htaccess`` files and server configuration.

The importer (``_import``) and the exporter (``_export``) are separate modules;
:func:`export_apache` documents what the export writes. Import understands:

* ``Redirect [status] /old /new`` (status a number or ``permanent``, ``temp``, ``seeother``,
  ``gone``; 302 when left out), ``RedirectPermanent`` and ``RedirectTemp``. mod_alias matches
  ``/old`` as a prefix of whole segments (``/old``, ``/old/``, ``/old/a/b/``, not ``/older``) and
  appends what follows it, slashes included, to ``/new``. So a line gives three strict rules:
  ``/old`` to ``/new``, ``/old/`` to ``/new/`` and ``/old/<path:rest>`` to ``/new/{rest}``
  (``/old/`` as the URL-path: the last two, to ``/new/`` and ``/new/{rest}``). The query string
  is kept unless the URL has its own, as mod_alias does. What Apache does with a trailing slash
  on one side only (``Redirect /old/ /new`` sends ``/old/a`` to ``/newa``) is kept, with a note.
  mod_alias tries Redirects in file order and the first match wins, so the paths an earlier
  Redirect takes are left out of a later one (skipped when that leaves nothing).
* Inside a ``<Location /path>`` (a plain path): ``Redirect [status] URL`` or ``Redirect gone``
  (no URL-path) sends every path under ``/path`` to ``URL`` as it is; a Redirect with a URL-path
  applies where that lies inside ``/path``.
* ``RedirectMatch [status] regex URL`` where the regex converts (see ``_regex``).
* ``RewriteRule pattern substitution [flags]`` in ``.htaccess`` (``^old$``) or server (``^/old$``)
  form: ``R``/``R=3xx`` redirect, no ``R`` an internal ``rewrite``, ``F`` 403, ``G`` 410,
  ``R=4xx`` other statuses; ``NC`` is ``case: insensitive``; ``QSD`` or a substitution with its
  own query (without ``QSA``) drops the query string. The flags that say how a back-reference is
  percent-encoded (``NE``, ``B``, ``BNE``, ``BNP``, ``BCTLS``) are read as Waypost's own
  encoding of the values it fills in.
* ``RewriteCond`` lines before a rule, when they test ``%{HTTP_HOST}`` (exact names,
  ``(www\\.)?``, alternatives, ``.+\\.`` for subdomains, ``!`` to negate), ``%{QUERY_STRING}`` in
  the forms ``(^|&)key=value(&|$)`` / ``(^|&)key(=|&|$)``, or ``%{REQUEST_METHOD} ^(GET|POST)$``.
  A rule with any other condition (``%{REQUEST_FILENAME} !-f``, ``[OR]``...) is skipped, and its
  condition lines with it.
* ``ServerName``/``ServerAlias`` give the rules of their ``<VirtualHost>`` a ``when.host``.

Other rules inside ``<Directory>``, ``<Location>``, ``<Files>`` and ``<If>`` blocks are skipped
because those blocks change where they apply. Directives that are not about redirects are ignored.
"""

from ._export import export_apache
from ._import import parse_apache

__all__ = ["export_apache", "parse_apache"]
