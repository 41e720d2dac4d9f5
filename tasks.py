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

from tasks import build, docker_tasks, image_tasks, schema, staging, volume_tasks
from tasks.lib.config import defaults

ns = Collection()
ns.add_collection(Collection.from_module(build))
ns.add_collection(Collection.from_module(schema))
staging_ns = Collection.from_module(staging)
staging_ns.add_task(image_tasks.staging_tag, "tag")
staging_ns.add_task(image_tasks.staging_push, "push")
staging_ns.add_task(volume_tasks.copy, "volumes")
ns.add_collection(staging_ns)
ns.add_collection(
    Collection("images", image_tasks.images_list, image_tasks.validate, image_tasks.images_push)
)
ns.add_collection(Collection("volumes", volume_tasks.size))
ns.add_collection(Collection("docker", docker_tasks.ensure))
ns.add_task(image_tasks.release)
ns.configure({"meeshy": defaults()})


def _long_flags_only(coll: Collection) -> None:
    """Invoke would give each task its own one-letter flags (-r is --root in one task and
    --registry-url in another); long flags only keep every task's flags the same."""
    for t in coll.tasks.values():
        t.auto_shortflags = False
    for sub in coll.collections.values():
        _long_flags_only(sub)


_long_flags_only(ns)
