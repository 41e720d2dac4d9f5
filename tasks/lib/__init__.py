"""The core: plain functions and data (plans, reports) plus the engines that execute them.

Nothing under ``tasks.lib`` imports Invoke; the collections in ``tasks/*.py`` are the thin layer
that turns flags into calls here and errors into ``invoke.Exit``.
"""
