"""Local images: the core of ``staging.tag``, ``staging.push``, ``images.list``,
``images.validate``, ``images.push`` and ``release``'s push step. Never imports Invoke.

One job per module:

* :mod:`.refs`: image references (the docker SDK's parser), names and flags checked before
  any engine is asked.
* :mod:`.store`: the engine queries, ONE filtered list call per question (``reference``
  filters; never an inspect per image, so the time does not grow with unrelated images).
* :mod:`.listing`: the rows of an image listing.
* :mod:`.freshness`: is an image built from the current inputs? The pluggable rule used by
  ``staging.tag`` and ``images.validate`` (today: the schema label).
* :mod:`.tags`: the all-or-nothing staging tag plan and its application (rollback on failure
  or signal).
* :mod:`.files`, :mod:`.validate`: reading files out of an image; the validation verdicts.
* :mod:`.journal`, :mod:`.push`: pushes with in-band error checks; the temporary
  ``--registry-url`` tags recorded before they are made, so a killed run's are cleaned later.
* :mod:`.view`: tables and lines (the only module here that renders).

The core returns results with ``to_json()``; statuses are :class:`tasks.lib.progress.Status`.
"""
