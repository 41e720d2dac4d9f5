"""Front door of the Meeshy task runner: Invoke loads this file, which adds the collections of
``tasks/``, one module per namespace (``tasks/build.py`` is ``build.*``, and so on).

Layout (why): Invoke imports ``tasks.py`` as the module ``tasks`` (it looks for ``tasks.py``
before a ``tasks/`` package). Setting ``__path__`` below makes that module act as the package
for ``tasks/``, so ``tasks.build`` and ``tasks.lib.config`` import the same way under Invoke,
pytest, mypy and plain Python. ``tasks/`` has no ``__init__.py`` on purpose: with one there
would be two different ``tasks`` modules (mypy: "duplicate module"), and pytest would import
a different ``tasks`` than Invoke does.

Every module imported here is cheap: heavy libraries (docker, python-on-whales, rich) are
imported inside the tasks that use them, so ``inv --list`` stays fast.
"""

import os
import sys
from pathlib import Path

__path__ = [str(Path(__file__).with_name("tasks"))]
# Invoke turns bytecode caching off (its --write-pyc flag, a Python 2 era default), so every
# run would compile tasks/ anew; Python 3's __pycache__ is checked against the sources, so
# caching is safe: on again, unless the environment asks otherwise (PYTHONDONTWRITEBYTECODE).
if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
    sys.dont_write_bytecode = False

from invoke import Collection

from tasks.invoke_adapter import excepthook, interrupt_on_signals, prestart_link, runs_a_task

sys.excepthook = excepthook  # first: Ctrl-C or a bad config while the rest loads is one line
interrupt_on_signals()

from tasks import build, docker, images, release, schema, stack, staging, volumes  # noqa: E402

ns = Collection()
for module in (build, schema, staging, images, volumes, docker, stack):
    ns.add_collection(module.ns)
ns.add_task(release.release)
if runs_a_task(sys.argv[1:]):  # --list, --complete, --help need no config (nor its import)
    from tasks.lib.config import defaults

    ns.configure({"meeshy": defaults()})
    prestart_link(ns)  # an SSH task's link starts now, while Invoke parses
