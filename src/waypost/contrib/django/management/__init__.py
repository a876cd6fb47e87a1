"""Django finds ``manage.py`` commands in an app's ``management/commands`` package."""
