"""What the admin page and API need, checked before any of it is imported: a missing package
is one line saying what to install (``pip install 'waypost[admin]'``), not a traceback from
deep inside FastAPI."""

from __future__ import annotations

import importlib

__all__ = ["REQUIRED"]

#: The modules the admin app imports, and the distributions that bring them.
REQUIRED = {
    "fastapi": "fastapi",
    "jinja2": "jinja2",
    "python_multipart": "python-multipart",
    "rapidfuzz": "rapidfuzz",
}

for _module, _distribution in REQUIRED.items():
    try:
        importlib.import_module(_module)
    except ImportError:
        raise ImportError(
            f"the admin page and API need {_distribution}: pip install 'waypost[admin]' "
            "(waypost[server] brings it)"
        ) from None
