"""The TCP connection of an SSH link, made with Nagle's algorithm off and handed to ``ssh``.

``ssh`` runs this as its ``ProxyCommand`` with ``ProxyUseFdpass=yes`` (see
:func:`tasks.lib.ssh.forward_argv`): connect to the server as ssh would (each address of the
name in turn, within the connect timeout), set ``TCP_NODELAY`` (and ``SO_KEEPALIVE`` when the
host's ``TCPKeepAlive`` says so), pass the connected socket to ssh over stdout, exit. ssh
then speaks SSH on that socket itself, exactly as on one it connected: key exchange,
host key check, authentication, forwards.

Why: ssh turns Nagle's algorithm off only when a session gets a pty, so until then two
small packets it sends back to back wait for the server's delayed ACK (~40 ms on Linux, plus
a round trip on a real network): once per login, between the key exchange and the
authentication, on the path of every SSH task.

It runs as ``python -S -I ssh_dial.py`` (no site, no user environment, only the
interpreter's built-in modules): it is on the critical path. Where to connect comes from
environment variables set by the task for this one ssh (never a shell string: the host name
is not in the command line). A failure is said in ssh's own words ("ssh: connect to host H
port P: Connection refused"), so the task explains it as it explains ssh's.
"""

from __future__ import annotations

import _socket
import os
import sys

TYPE_CHECKING = False  # not `typing`: its import alone would cost more than the rest
if TYPE_CHECKING:
    from collections.abc import Mapping

HOST = "MEESHY_SSH_DIAL_HOST"
PORT = "MEESHY_SSH_DIAL_PORT"
FAMILY = "MEESHY_SSH_DIAL_FAMILY"  # ssh_config AddressFamily: any | inet | inet6
TIMEOUT = "MEESHY_SSH_DIAL_TIMEOUT"  # seconds, per address (ssh's ConnectTimeout)
KEEPALIVE = "MEESHY_SSH_DIAL_KEEPALIVE"  # ssh_config TCPKeepAlive: yes | no

FAMILIES = {"inet": _socket.AF_INET, "inet6": _socket.AF_INET6}


def connect(environ: Mapping[str, str]) -> tuple[_socket.socket | None, str]:
    """The connected socket (Nagle off), or None and ssh's line for why not."""
    host, port = environ.get(HOST, ""), environ.get(PORT, "")
    if not host or not port.isdigit():
        return None, f"ssh: the dialer needs {HOST} and a numeric {PORT} (the tasks' ssh sets them)"
    family = FAMILIES.get(environ.get(FAMILY, "any"), _socket.AF_UNSPEC)
    timeout = environ.get(TIMEOUT, "10")
    seconds = float(timeout) if timeout.isdigit() else 10.0
    try:
        # bytes: a str host name costs an import of the idna codec (and `re`), ~4 ms
        name = host.encode("ascii") if host.isascii() else host.encode("idna")
        addresses = _socket.getaddrinfo(name, int(port), family, _socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # gaierror, a name no resolver takes
        why = getattr(exc, "strerror", None) or str(exc)
        return None, f"ssh: Could not resolve hostname {host}: {why}"
    why = "failure"
    for fam, kind, proto, _, address in addresses:
        try:  # an address family this machine lacks (IPv6 off) fails here: the next one
            sock = _socket.socket(fam, kind, proto)
        except OSError as exc:
            why = exc.strerror or str(exc)
            continue
        try:
            sock.settimeout(seconds)
            sock.connect(address)
            sock.setblocking(True)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            if environ.get(KEEPALIVE, "yes") == "yes":
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
        except TimeoutError:
            why = "Connection timed out"
            sock.close()
            continue
        except OSError as exc:
            why = exc.strerror or str(exc)
            sock.close()
            continue
        return sock, ""
    return None, f"ssh: connect to host {host} port {port}: {why}"


def hand_over(sock: _socket.socket, channel_fd: int) -> None:
    """Pass ``sock`` to ssh over ``channel_fd`` (its end of the socketpair: our stdout)."""
    channel = _socket.socket(fileno=channel_fd)
    try:
        fd = sock.fileno().to_bytes(4, sys.byteorder)
        channel.sendmsg([b"\0"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd)])
    finally:
        channel.detach()


def main(environ: Mapping[str, str] = os.environ, channel_fd: int = 1) -> int:
    sock, why = connect(environ)
    if sock is None:
        sys.stderr.write(why + "\n")
        return 255
    try:
        hand_over(sock, channel_fd)
    except OSError as exc:
        sys.stderr.write(f"ssh: cannot pass the connection to ssh: {exc}\n")
        return 255
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
