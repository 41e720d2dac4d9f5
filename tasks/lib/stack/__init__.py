"""Named compose stacks (dev, local, prod, staging): plans, compose calls, waiting, health,
URLs and views for ``stack.*`` (``tasks/stack.py``)."""
