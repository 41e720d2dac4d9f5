"""The dialer that makes an SSH link's TCP connection with Nagle's algorithm off and hands it
to ssh (``tasks/lib/ssh_dial.py``), and when the link uses it (``ssh -G``'s view of the host).

The dialer is run as ssh runs it: a separate ``python -S -I`` process whose stdout is one end
of a socketpair; the test holds the other end, as ssh does, and receives the socket."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.lib import ssh_dial
from tasks.lib.config import SshOptions, ssh_options
from tasks.lib.errors import ConfigError
from tasks.lib.ssh import DIALER, Destination, dial_for, dial_options, forward_argv

RESOLVED = {
    "hostname": "203.0.113.7",
    "port": "2222",
    "addressfamily": "any",
    "tcpkeepalive": "yes",
    "canonicalizehostname": "false",
    "connectionattempts": "1",
}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server


def run_dialer(env: dict[str, str]) -> tuple[int, str, socket.socket | None]:
    """The dialer as ssh runs it: stdout is our socketpair; the socket it passes, if any."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        done = subprocess.run(
            [sys.executable, "-S", "-I", str(DIALER)],
            stdout=theirs.fileno(),
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), **env},
            timeout=30,
            check=False,
        )
        theirs.close()
        ours.settimeout(5)
        try:
            _, fds, _, _ = socket.recv_fds(ours, 1, 1)
        except OSError:
            fds = []
    got = socket.socket(fileno=fds[0]) if fds else None
    return done.returncode, done.stderr, got


def dial_env(host: str, port: int | str, **extra: str) -> dict[str, str]:
    return {ssh_dial.HOST: host, ssh_dial.PORT: str(port), **extra}


# -- the dialer process --------------------------------------------------------------------------


def test_the_dialer_hands_ssh_a_connected_socket_with_nagle_off(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code, err, got = run_dialer(dial_env("127.0.0.1", port))
    assert (code, err) == (0, "")
    assert got is not None
    with got:
        assert got.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert got.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert got.getpeername() == ("127.0.0.1", port)
        conn, _ = listener.accept()
        with conn:  # the very connection the server sees: bytes go through both ways
            got.sendall(b"SSH-2.0-test\r\n")
            assert conn.recv(64) == b"SSH-2.0-test\r\n"
            conn.sendall(b"hello")
            assert got.recv(5) == b"hello"


def test_tcp_keepalive_no_is_honoured(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code, _, got = run_dialer(dial_env("127.0.0.1", port, **{ssh_dial.KEEPALIVE: "no"}))
    assert code == 0 and got is not None
    with got:
        assert got.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


def test_a_name_is_resolved_and_the_address_family_honoured(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code, _, got = run_dialer(dial_env("localhost", port, **{ssh_dial.FAMILY: "inet"}))
    assert code == 0 and got is not None
    with got:
        assert got.family == socket.AF_INET
        assert got.getpeername() == ("127.0.0.1", port)


def test_refused_is_said_in_ssh_s_words() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, err, got = run_dialer(dial_env("127.0.0.1", port))
    assert (code, got) == (255, None)
    assert err == f"ssh: connect to host 127.0.0.1 port {port}: Connection refused\n"


def test_an_unknown_name_is_said_in_ssh_s_words() -> None:
    code, err, got = run_dialer(dial_env("no-such-host.invalid", 22))
    assert (code, got) == (255, None)
    assert err.startswith("ssh: Could not resolve hostname no-such-host.invalid: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="nothing"),
        pytest.param({ssh_dial.HOST: "h"}, id="no-port"),
        pytest.param({ssh_dial.HOST: "h", ssh_dial.PORT: "http"}, id="port-not-a-number"),
    ],
)
def test_bad_input_is_one_line_and_no_traceback(env: dict[str, str]) -> None:
    code, err, got = run_dialer(env)
    assert (code, got) == (255, None)
    assert err.startswith("ssh: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_the_dialer_imports_nothing_beyond_the_interpreter_s_start(
    listener: socket.socket,
) -> None:
    """It is on the path of every SSH task: no `re`, no idna codec, no typing (only `os`,
    which `-S` does not load). Its main()
    runs through name resolution and the connection (handing over fails: no ssh here)."""
    port = listener.getsockname()[1]
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"source = open({str(DIALER)!r}).read()\n"
        "found = {'__name__': 'ssh_dial'}\n"
        "exec(compile(source, 'ssh_dial', 'exec'), found)\n"
        "found['main'](channel_fd=987)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code],
        capture_output=True,
        text=True,
        env=dial_env("127.0.0.1", port),
        timeout=30,
        check=True,
    )
    assert "cannot pass the connection to ssh" in done.stderr  # it got that far
    os_itself = {"os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc"}
    assert set(done.stdout.split()) <= {"_socket", "__future__", *os_itself}, done.stdout


# -- when the link uses it ------------------------------------------------------------------------


def test_a_plain_host_is_dialled_with_ssh_s_own_view_of_it() -> None:
    assert dial_for(RESOLVED, 7) == {
        ssh_dial.HOST: "203.0.113.7",
        ssh_dial.PORT: "2222",
        ssh_dial.FAMILY: "any",
        ssh_dial.KEEPALIVE: "yes",
        ssh_dial.TIMEOUT: "7",
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("proxycommand", "ssh -W %h:%p bastion", id="proxycommand"),
        pytest.param("proxyjump", "bastion", id="proxyjump"),
        pytest.param("bindaddress", "10.0.0.2", id="bindaddress"),
        pytest.param("bindinterface", "eth1", id="bindinterface"),
        pytest.param("canonicalizehostname", "true", id="canonicalize"),
        pytest.param("connectionattempts", "3", id="attempts"),
        pytest.param("port", "", id="no-port"),
        pytest.param("hostname", "", id="no-hostname"),
        pytest.param("checkhostip", "yes", id="checkhostip"),
        pytest.param("nohostauthenticationforlocalhost", "yes", id="no-host-auth-localhost"),
    ],
)
def test_ssh_connects_itself_where_the_user_s_config_says_how(key: str, value: str) -> None:
    assert dial_for({**RESOLVED, key: value}, 10) is None


def test_explicit_none_routes_are_no_route() -> None:
    assert dial_for({**RESOLVED, "proxycommand": "none", "proxyjump": "none"}, 10) is not None


def test_nothing_from_ssh_g_means_no_dialer() -> None:
    assert dial_for({}, 10) is None


def test_the_proxy_command_names_this_interpreter_and_the_dialer_only() -> None:
    options = dial_options()
    assert options[:3] == ["-o", "ProxyUseFdpass=yes", "-o"]
    key, _, command = options[3].partition("=")
    assert key == "ProxyCommand"
    assert shlex.split(command) == [sys.executable, "-S", "-I", str(DIALER)]


def test_forward_argv_with_the_dialer_keeps_the_destination_last() -> None:
    argv = forward_argv(
        Destination("meeshy-prod"), SshOptions(), "/tmp/x/docker.sock", "/tmp/x/ctl", dial=True
    )
    assert argv[-6:] == [*dial_options(), "--", "meeshy-prod"]
    plain = forward_argv(
        Destination("meeshy-prod"), SshOptions(), "/tmp/x/docker.sock", "/tmp/x/ctl"
    )
    assert not any("Proxy" in a for a in plain)


def test_a_percent_in_the_interpreter_path_is_not_an_ssh_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/py%h/bin/python3")
    command = dial_options()[3].partition("=")[2]
    assert "/opt/py%%h/bin/python3" in command


# -- config ---------------------------------------------------------------------------------------


def test_nodelay_is_on_by_default_and_can_be_turned_off() -> None:
    assert SshOptions().nodelay is True
    assert ssh_options({}).nodelay is True
    assert ssh_options({"nodelay": False}).nodelay is False


def test_nodelay_must_be_a_switch() -> None:
    with pytest.raises(ConfigError, match=r"meeshy\.ssh\.nodelay"):
        ssh_options({"nodelay": "sometimes"})


def test_the_dialer_is_shipped_beside_the_link() -> None:
    assert DIALER.is_file()
    assert Path(ssh_dial.__file__) == DIALER


def test_a_dialer_that_passed_nothing_is_one_line_with_a_way_out() -> None:
    """ssh's own words when its ProxyCommand gave it no connection (a crash of the dialer)."""
    from tasks.lib.ssh import explain

    why, hint = explain(
        "Traceback (most recent call last):\n  ...\nOSError: [Errno 97] Address family not "
        "supported by protocol\nproxy dialer did not pass back a connection\n",
        Destination("meeshy-prod"),
        SshOptions(),
    )
    assert why.startswith("the connection to meeshy-prod could not be made")
    assert "meeshy.ssh.nodelay" in hint
