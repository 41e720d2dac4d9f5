"""Front door of the Meeshy task runner: Invoke loads this file, which assembles the namespace
out of the collections in ``tasks/``.

Layout (why): Invoke imports ``tasks.py`` as the module ``tasks`` (it looks for ``tasks.py``
before a ``tasks/`` package). Setting ``__path__`` below makes that module act as the package
for ``tasks/``, so ``tasks.build`` and ``tasks.lib.config`` import the same way under Invoke,
pytest, mypy and plain Python. ``tasks/`` has no ``__init__.py`` on purpose: with one there
would be two different ``tasks`` modules (mypy: "duplicate module"), and pytest would import
a different ``tasks`` than Invoke does.

Every module imported here is cheap: heavy libraries (docker, python-on-whales, rich) are
imported inside the tasks that use them, so ``inv --list`` stays fast.
"""

from pathlib import Path

__path__ = [str(Path(__file__).with_name("tasks"))]

from invoke import Collection

from tasks import build, schema, staging
from tasks.lib.config import defaults

ns = Collection()
ns.add_collection(Collection.from_module(build))
ns.add_collection(Collection.from_module(schema))
ns.add_collection(Collection.from_module(staging))
ns.configure({"meeshy": defaults()})
