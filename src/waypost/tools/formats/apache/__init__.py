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

Where the file sits (``context`` of :func:`parse_apache`; the format ``htaccess``, which a file
named ``.htaccess`` is taken for, is ``context="htaccess"``):

* ``htaccess``, a ``.htaccess`` at the document root: a RewriteRule sees the path without its
  leading ``/`` (``^old$``; ``^/old$`` never matches and is skipped), a relative substitution is
  joined to ``RewriteBase`` (without one, Apache redirects to the directory's file-system path,
  so such an ``R`` rule is skipped; an internal rewrite starts from ``/``);
* ``server``, server or ``<VirtualHost>`` configuration: a RewriteRule sees the path with it
  (``^/old$``; ``^old$`` never matches and is skipped), and ``RewriteBase`` is refused;
* None (the format ``apache``): not known, so both forms are read.

Order (``_order``): Apache applies every RewriteRule before mod_alias's Redirects, whatever the
file order (mod_rewrite hooks in first), except that in ``.htaccess`` an internal rewrite gives
way to a Redirect of the same path. The rules are written in that order, and a rule Waypost's
priority (exact paths, then specificity) would offer out of it is dropped when the rule Apache
applies first takes all its paths, narrowed with ``not: {host}`` when that rule differs only by
its host, and otherwise kept with a note.
"""

from ._export import export_apache
from ._import import parse_apache, parse_htaccess

__all__ = ["export_apache", "parse_apache", "parse_htaccess"]
