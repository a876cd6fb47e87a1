"""The optional compiled part of waypost; everything else is declared in pyproject.toml.

``waypost._plainstore`` packs literal redirects (the bulk of a large CSV table) so that a
million of them take a third of the memory and a hit costs one miss to memory instead of five.
It is optional: without a C compiler the build carries on without it, and waypost keeps such
rules as ordinary Python objects (the same answers; more memory and slower at a million rules).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "waypost._plainstore",
            ["src/waypost/_plainstore.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
