"""``manage.py waypost``: see :mod:`.waypost`."""
