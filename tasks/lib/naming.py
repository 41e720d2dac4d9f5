"""Transitional: the staging naming rule moved to :mod:`tasks.lib.compose.names`. This module
re-exports it for the volume copier until that code imports the new place; then it goes."""

from tasks.lib.compose.names import (
    is_staging_name,
    staging_container_name,
    staging_key,
    staging_network_name,
    staging_project_name,
    staging_volume_name,
)

__all__ = [
    "is_staging_name",
    "staging_container_name",
    "staging_key",
    "staging_network_name",
    "staging_project_name",
    "staging_volume_name",
]
