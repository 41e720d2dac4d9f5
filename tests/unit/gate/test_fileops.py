"""What a command does to the image's files, as the gate models it."""

from __future__ import annotations

import pytest

from tasks.lib.gate.fileops import file_ops, redirect_ops
from tasks.lib.gate.shell import Redirect, commands, substitute

OpShape = tuple[str, tuple[str, ...], str | None, bool | None]


def _ops(line: str) -> list[OpShape]:
    (cmd,) = commands(line)
    words = [substitute(w, {"PWD": "/app"}) for w in cmd.words]
    found = redirect_ops(words, cmd.redirects, "/app", 0, 1)
    found += file_ops(words, [], "/app", 0, 1)
    return [(o.action, o.paths, o.dest, o.into_dir) for o in found]


@pytest.mark.parametrize(
    ("line", "ops"),
    [
        (
            "rm -rf packages/shared/prisma /tmp/*",
            [("remove", ("/app/packages/shared/prisma", "/tmp/*"), None, None)],
        ),
        ("rm -f -- -odd", [("remove", ("/app/-odd",), None, None)]),
        ("mv a.prisma prisma/", [("move", ("/app/a.prisma",), "/app/prisma", True)]),
        ("mv -T a b", [("move", ("/app/a",), "/app/b", False)]),
        ("cp -t /opt a b", [("copy", ("/app/a", "/app/b"), "/opt", True)]),
        ("cp x.prisma schema.prisma", [("copy", ("/app/x.prisma",), "/app/schema.prisma", None)]),
        (
            "ln -sf ../x.prisma prisma/schema.prisma",
            [("link", ("/app/prisma/schema.prisma",), "../x.prisma", None)],
        ),
        ("ln -s /opt/x", [("link", ("/app/x",), "/opt/x", None)]),
        (
            "mkdir -p -m 755 a b",
            [("mkdir", ("/app/a",), None, None), ("mkdir", ("/app/b",), None, None)],
        ),
        (
            "tee -a x.log y.log",
            [("write", ("/app/x.log",), None, None), ("write", ("/app/y.log",), None, None)],
        ),
        ("sed -i -e s/a/b/ s.prisma", [("write", ("/app/s.prisma",), None, None)]),
        ("sed s/a/b/ s.prisma", []),
        ("echo x > out 2>/dev/null", [("write", ("/app/out",), None, None)]),
        ("find . -name '*.md' -delete", [("prune", ("/app",), "*.md", None)]),
        ("find /app -type f -exec chmod 644 {} +", [("opaque", ("/app",), None, None)]),
        ("find /app -name x", []),
        ("tar -xzf v.tgz -C packages", [("opaque", ("/app/packages",), None, None)]),
        ("tar -czf /tmp/p.tgz packages", []),
        ("curl -fsSL -o s.prisma https://x", [("write", ("/app/s.prisma",), None, None)]),
        ("rsync -a packages/ dist/", [("opaque", ("/app/dist",), None, None)]),
        (
            "install -D -m 644 s.prisma /opt/s.prisma",
            [("copy", ("/app/s.prisma",), "/opt/s.prisma", None)],
        ),
        ("rm -rf $(cat list)", [("opaque", ("/app",), None, None)]),
        ("prettier --write packages/shared", [("opaque", ("/app/packages/shared",), None, None)]),
        ("python -m compileall .", []),
        ("chown -R 1000 /app", []),
        ("frobnicate --level=3 .", []),
    ],
)
def test_file_ops(line: str, ops: list[OpShape]) -> None:
    assert _ops(line) == ops


def test_a_redirection_to_a_device_writes_nothing() -> None:
    assert (
        redirect_ops(["echo"], [Redirect(">", "/dev/null"), Redirect(">&", "2")], "/", 0, 1) == []
    )
