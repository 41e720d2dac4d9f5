"""volumes.size without an engine: the join of /system/df's volumes with its containers."""

from __future__ import annotations

from typing import Any

from tasks.lib.volumes import usage, view

DF_VOLUMES: list[dict[str, Any]] = [
    {"Name": "meeshy-web-uploads", "Driver": "local", "UsageData": {"Size": 2048, "RefCount": 1}},
    {"Name": "meeshy-models-data", "Driver": "nfs", "UsageData": {"Size": -1, "RefCount": 0}},
    {"Name": "other", "Driver": "local", "UsageData": {"Size": 1, "RefCount": 0}},
    {"Name": "meeshy-database-data", "Driver": "local", "UsageData": None},
]
CONTAINERS: list[dict[str, Any]] = [
    {
        "Names": ["/meeshy-frontend"],
        "Mounts": [
            {"Type": "volume", "Name": "meeshy-web-uploads"},
            {"Type": "bind", "Source": "/x"},
        ],
    },
    {
        "Names": ["/meeshy-static-files"],
        "Mounts": [{"Type": "volume", "Name": "meeshy-web-uploads"}],
    },
    {"Names": ["/stranger"], "Mounts": [{"Type": "volume", "Name": "other"}]},
    {"Id": "0123456789abcdef", "Mounts": [{"Type": "volume", "Name": "other"}]},
]


def test_usage_report_meeshy_only() -> None:
    rows = usage.usage_report(DF_VOLUMES, CONTAINERS)
    assert [r.to_json() for r in rows] == [
        {"name": "meeshy-database-data", "driver": "local", "size": None, "containers": []},
        {"name": "meeshy-models-data", "driver": "nfs", "size": None, "containers": []},
        {
            "name": "meeshy-web-uploads",
            "driver": "local",
            "size": 2048,
            "containers": ["meeshy-frontend", "meeshy-static-files"],
        },
    ]
    assert view.size_rows(rows) == [
        ["meeshy-database-data", "local", "-", "-"],
        ["meeshy-models-data", "nfs", "-", "-"],
        ["meeshy-web-uploads", "local", "2.0 kB", "meeshy-frontend\nmeeshy-static-files"],
    ]


def test_usage_report_all() -> None:
    rows = usage.usage_report(DF_VOLUMES, CONTAINERS, all_volumes=True)
    assert [(r.name, r.containers) for r in rows if r.name == "other"] == [
        ("other", ("0123456789ab", "stranger"))
    ]
    assert len(rows) == 4
