"""An engine address where something takes the connection and never answers (a hung
dockerd): the SDK's read times out, and the line says so, not "start it"."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.lib.engine import EngineTarget, sdk_client
from tasks.lib.errors import EngineUnavailable


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that accepts every connection and never writes a byte."""
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield path
    server.close()
    for conn in held:
        conn.close()


def test_a_hung_engine_is_named_hung_not_stopped(silent_socket: Path) -> None:
    target = EngineTarget(env={"DOCKER_HOST": f"unix://{silent_socket}"})
    with pytest.raises(EngineUnavailable) as info:
        sdk_client(target, timeout=1)
    assert info.value.line() == (
        f"Cannot reach the Docker engine at unix://{silent_socket}: it took the connection but "
        "sent no answer in 1 s: it may be hung: check it with `docker info`, restart it if "
        "that hangs too (Linux: `sudo systemctl restart docker`)"
    )
