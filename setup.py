"""Build shim: pyproject.toml holds the metadata; this adds one thing its static tables cannot say.

The shipped defaults stay in ``config/`` at the repository's top level and are installed as the
package ``evidence.defaults`` (package data read with importlib.resources), so an installed agent and
centre find them without the repository, and nothing of ours is installed as a top-level ``config``.
A ``packages.find`` table in pyproject.toml cannot add a package mapped from another directory.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["agent*", "collectors*", "evidence*", "central*"]), "evidence.defaults"],
    package_dir={"evidence.defaults": "config"},
    # the dashboard's folders are not packages: named here, as setuptools 66 takes no "**" patterns
    package_data={"": ["*.yaml", "*.mako"], "central.web": ["templates/*.html", "static/*.css", "static/*.js"]},
)
