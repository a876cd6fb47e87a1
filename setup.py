"""The optional compiled part of waypost; everything else is declared in pyproject.toml.

``waypost._plainstore`` packs literal redirects (the bulk of a large CSV table) so that a
million of them take a third of the memory and a hit costs one miss to memory instead of five.
It is optional: without a C compiler the build carries on without it, says so in one line, and
waypost keeps such rules as ordinary Python objects (the same answers; more memory and slower at
a million rules). ``waypost --version`` says which is installed. Wheels for Linux, macOS and
Windows are built with cibuildwheel (``[tool.cibuildwheel]`` in pyproject.toml), so that no user
needs a compiler.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_GCC_LIKE = ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]


class BuildExt(build_ext):
    """The compiler's own flags (MSVC takes others), and one line when the compiled store could
    not be built (setuptools only warns in a log that pip does not show)."""

    def build_extension(self, ext: Extension) -> None:
        msvc = self.compiler is not None and self.compiler.compiler_type == "msvc"
        ext.extra_compile_args = ["/O2"] if msvc else list(_GCC_LIKE)
        super().build_extension(ext)

    def run(self) -> None:
        super().run()
        for ext in self.extensions:
            if not os.path.exists(self.get_ext_fullpath(ext.name)):
                print(
                    f"waypost: {ext.name} was not built (no working C compiler): installing "
                    "without the compiled store; every rule works in pure Python, with more "
                    "memory and slower at a million rules",
                    file=sys.stderr,
                )


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "waypost._plainstore",
            ["src/waypost/_plainstore.c", "src/waypost/_fastpath.c", "src/waypost/_gate.c"],
            depends=["src/waypost/_plainstore.h", "src/waypost/_gate.h"],
            optional=True,
        )
    ],
)
