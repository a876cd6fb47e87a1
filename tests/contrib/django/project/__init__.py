"""A minimal Django project for the tests of waypost.contrib.django."""
