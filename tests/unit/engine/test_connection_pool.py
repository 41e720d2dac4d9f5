"""One connection pool per unix socket for the docker SDK (engine._one_connection_pool): the
SDK's own adapter keys pools by the whole request URL, so each different request opened a
new connection (through an SSH link, a channel open: a round trip to the server). Clients
are made with a fixed API version, so no request is sent; a real socket is served by a
thread that counts the connections it accepts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tasks.lib.engine import POOL_PREFIX, _one_connection_pool

REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Api-Version: 1.41\r\n\r\n[]"
)


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """A unix socket answering every HTTP request with ``[]``; the list counts connections."""
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    accepted: list[int] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    conn.sendall(REPLY)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"unix://{path}", accepted
    server.close()


def test_requests_to_a_unix_socket_share_one_connection(
    fake_engine: tuple[str, list[int]],
) -> None:
    url, accepted = fake_engine
    client = docker.DockerClient(base_url=url, version="1.41")
    try:
        _one_connection_pool(client)
        client.api.images(filters={"reference": "a/*"})
        client.api.images(filters={"reference": "b/*"})
        client.api.containers(all=True)
        client.api.volumes()
        assert len(accepted) == 1
    finally:
        client.close()


def test_without_it_the_sdk_opens_one_per_request(fake_engine: tuple[str, list[int]]) -> None:
    """What the fix is for (docker 7.x): keep this true or drop the fix."""
    url, accepted = fake_engine
    client = docker.DockerClient(base_url=url, version="1.41")
    try:
        client.api.images(filters={"reference": "a/*"})
        client.api.containers(all=True)
        assert len(accepted) == 2
    finally:
        client.close()


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:9", "http://127.0.0.1:9"])
def test_a_tcp_engine_keeps_the_sdk_s_own_pooling(url: str) -> None:
    """Found by review: get_adapter() raised for a tcp:// client (every tcp engine crashed)."""
    client = docker.DockerClient(base_url=url, version="1.41")
    try:
        before = dict(client.api.adapters)
        _one_connection_pool(client)
        assert dict(client.api.adapters) == before
        assert POOL_PREFIX not in client.api.adapters
    finally:
        client.close()
