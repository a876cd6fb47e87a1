"""Waypost inside a web framework's own conventions, where plain ASGI/WSGI middleware is not
the whole story.

- :mod:`waypost.contrib.django`: a Django app (``INSTALLED_APPS``), its middleware
  (``MIDDLEWARE``), system checks and ``manage.py waypost`` command.

Each framework is an optional extra (``pip install 'waypost[django]'``); nothing here is imported
by the rest of Waypost.
"""
